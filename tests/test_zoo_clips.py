"""The video mouse's data: moving shapes, deterministic by seed, with per-frame patch ground truth that matches
the pixels and a label that matches the motion."""

from __future__ import annotations

import numpy as np
import pytest

from prisma_widgets import zoo
from prisma_widgets.zoo.clips import MOTION_STEPS, tubelet_labels


@pytest.fixture(scope="module")
def clips():
    return zoo.moving_shapes(300, seed=21)


def test_shapes_types_and_determinism(clips):
    assert clips.videos.shape == (300, 8, 32, 32, 3) and clips.videos.dtype == np.uint8
    assert clips.patch_labels.shape == (300, 8, 4, 4) and clips.patch_labels.dtype == np.int64
    assert clips.masks.shape == (300, 8, 32, 32) and clips.centres.shape == (300, 8, 2)
    assert all(isinstance(k, int) for k in clips.labels + clips.shapes)
    again = zoo.moving_shapes(300, seed=21)
    np.testing.assert_array_equal(clips.videos, again.videos)
    assert clips.labels == again.labels
    other = zoo.moving_shapes(300, seed=22)
    assert not any(np.array_equal(clips.videos[i], other.videos[j]) for i in range(5) for j in range(300))
    assert len(clips) == 300 and clips["labels"] is clips.labels


def test_every_motion_and_shape_occurs(clips):
    assert np.bincount(clips.labels, minlength=4).min() > 300 / 4 / 2
    assert np.bincount(clips.shapes, minlength=len(zoo.SHAPE_CLASSES)).min() > 0


def test_the_object_moves_the_way_the_label_says(clips):
    # measured from the pixels (the mask's centroid), not from the generator's own centres
    ys, xs = np.mgrid[0:32, 0:32]
    for i in range(300):
        m = clips.masks[i].astype(float)
        area = m.sum((1, 2))
        assert (area > 0).all(), i  # the object is in view in every frame
        cx, cy = (m * xs).sum((1, 2)) / area, (m * ys).sum((1, 2)) / area
        dx, dy = MOTION_STEPS[clips.labels[i]]
        along = (cx[-1] - cx[0]) * dx + (cy[-1] - cy[0]) * dy
        across = abs((cx[-1] - cx[0]) * dy) + abs((cy[-1] - cy[0]) * dx)
        assert along > 5 and across < along / 2, (i, along, across)


def test_background_is_static_and_the_object_is_where_the_colour_changes(clips):
    v = clips.videos.astype(float)
    off = ~clips.masks
    # background pixels change only by the per-frame noise; object pixels move and change much more
    bg_change = np.abs(np.diff(v, axis=1))[off[:, 1:] & off[:, :-1]].mean()
    edge = clips.masks[:, 1:] ^ clips.masks[:, :-1]
    assert np.abs(np.diff(v, axis=1))[edge].mean() > 3 * bg_change


def test_patch_labels_follow_the_mask_per_frame(clips):
    cover = clips.masks.reshape(300, 8, 4, 8, 4, 8).sum((3, 5))
    expected = np.where(cover >= 6, np.asarray(clips.labels)[:, None, None, None] + 1, 0)
    np.testing.assert_array_equal(clips.patch_labels, expected)
    assert ((clips.patch_labels > 0).sum((2, 3)) > 0).all()  # every frame has object patches
    # the object's patches differ between the first and the last frame: it moved across patches
    assert (clips.patch_labels[:, 0] != clips.patch_labels[:, -1]).any((1, 2)).mean() > 0.9


def test_tubelet_labels_reduce_frames(clips):
    t = tubelet_labels(clips.patch_labels, 2)
    assert t.shape == (300, 4, 4, 4)
    np.testing.assert_array_equal(t[:, 1], np.maximum(clips.patch_labels[:, 2], clips.patch_labels[:, 3]))
    np.testing.assert_array_equal(tubelet_labels(clips.patch_labels, 1), clips.patch_labels)
    with pytest.raises(ValueError, match="divide"):
        tubelet_labels(clips.patch_labels, 3)
    with pytest.raises(ValueError, match=r"\[n, frames, rows, cols\]"):
        tubelet_labels(clips.patch_labels[0], 2)


def test_other_sizes_and_lengths():
    c = zoo.moving_shapes(6, seed=1, frames=16, size=48, patch=16)
    assert c.videos.shape == (6, 16, 48, 48, 3) and c.patch_labels.shape == (6, 16, 3, 3)
    assert c.masks.any((2, 3)).all()
    assert zoo.moving_shapes(0).videos.shape == (0, 8, 32, 32, 3)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n=-1), ValueError, "n"),
    (dict(n=2.5), ValueError, "n"),
    (dict(n="2"), TypeError, "n"),
    (dict(n=2, frames=1), ValueError, "frames"),
    (dict(n=2, size=8), ValueError, "size=32"),
    (dict(n=2, seed="x"), TypeError, "seed"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        zoo.moving_shapes(**kwargs)
