"""AttentionGrid on clips: a film strip of the token frames whose patterns are the model's own, token for token;
divided attention (TimeSformer) shown as its temporal and its spatial pattern; ``frame`` follows the query."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prisma_widgets import zoo
from prisma_widgets.widgets.attention_frames import strip_order, strip_position
from prisma_widgets.widgets.attention_grid import AttentionGrid
from prisma_widgets.widgets.codec import decode_array

transformers = pytest.importorskip("transformers")
SMALL = {"image_size": 32, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 64, "num_labels": 5}


def _model(kind: str):
    import prisma_widgets as pw

    torch.manual_seed(0)
    if kind == "videomae":
        config = transformers.VideoMAEConfig(patch_size=8, num_frames=4, tubelet_size=2, **SMALL)
        return pw.HookedViT(transformers.VideoMAEForVideoClassification(config).eval())
    config = transformers.TimesformerConfig(patch_size=16, num_frames=3, **SMALL)
    return pw.HookedViT(transformers.TimesformerForVideoClassification(config).eval())


@pytest.fixture(scope="module")
def clip():
    return zoo.moving_shapes(1, seed=2).videos[0]


def test_joint_attention_as_a_film_strip_is_the_models_pattern(clip):
    model = _model("videomae")
    cfg = model.cfg  # 2 token frames of 4x4
    video = clip[: cfg.input_frames]
    g = AttentionGrid(model, video, precision="float32")
    assert (g.grid, g.frames, g.attention) == ([4, 8], 2, "joint")
    _, cache = model.run_with_cache([video], names_filter="blocks.*.attn.hook_pattern")
    order = strip_order(cfg)
    for layer in range(cfg.n_layers):
        ref = cache[f"blocks.{layer}.attn.hook_pattern"][0].numpy()
        np.testing.assert_array_equal(g.pattern_values()[0, layer], ref[:, order][:, :, order])
    # strip position (r, t * cols + c) is patch (t, r, c), and its label says so
    assert g.token_labels[strip_position(1, 2, 3, (4, 8), 2, 0)] == "t1 r2c3"
    # the image is the frames side by side, the model's own input frames
    shown = model.display_images([video])[0][:: cfg.tubelet_size]
    np.testing.assert_array_equal(decode_array(g.image_pixels)[0], np.concatenate(list(shown), 1))


@pytest.mark.parametrize("kind", ["time", "space"])
def test_divided_attention_shows_each_pattern_where_it_acts(kind, clip):
    model = _model("timesformer")
    cfg = model.cfg  # CLS + 3 frames of 2x2, tokens ordered (row, col, frame) by the model
    video = clip[:3]
    g = AttentionGrid(model, video, attention=kind, precision="float32")
    assert g.attention == kind and g.grid == [2, 6]
    p = g.pattern_values()[0]  # [L, H, N, N], strip order
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)  # every row a distribution
    hook = "attn_time.hook_pattern" if kind == "time" else "attn.hook_pattern"
    _, cache = model.run_with_cache([video], names_filter=f"blocks.*.{hook}")
    pos = lambda t, r, c: strip_position(t, r, c, (2, 6), 3, 1)  # noqa: E731
    for layer in range(cfg.n_layers):
        ref = cache[f"blocks.{layer}.{hook}"][0].numpy()
        if kind == "time":  # [P, H, T, T]: patch (r, c) over frames
            for t in range(3):
                for t2 in range(3):
                    np.testing.assert_allclose(p[layer, :, pos(t, 1, 0), pos(t2, 1, 0)], ref[2, :, t, t2], atol=1e-6)
            assert p[layer, :, pos(0, 1, 0), pos(0, 0, 0)].max() == 0  # nothing to other patches
            np.testing.assert_array_equal(p[layer, :, 0, 0], 1.0)  # CLS takes no temporal attention
        else:  # [T, H, 1 + P, 1 + P]: within frame t, CLS first
            t = 2
            np.testing.assert_allclose(p[layer, :, pos(t, 0, 1), 0], ref[t, :, 2, 0], atol=1e-6)
            np.testing.assert_allclose(p[layer, :, pos(t, 0, 1), pos(t, 1, 1)], ref[t, :, 2, 4], atol=1e-6)
            assert p[layer, :, pos(t, 0, 1), pos(0, 1, 1)].max() == 0  # nothing to other frames
            np.testing.assert_allclose(p[layer, :, 0, pos(1, 0, 0)], ref[1, :, 0, 1] / 3, atol=1e-6)


def test_frame_follows_the_query_and_moves_it(clip):
    model = _model("videomae")
    g = AttentionGrid(model, clip[:4])
    g.query = strip_position(1, 3, 2, (4, 8), 2, 0)
    assert g.frame == 1 and g.token_labels[g.query] == "t1 r3c2"
    g.frame = 0  # the same patch in frame 0
    assert g.token_labels[g.query] == "t0 r3c2"


def test_bad_attention_kinds_are_named(clip):
    with pytest.raises(ValueError, match="attention='space' or 'time'"):
        AttentionGrid(_model("timesformer"), clip[:3], attention="joint")
    with pytest.raises(ValueError, match="rollout=False"):
        AttentionGrid(_model("timesformer"), clip[:3], rollout=True)
    with pytest.raises(ValueError, match="'joint'"):
        AttentionGrid(_model("videomae"), clip[:4], attention="time")
    g = AttentionGrid(_model("videomae"), clip[:4], rollout=True)  # joint attention rolls out
    assert g.rollout_values().shape == (1, 2, 32, 32)
