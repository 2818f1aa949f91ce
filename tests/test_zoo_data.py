"""The synthetic shapes data of the bundled mice: determinism, freshness, coverage, scene ground truth."""

from __future__ import annotations

import time

import numpy as np
import pytest

from prisma_widgets import zoo
from prisma_widgets.zoo.shapes import shapes_with_captions, shapes_with_patches


def test_shape_classes_and_bundled_names():
    assert len(zoo.SHAPE_CLASSES) >= 8
    assert len(set(zoo.SHAPE_CLASSES)) == len(zoo.SHAPE_CLASSES)
    assert {"mouse-vit", "mouse-clip"} <= set(zoo.BUNDLED)
    assert len(zoo.COLOURS) >= 4


def test_shapes_deterministic_fresh_and_typed():
    a, la = zoo.shapes(64, seed=11)
    b, lb = zoo.shapes(64, seed=11)
    c, lc = zoo.shapes(64, seed=12)
    assert a.shape == (64, 64, 64, 3) and a.dtype == np.uint8
    assert isinstance(la, list) and all(isinstance(x, int) for x in la)
    np.testing.assert_array_equal(a, b)
    assert la == lb
    # a different seed is fresh data: no image repeats
    assert not np.array_equal(a, c)
    assert not any(np.array_equal(a[i], c[j]) for i in range(8) for j in range(64))


def test_shapes_cover_every_class_colour_and_have_texture():
    images, labels = zoo.shapes(800, seed=3)
    counts = np.bincount(labels, minlength=len(zoo.SHAPE_CLASSES))
    assert counts.min() > 800 / len(zoo.SHAPE_CLASSES) / 2, counts
    # the background is noisy / textured, not flat: the corner patch varies
    corner = images[:, :4, :4].reshape(800, -1).astype(float)
    assert np.median(corner.std(1)) > 2
    # other sizes work
    small, _ = zoo.shapes(4, seed=0, size=32)
    assert small.shape == (4, 32, 32, 3)


def test_shapes_are_fast():
    t = time.perf_counter()
    zoo.shapes(1000, seed=5)
    assert time.perf_counter() - t < 8.0  # about 0.5 s unloaded; generous for a shared CI machine


def test_shape_masks_are_where_the_colour_is():
    images, labels, patches = shapes_with_patches(200, seed=4)
    assert patches.shape == (200, 8, 8)
    for i in range(200):
        on = patches[i] > 0
        assert on.any(), i  # every shape covers at least one patch
        assert set(np.unique(patches[i][on])) == {labels[i] + 1}
    _, _, _, captions = shapes_with_captions(50, seed=4)
    assert all(zoo.SHAPE_CLASSES[l] in c for l, c in zip(shapes_with_patches(50, seed=4)[1], captions))


@pytest.fixture(scope="module")
def scenes():
    return zoo.scenes(300, seed=21)


def test_scenes_shapes_and_determinism(scenes):
    assert scenes.images.shape == (300, 64, 64, 3) and scenes.images.dtype == np.uint8
    assert scenes.patch_labels.shape == (300, 8, 8)
    assert scenes.pixel_labels.shape == (300, 64, 64)
    assert len(scenes.captions) == len(scenes.objects) == len(scenes.labels) == 300
    assert scenes["images"] is scenes.images  # dict-style access
    again = zoo.scenes(300, seed=21)
    np.testing.assert_array_equal(again.images, scenes.images)
    assert again.captions == scenes.captions
    other = zoo.scenes(300, seed=22)
    assert not np.array_equal(other.images, scenes.images)


