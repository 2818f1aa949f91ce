"""AttentionGrid: the arrays it sends equal the backend's hook_pattern within the stated bound."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import traitlets

import prisma_widgets as pw
from prisma_widgets.widgets._base import decode_array
from prisma_widgets.widgets.attention_grid import QUANTIZATION_BOUND, AttentionGrid, attention_rollout

from conftest import build


def _reference(model, images, layers):
    with torch.no_grad():
        _, cache = model.run_with_cache(images, names_filter=lambda n: n.endswith("hook_pattern"))
    return np.stack([cache[f"blocks.{i}.attn.hook_pattern"].float().numpy() for i in layers], 1)


def test_patterns_equal_hook_pattern_within_bound(chelsea, coffee):
    model = build("vit_tiny_patch16_224")
    images = [chelsea, coffee]
    grid = AttentionGrid(model, images, image_labels=["cat", "coffee"])
    ref = _reference(model, images, range(model.cfg.n_layers))
    got = grid.pattern_values()
    assert got.shape == ref.shape == (2, model.cfg.n_layers, model.cfg.n_heads, model.cfg.n_tokens, model.cfg.n_tokens)
    # The stated bound: every value is within max(its row) / 510 (uint8, one float32 scale per row).
    bound = ref.max(-1, keepdims=True) * QUANTIZATION_BOUND * (1 + 1e-5) + 1e-9
    assert (np.abs(got - ref) <= bound).all()
    assert QUANTIZATION_BOUND == 1 / 510
    # what travels is uint8 + float32 row scales
    assert grid.patterns["dtype"] == "uint8" and grid.pattern_scale["dtype"] == "float32"
    assert grid.token_labels == model.token_labels()
    assert grid.grid == list(model.cfg.grid) and grid.n_prefix_tokens == model.cfg.n_prefix_tokens
    pix = decode_array(grid.image_pixels)
    np.testing.assert_array_equal(pix, model.display_images(images))
    assert grid.image_labels == ["cat", "coffee"]


def test_float32_precision_is_exact(chelsea):
    model = build("vit_tiny_patch16_224")
    grid = AttentionGrid(model, chelsea, precision="float32")
    np.testing.assert_array_equal(grid.pattern_values(), _reference(model, [chelsea], range(model.cfg.n_layers)))
    assert grid.pattern_scale == {}


def test_layers_heads_subset_and_registers(chelsea):
    model = build("vit_small_patch14_reg4_dinov2")  # CLS + 4 registers
    grid = AttentionGrid(model, chelsea, layers=[1], heads=[0, 2])
    assert grid.layer_indices == [1] and grid.head_indices == [0, 2]
    assert grid.n_prefix_tokens == 5 and grid.token_labels[:5] == ["CLS", "reg0", "reg1", "reg2", "reg3"]
    ref = _reference(model, [chelsea], [1])[:, :, [0, 2]]
    got = grid.pattern_values()
    assert got.shape == ref.shape
    assert (np.abs(got - ref) <= ref.max(-1, keepdims=True) / 510 * (1 + 1e-5) + 1e-9).all()
    assert grid.layer == 1 and grid.head == 0
    with pytest.raises(traitlets.TraitError):
        grid.layer = 0  # not shown
    with pytest.raises(traitlets.TraitError):
        grid.head = 1


def test_no_cls_model_defaults_query_to_centre_patch(chelsea):
    model = build("vit_medium_patch16_gap_256")
    grid = AttentionGrid(model, chelsea, layers=[0])
    assert grid.n_prefix_tokens == model.cfg.n_prefix_tokens == 0
    rows, cols = model.cfg.grid
    assert grid.query == (rows // 2) * cols + cols // 2


def test_rollout_matches_definition(chelsea):
    model = build("vit_tiny_patch16_224")
    grid = AttentionGrid(model, chelsea, layers=[1], rollout=True)
    full = _reference(model, [chelsea], range(2))[0]
    eye = np.eye(full.shape[-1])
    acc = eye
    for layer in range(2):
        a = 0.5 * eye + 0.5 * full[layer].mean(0)
        a = a / a.sum(-1, keepdims=True)
        acc = a @ acc
    got = grid.rollout_values()
    assert got.shape == (1, 1) + acc.shape
    assert np.abs(got[0, 0] - acc).max() <= acc.max() / 510 + 1e-6
    assert grid.show_rollout
    np.testing.assert_allclose(attention_rollout(full[None])[0, -1].sum(-1), 1, rtol=1e-5)


def test_synced_traits_and_validation():
    p = np.random.default_rng(0).random((3, 2, 17, 17)).astype(np.float32)
    g = AttentionGrid.from_patterns(p, layers=[4, 5, 6])
    state = g.get_state()
    for key in ("layer", "head", "query", "direction", "image_index", "normalization", "scale"):
        assert key in state, key
    assert g.grid == [4, 4] and g.n_prefix_tokens == 1 and g.layer == 4
    g.layer, g.head, g.query, g.direction, g.normalization, g.scale = 6, 1, 16, "column", "global", "log"
    assert (g.layer, g.head, g.query, g.direction, g.normalization, g.scale) == (6, 1, 16, "column", "global", "log")
    for name, bad in [("direction", "up"), ("normalization", "batch"), ("scale", "sqrt"), ("query", 17), ("image_index", 1), ("percentile", 10)]:
        with pytest.raises(traitlets.TraitError):
            setattr(g, name, bad)
    with pytest.raises(TypeError, match="no option"):
        AttentionGrid.from_patterns(p, colour="red")


@pytest.mark.parametrize(
    "tokens, kwargs, grid, prefix",
    [
        (197, {}, [14, 14], 1),
        (196, {}, [14, 14], 0),
        (261, {}, [16, 16], 5),
        (17, {"grid": (3, 5)}, [3, 5], 2),
        (200, {"grid": (14, 14)}, [14, 14], 4),
        (101, {"n_prefix_tokens": 1}, [10, 10], 1),
    ],
)
def test_layout_inference(tokens, kwargs, grid, prefix):
    p = np.full((1, 1, tokens, tokens), 1.0 / tokens, np.float32)
    g = AttentionGrid.from_patterns(p, **kwargs)
    assert g.grid == grid and g.n_prefix_tokens == prefix
    assert len(g.token_labels) == tokens


def test_bad_inputs():
    with pytest.raises(ValueError, match="square grid|fit"):
        AttentionGrid.from_patterns(np.ones((1, 1, 10, 10)), n_prefix_tokens=2)
    with pytest.raises(ValueError, match="patterns must be"):
        AttentionGrid.from_patterns(np.ones((2, 10, 11)))
    with pytest.raises(ValueError, match="token labels"):
        AttentionGrid.from_patterns(np.ones((1, 1, 5, 5)) / 5, token_labels=["a"])
    with pytest.raises(ValueError, match="same size"):
        AttentionGrid.from_patterns(np.ones((2, 1, 1, 5, 5)) / 5, [np.zeros((4, 4, 3)), np.zeros((5, 5, 3))])


def test_from_patterns_images_batch_and_formats():
    p = np.full((2, 1, 1, 5, 5), 0.2, np.float32)
    chw = np.ones((3, 8, 8), np.float32) * 0.5
    g = AttentionGrid.from_patterns(torch.from_numpy(p), chw, image_labels=["a", "b"])
    pix = decode_array(g.image_pixels)
    assert pix.shape == (2, 8, 8, 3) and pix.dtype == np.uint8 and (pix == 128).all()
    assert g.image_labels == ["a", "b"]
    g.image_index = 1


def test_to_circuitsvis_uses_patch_labels_and_no_mask():
    p = np.random.default_rng(0).random((2, 3, 10, 10)).astype(np.float32)
    p /= p.sum(-1, keepdims=True)
    g = AttentionGrid.from_patterns(p, grid=(3, 3))
    html = str(g.to_circuitsvis(1))
    assert '"CLS"' in html and '"r2c2"' in html and '"r0c0"' in html
    assert '"maskUpperTri": false' in html
    assert '"L1H0"' in html
    with pytest.raises(ValueError):
        g.to_circuitsvis(7)


def test_public_export_is_lazy():
    assert pw.AttentionGrid is AttentionGrid


def test_display_images_accept_unit_and_byte_floats_and_refuse_normalised_ones():
    from prisma_widgets.widgets._layout import as_uint8_image

    rng = np.random.default_rng(4)
    raw = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
    assert (as_uint8_image(raw.astype(np.float32) / 255) == raw).all()
    assert (as_uint8_image(raw.astype(np.float64)) == raw).all()
    assert (as_uint8_image(raw.transpose(2, 0, 1).astype(np.float32) / 255 - 0.01) <= raw).all()  # slight undershoot
    normalised = (raw.astype(np.float32) / 255 - 0.5) / 0.25
    with pytest.raises(ValueError, match="looks normalised.*display_images"):
        as_uint8_image(normalised)


def test_model_name_is_sent_for_the_export_caption(chelsea):
    """A PNG export names the model: the from-model constructor sends the model's name; from arrays it is
    the user's (default empty, and the caption leaves it out)."""
    model = build("vit_tiny_patch16_224")
    grid = AttentionGrid(model, chelsea, layers=[0])
    assert grid.model_name == model.name and grid.model_name
    assert grid.trait_metadata("model_name", "sync")
    pats = np.full((1, 2, 5, 5), 0.2, dtype=np.float32)
    assert AttentionGrid.from_patterns(pats, grid=(2, 2), n_prefix_tokens=1).model_name == ""
    assert AttentionGrid.from_patterns(pats, grid=(2, 2), n_prefix_tokens=1, model_name="my ViT").model_name == "my ViT"
    with pytest.raises(traitlets.TraitError):
        AttentionGrid.from_patterns(pats, grid=(2, 2), n_prefix_tokens=1, model_name=3)
