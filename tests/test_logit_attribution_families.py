"""Direct logit attribution on one small model of every family added in issue 14: exact (``values.sum(-1) ==
logit``, and the position split sums to the values) wherever the head is linear in the residual stream, and a
clear refusal where it is not (attention-pool heads, post-norm blocks, an inner norm after the heads, the source
split of differential attention). Also what attribution needs from each adapter: the norms feeding each block
(``apply_ln_to_stack`` equals the block's own ``ln1`` / ``ln2``) and each head's write (``head_writes``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import prisma_widgets as pw
from prisma_widgets.analysis import direct_logit_attribution
from prisma_widgets.hooked.coverage import catalog

from test_model_families import toy_tokenizer

PROMPTS = ["a red circle", "a blue square", "a green star"]
RTOL, ATOL = 1e-4, 2e-6  # as tests/test_logit_attribution.py: 1e-4 relative, plus float32 rounding near zero

_built: dict[str, pw.HookedViT] = {}


def _timm(name: str, **kwargs) -> pw.HookedViT:
    torch.manual_seed(0)
    return pw.load(name, pretrained=False, depth=2, num_classes=5, **kwargs)


def _open_clip(name: str, **vision) -> pw.HookedViT:
    """A tiny open_clip model: open_clip's own ViT tower with ``vision`` settings, or (none given) the
    architecture's own tower shrunk (a timm trunk for timm-tower models)."""
    import open_clip

    torch.manual_seed(0)
    if vision:
        cfg = open_clip.get_model_config(name)
        module = open_clip.create_model(
            name, pretrained=None, embed_dim=64,
            vision_cfg=dict(cfg["vision_cfg"], layers=2, image_size=32, width=64, head_width=32, **vision),
            text_cfg=dict(cfg["text_cfg"], layers=1, width=64, heads=2)).eval()
    else:
        module = catalog.open_clip_small(name, image_size=32)
    return pw.HookedViT(module, tokenizer=toy_tokenizer(module))


def _hf(name: str) -> pw.HookedViT:
    torch.manual_seed(0)
    module = catalog.hf_builders()[name]().eval()
    return pw.HookedViT(module, tokenizer=toy_tokenizer(module) if hasattr(module, "text_model") else None)


BUILD = {
    # linear heads: exact
    "timm-registers-avg-no-cls": lambda: _timm("vit_small_patch16_224", img_size=32, reg_tokens=2, global_pool="avg",
                                               class_token=False),
    "timm-deit-distilled": lambda: _timm("deit_tiny_distilled_patch16_224", img_size=32),  # two slots, two heads
    "timm-parallel-things": lambda: _timm("vit_small_patch16_18x2_224", img_size=32),
    "timm-parallel-scaling": lambda: _timm("vit_base_patch16_xp_224", img_size=32),  # RMSNorm, qk norm
    "timm-eva-non-square": lambda: _timm("vit_medium_patch16_rope_reg1_gap_256", img_size=(32, 64)),
    "open_clip-custom-blocks": lambda: _open_clip("ViT-B-16", qk_norm=True, scale_heads=True, ls_init_value=0.1),
    "open_clip-timm-trunk-token": lambda: _open_clip("MobileCLIP-B"),
    "open_clip-timm-trunk-avg": lambda: _open_clip("ViTamin-S"),  # GeGLU MLPs
    "hf-clip": lambda: _hf("CLIPModel"),  # the norm after pooling, a projection, text
    "hf-vit": lambda: _hf("ViTForImageClassification"),
    "hf-dinov2-registers": lambda: _hf("Dinov2WithRegistersForImageClassification"),  # CLS and patch mean
    # no per-head writes, or not linear at all
    "timm-post-norm": lambda: _timm("vit_base_patch16_rpn_224", img_size=32),
    "timm-differential": lambda: _timm("vit_dlittle_patch16_reg1_gap_256", img_size=32),
    "open_clip-inner-norm": lambda: _open_clip("ViT-B-16", scale_attn_inner=True),
    "timm-siglip-map": lambda: _timm("vit_so400m_patch14_siglip_224", img_size=28),
    "open_clip-siglip": lambda: _open_clip("ViT-B-16-SigLIP"),
    "open_clip-coca": lambda: _open_clip("coca_ViT-B-32"),
    "hf-siglip": lambda: _hf("SiglipModel"),
}
EXACT = [name for name in BUILD if list(BUILD).index(name) < list(BUILD).index("timm-post-norm")]
ATTENTION_POOLS = ["timm-siglip-map", "open_clip-siglip", "open_clip-coca", "hf-siglip"]


