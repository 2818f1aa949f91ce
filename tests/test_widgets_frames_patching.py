"""PatchingHeatmap over a video model: positions by (frame, patch), whole frames and tubes, against the engine
(pw.analysis.patch) and a patched run written here by hand; the clip's frames travel once as images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import traitlets
from conftest import patched_by_hand

import prisma_widgets as pw
from prisma_widgets import zoo
from prisma_widgets.analysis.corrupt import corrupt
from prisma_widgets.analysis.patching import patch, position_groups
from prisma_widgets.widgets._base import decode_array
from prisma_widgets.widgets.patching_heatmap import PatchingHeatmap


@pytest.fixture(scope="module")
def video():
    return pw.load("mouse-video")


@pytest.fixture(scope="module")
def pair():
    clip = zoo.moving_shapes(1, seed=6).videos[0]
    return clip, clip[::-1].copy()  # the same clip played backwards: the opposite motion


@pytest.fixture(scope="module")
def widget(video, pair):
    return PatchingHeatmap(video, pair[0], pair[1])


def by_hand_top(model, clean, corrupted, layer, tokens, k=5):
    """Clean resid_pre at ``tokens`` into the corrupted run: one hook, one forward, softmax top-k."""
    out = patched_by_hand(model, clean, corrupted, layer, tokens)
    top = out.double().softmax(-1)[0].topk(min(k, out.shape[-1]))  # the video mouse has 4 motions
    return top.indices.tolist(), top.values.tolist()


def test_clip_positions_are_the_engines_values_with_frames_sent_once(widget, video, pair):
    cfg = video.cfg
    want = patch(video, [pair[0]], [pair[1]], site="resid_pre", by="position", progress=False)
    np.testing.assert_array_equal(widget.values_array(), want.values.float().numpy())
    assert widget.axes == ["layer", "position"] and widget.values_array().shape == (cfg.n_layers, cfg.n_tokens)
    assert widget.frames == cfg.frames == 4 and widget.token_labels[cfg.frame_tokens(2)[0]] == "t2 r0c0"
    shown = video.display_images(video.to_pixels(pair[0]))[0]  # [8, H, W, 3]: a tubelet of 2 per token frame
    np.testing.assert_array_equal(decode_array(widget.frame_pixels), shown[:: cfg.tubelet_size])
    np.testing.assert_array_equal(decode_array(widget.image_pixels), shown[0])
    # the reversed clip differs in every patch some frame covers
    changed = {p for a, b in zip(shown, video.display_images(video.to_pixels(pair[1]))[0])
               for p in np.flatnonzero((a != b).any(-1).reshape(4, 8, 4, 8).any(axis=(1, 3)))}
    assert widget.corruption_patches == sorted(int(p) for p in changed)


def test_frame_syncs_and_is_validated(widget, video):
    widget.frame = 3
    assert widget.frame == 3
    with pytest.raises(traitlets.TraitError, match=r"frame must be a token frame in \[0, 4\)"):
        widget.frame = 4
    widget.frame = 0


@pytest.mark.parametrize("by", ["frame", "tube"])
def test_by_frame_and_tube_recompute_to_the_engine_and_predict_by_hand(video, pair, by):
    w = PatchingHeatmap(video, pair[0], pair[1])
    w.by = by
    assert w.status == "" and w.error == ""
    want = patch(video, [pair[0]], [pair[1]], site="resid_pre", by=by, progress=False)
    np.testing.assert_array_equal(w.values_array(), want.values.float().numpy())
    groups = position_groups(video.cfg, by)
    assert w.axes == ["layer", by] and w.values_array().shape == (video.cfg.n_layers, len(groups))
    # the largest |effect| is selected, named by the by's axis
    v = w.values_array()
    lp, cell = np.unravel_index(int(np.argmax(np.abs(v))), v.shape)
    assert w.selected == {"layer": int(lp), by: int(cell)}
    for layer, cell in ((0, 0), (video.cfg.n_layers - 1, len(groups) - 1)):
        idx, probs = by_hand_top(video, pair[0], pair[1], layer, groups[cell])
        got = w.cell_predictions({"layer": layer, by: cell})["patched"]
        assert [g["index"] for g in got] == idx
        np.testing.assert_allclose([g["prob"] for g in got], probs, atol=1e-6)
    with pytest.raises(traitlets.TraitError, match=f"selected {by} must be in"):
        w.selected = {"layer": 0, by: len(groups)}


def test_constructor_takes_by_tube_and_refuses_an_image_for_a_clip(video, pair):
    w = PatchingHeatmap(video, pair[0], pair[1], by="tube", site="attn_out")
    want = patch(video, [pair[0]], [pair[1]], site="attn_out", by="tube", progress=False)
    np.testing.assert_array_equal(w.values_array(), want.values.float().numpy())
    with pytest.raises(ValueError, match="one clip of 8 frames"):
        PatchingHeatmap(video, pair[0], np.stack([pair[1], pair[1]]))


def test_a_painted_corruption_corrupts_every_frame_and_reruns(video, pair):
    w = PatchingHeatmap(video, pair[0], pair[1], by="frame")
    patches = list(range(16))
    assert w.run_corruption(patches, "swap"), w.error
    shown = video.display_images(video.to_pixels(pair[0]))[0]
    other = video.display_images(video.to_pixels(pair[1]))[0]
    corrupted = np.stack([corrupt(f, patches, mode="swap", grid=(4, 4), other=o) for f, o in zip(shown, other)])
    want = patch(video, [shown], [corrupted], site="resid_pre", by="frame", progress=False)
    np.testing.assert_array_equal(w.values_array(), want.values.float().numpy())
    np.testing.assert_array_equal(decode_array(w.corrupted_pixels), corrupted[0])
    assert w.corruption_patches == patches and w.by == "frame"


def test_an_image_model_keeps_one_frame(pair):
    mouse = pw.load("mouse-vit")
    images, _ = zoo.shapes(2, seed=1)
    w = PatchingHeatmap(mouse, images[0], images[1])
    assert w.frames == 1 and w.frame_pixels == {} and w.axes == ["layer", "position"]


def test_a_timesformer_clip_keeps_the_models_token_order():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.TimesformerConfig(patch_size=16, num_frames=3, image_size=32, hidden_size=32,
                                            num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                            num_labels=5)
    model = pw.HookedViT(transformers.TimesformerForVideoClassification(config).eval())
    clip = zoo.moving_shapes(1, seed=2).videos[0][: model.cfg.input_frames]
    def metric(out):  # random weights: both clips may share a top class, so a fixed logit difference
        return out[:, 0] - out[:, 1]

    w = PatchingHeatmap(model, clip, clip[::-1].copy(), by="tube", metric=metric)
    want = patch(model, [clip], [clip[::-1].copy()], metric=metric, site="resid_pre", by="tube", progress=False)
    np.testing.assert_array_equal(w.values_array(), want.values.float().numpy())
    assert w.frames == 3 and w.token_labels == model.token_labels()  # the view reads each frame from the labels


@pytest.mark.parametrize("by", ["frame", "tube"])
def test_from_result_without_a_model_shows_frames_and_tubes(video, pair, by):
    result = patch(video, [pair[0]], [pair[1]], site="resid_pre", by=by, progress=False)
    first = video.display_images(video.to_pixels(pair[0]))[0][0]
    w = PatchingHeatmap.from_result(result, first, first, grid=(4, 4) if by == "frame" else None)  # tubes name it
    np.testing.assert_array_equal(w.values_array(), result.values.float().numpy())
    assert w.axes == ["layer", by] and w.grid == [4, 4]
    assert w.frames == (4 if by == "frame" else 1)
    v = w.values_array()
    lp, cell = np.unravel_index(int(np.argmax(np.abs(v))), v.shape)
    assert w.selected == {"layer": int(lp), by: int(cell)}