def test_scene_objects_and_captions(scenes):
    counts = [len(o) for o in scenes.objects]
    assert min(counts) >= 2 and max(counts) <= 4 and len(set(counts)) == 3
    for objs, caption, labels in zip(scenes.objects, scenes.captions, scenes.labels):
        assert [zoo.SHAPE_CLASSES.index(o[0]) for o in objs] == labels
        positions = [o[3] for o in objs]
        assert len(set(positions)) == len(positions)  # one object per layout cell
        for cls, colour, size, pos in objs:
            assert cls in caption
            assert colour in zoo.COLOURS and size in zoo.SIZES and pos in zoo.POSITIONS.values()
        assert caption.startswith(("a ", "an ")) and (" and " in caption)
    assert any(" at the " in c for c in scenes.captions)


def test_scene_patch_ground_truth_matches_pixels(scenes):
    px = scenes.pixel_labels.reshape(300, 8, 8, 8, 8).transpose(0, 1, 3, 2, 4).reshape(300, 8, 8, 64)
    n_classes = len(zoo.SHAPE_CLASSES)
    counts = np.stack([(px == k + 1).sum(-1) for k in range(n_classes)], -1)  # [n, 8, 8, classes]
    labelled = scenes.patch_labels > 0
    # a labelled patch holds at least 8 pixels of its class
    lab = scenes.patch_labels[labelled] - 1
    assert (counts[labelled, lab] >= 8).all()
    # a patch is labelled with its majority class whenever that class has >= 8 pixels there
    assert labelled[counts.max(-1) >= 8].all()
    assert (counts[labelled, lab] == counts[labelled].max(-1)).all()
    # unlabelled patches hold fewer than 8 pixels of every class
    assert (counts[~labelled].max(-1) < 8).all()
    # every object that is visible at all shows up in the patch labels of its image
    for i in range(300):
        present = set(np.unique(scenes.pixel_labels[i])) - {0}
        assert set(np.unique(scenes.patch_labels[i])) - {0} <= present
        assert present <= set(k + 1 for k in scenes.labels[i])
    # object pixels really are painted in the object's colour (not background)
    i = 0
    for cls, colour, _, _ in scenes.objects[i]:
        mask = scenes.pixel_labels[i] == zoo.SHAPE_CLASSES.index(cls) + 1
        if mask.sum() > 20 and sum(o[0] == cls for o in scenes.objects[i]) == 1:
            mean = scenes.images[i][mask].mean(0)
            assert np.abs(mean - np.array(zoo.COLOURS[colour])).max() < 40


def test_scene_any_pixel_labelling():
    s = zoo.scenes(50, seed=2, min_pixels=1)
    px = s.pixel_labels.reshape(50, 8, 8, 8, 8).transpose(0, 1, 3, 2, 4).reshape(50, 8, 8, 64)
    np.testing.assert_array_equal(s.patch_labels > 0, (px > 0).any(-1))


def test_shape_pair_is_a_minimal_pair_the_mouse_tells_apart():
    """The README's patching pair: the same pixels outside the changed shape's patches, two different classes
    (both the ones the pair says), and mouse-vit reads each image as its own class."""
    import torch

    import prisma_widgets as pw

    model = pw.load("mouse-vit")
    for seed in range(4):
        clean, corrupted, (a, b), patches = zoo.shape_pair(seed=seed)
        again = zoo.shape_pair(seed=seed)
        np.testing.assert_array_equal(clean, again.clean)
        assert clean.shape == corrupted.shape == (64, 64, 3) and a != b
        outside = np.ones((8, 8), bool)
        outside.flat[patches] = False
        pixels_outside = np.kron(outside, np.ones((8, 8), bool))
        np.testing.assert_array_equal(clean[pixels_outside], corrupted[pixels_outside])
        assert 0 < len(patches) <= 32 and all(
            (clean[r * 8:(r + 1) * 8, c * 8:(c + 1) * 8] != corrupted[r * 8:(r + 1) * 8, c * 8:(c + 1) * 8]).any()
            for r, c in (divmod(p, 8) for p in patches))
        with torch.no_grad():
            top = model(model.to_pixels([clean, corrupted])).argmax(-1).tolist()
        assert top == [a, b], (seed, top, (a, b))
    with pytest.raises(ValueError):
        zoo.shape_pair(seed=-1)