def model_of(name: str) -> pw.HookedViT:
    if name not in _built:
        _built[name] = BUILD[name]()
    return _built[name]


def images_for(model: pw.HookedViT, n: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (*model.cfg.image_size, 3), dtype=np.uint8) for _ in range(n)]


def dla(model: pw.HookedViT, **kwargs):
    prompts = PROMPTS if model.cfg.readout == "text" else None
    return direct_logit_attribution(model, images_for(model), prompts=prompts, **kwargs)


def assert_exact(result) -> None:
    torch.testing.assert_close(result.values.sum(-1), result.logit, rtol=RTOL, atol=ATOL)
    # every class's decomposition, not just the target's
    torch.testing.assert_close(result.class_values.sum(1), result.scores, rtol=RTOL, atol=ATOL)
    if result.by_position is not None:
        torch.testing.assert_close(result.by_position.sum(1), result.values, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", EXACT)
def test_direct_logit_attribution_is_exact_on_every_linear_head(name):
    model = model_of(name)
    result = dla(model, by_position=True, position_classes=[1])
    assert_exact(result)
    with torch.no_grad():
        readout = pw.analysis.Readout(model, PROMPTS if model.cfg.readout == "text" else None)
        scores = readout.scores(model(images_for(model)))
    torch.testing.assert_close(result.scores, scores.float(), rtol=1e-5, atol=1e-5)  # the logit is the model's own
    assert result.labels[0] == "embed" and result.labels[-1] == "bias"
    assert result.head_values().shape == (2, model.cfg.n_layers, model.cfg.n_heads)
    L, H, T = model.cfg.n_layers, model.cfg.n_heads, model.cfg.n_tokens
    assert result.pooled_attention.shape == (2, L, H, T) and result.by_position.shape[1] == T
    # the pooled token's attention is a distribution over the tokens (the slots' pooling weights averaged)
    torch.testing.assert_close(result.pooled_attention.sum(-1), torch.ones(2, L, H), atol=1e-5, rtol=0)
    torch.testing.assert_close(result.class_by_position[:, 0].sum(1), result.class_values[..., 1], rtol=RTOL, atol=ATOL)
    # a pair is the difference of two exact decompositions
    pair = dla(model, target=(0, 1), heads=False)
    assert_exact(pair)
    torch.testing.assert_close(pair.logit, pair.scores[:, 0] - pair.scores[:, 1])


def test_two_slot_heads_split_each_slot_through_its_own_columns():
    """DeiT's CLS and distillation tokens each go through their own head (the logits are the heads' mean); a
    direction written only at the distillation token moves the score by half the distillation head."""
    model = model_of("timm-deit-distilled")
    result = dla(model, by_position=True)
    assert_exact(result)
    embed = result.by_position[:, :, result.index("embed")]
    assert torch.all(embed[:, 2:] == 0) and torch.all(embed[:, :2] != 0)  # only the two read tokens contribute
    dino = dla(model_of("hf-dinov2-registers"), by_position=True)
    assert_exact(dino)
    reg = dino.by_position[:, 1:5, dino.index("embed")]  # the 4 registers: neither the CLS token nor a patch
    assert torch.all(reg == 0)


@pytest.mark.parametrize("name", ATTENTION_POOLS)
def test_attention_pool_heads_are_refused_not_approximated(name):
    model = model_of(name)
    with pytest.raises(pw.UnsupportedModelError, match="not a weighted sum of tokens"):
        dla(model)
    with pytest.raises(pw.UnsupportedModelError, match="not a weighted sum of tokens"):
        pw.LogitAttribution(model, images_for(model, 1)[0], prompts=PROMPTS if model.cfg.readout == "text" else None)


@pytest.mark.parametrize("name", ["timm-post-norm", "open_clip-inner-norm"])
def test_heads_behind_a_norm_are_refused_and_layers_stay_exact(name):
    model = model_of(name)
    assert model.adapter.attn_out_projection(0) is None
    with pytest.raises(pw.UnsupportedModelError, match="not linear in its heads.*pass heads=False"):
        dla(model)
    result = dla(model, heads=False, by_position=True)
    assert_exact(result)
    assert "L0 attn" in result.labels and not any(label.startswith("L0H") for label in result.labels)


def test_differential_attention_heads_are_exact_but_do_not_split_by_source():
    model = model_of("timm-differential")
    assert_exact(dla(model))  # hook_z is after the per-head norm: each head's write is exact
    with pytest.raises(pw.UnsupportedModelError, match="differential attention.*by_position=False"):
        dla(model, by_position=True)
    assert_exact(dla(model, heads=False, by_position=True))
    widget = pw.LogitAttribution(model, images_for(model, 1)[0])  # the heatmap, without source maps
    assert abs(float(widget.values().sum()) - widget.logit()) < 1e-4
    assert widget.position_class_ids == [] and widget.status.startswith("no position maps")


# ----- what attribution needs from each adapter -----
NORM_FAMILIES = ["timm-registers-avg-no-cls", "timm-parallel-scaling", "timm-eva-non-square", "open_clip-custom-blocks",
                 "open_clip-timm-trunk-token", "hf-clip", "hf-dinov2-registers", "timm-post-norm"]


@pytest.mark.parametrize("name", NORM_FAMILIES)
def test_apply_ln_to_stack_is_each_blocks_own_norm(name):
    """The stream entering block 1, split and put through ``block_norms(1)`` with the scale frozen, sums to what
    the block's attention (and MLP) read: ``ln1.hook_normalized`` (``ln2``) minus the norm's bias."""
    model = model_of(name)
    with torch.no_grad():
        _, cache = model.run_with_cache(images_for(model))
    ln1, ln2 = model.adapter.block_norms(1)
    stack = cache.decompose_resid(layer=1, apply_ln=True)
    bias = getattr(ln1, "bias", None)
    torch.testing.assert_close(stack.sum(0) + (bias if bias is not None else 0), cache["blocks.1.ln1.hook_normalized"],
                               atol=1e-4, rtol=1e-4)
    if model.adapter.mlp_reads_resid_mid(1):
        stack = cache.decompose_resid(layer=1, mlp_input=True, apply_ln=True)
        bias = getattr(ln2, "bias", None)
        torch.testing.assert_close(stack.sum(0) + (bias if bias is not None else 0),
                                   cache["blocks.1.ln2.hook_normalized"], atol=1e-4, rtol=1e-4)
    else:  # a parallel block's MLP reads the block's input, as its attention does
        with pytest.raises(ValueError, match="parallel block: its MLP reads the block's input"):
            cache.decompose_resid(layer=1, mlp_input=True, apply_ln=True)


def test_parallel_branches_have_no_one_norm():
    model = model_of("timm-parallel-things")
    with torch.no_grad():
        _, cache = model.run_with_cache(images_for(model))
    with pytest.raises(pw.UnsupportedModelError, match="side by side, each behind its own norm"):
        cache.decompose_resid(layer=1, apply_ln=True)
    per_head, shared = model.adapter.head_writes(1, cache["z", 1])  # its heads still write exactly
    torch.testing.assert_close(per_head.sum(2) + shared, cache["attn_out", 1], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["hf-clip", "hf-vit", "hf-dinov2-registers", "open_clip-timm-trunk-avg"])
def test_stack_head_results_add_up_to_the_attention_output(name):
    model = model_of(name)
    with torch.no_grad():
        _, cache = model.run_with_cache(images_for(model))
    heads, labels = cache.stack_head_results(layer=1, incl_bias=True, return_labels=True)
    torch.testing.assert_close(heads.sum(0), cache["attn_out", 0], atol=1e-5, rtol=1e-4)
    assert labels[:2] == ["L0H0", "L0H1"] and labels[-1] == "bias"
