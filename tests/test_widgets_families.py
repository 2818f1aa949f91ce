"""The widgets end to end on one small model of every family added in issue 14: AttentionGrid (and its head
summaries), LogitLens (with its readout), PatchingHeatmap, FeatureGallery (a tiny SAE) and LogitAttribution
(linked to an AttentionGrid; a clear refusal where the head is an attention pool). Token layout is data: no CLS
(SigLIP, Eva), registers (DINOv2, Eva), a distillation token and a non-square grid (DeiT), attention-pool heads,
prompts or classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import prisma_widgets as pw
from prisma_widgets.hooked.coverage import catalog
from prisma_widgets.widgets._base import decode_array

from test_model_families import toy_tokenizer

PROMPTS = ["a red circle", "a blue square", "a green star"]


def _timm_deit_distilled():
    torch.manual_seed(0)
    model = pw.load("deit_tiny_distilled_patch16_224", pretrained=False, img_size=(32, 48), depth=2, num_classes=3)
    model.labels = ["circle", "square", "star"]
    return model


def _timm_eva():
    torch.manual_seed(0)
    model = pw.load("vit_medium_patch16_rope_reg1_gap_256", pretrained=False, img_size=32, depth=2, num_classes=3)
    model.labels = ["circle", "square", "star"]
    return model


def _open_clip(name, **vision):
    import open_clip

    torch.manual_seed(0)
    if vision:
        cfg = open_clip.get_model_config(name)
        module = open_clip.create_model(
            name, pretrained=None, embed_dim=64,
            vision_cfg=dict(cfg["vision_cfg"], layers=2, image_size=32, width=64, head_width=32, **vision),
            text_cfg=dict(cfg["text_cfg"], layers=1, width=64, heads=2)).eval()
    else:
        module = catalog.open_clip_small(name, image_size=32, width=64)
    return pw.HookedViT(module, tokenizer=toy_tokenizer(module))


def _hf(name):
    torch.manual_seed(0)
    module = catalog.hf_builders()[name]().eval()
    model = pw.HookedViT(module, tokenizer=toy_tokenizer(module) if hasattr(module, "text_model") else None)
    return model


FAMILIES = {
    "timm-eva": _timm_eva,  # RoPE, a register token, no CLS, average pool
    "timm-deit-distilled": _timm_deit_distilled,  # CLS + distillation token, two heads, a 2 x 3 grid
    "open_clip-siglip": lambda: _open_clip("ViT-B-16-SigLIP"),  # timm trunk, attention pool, logit bias
    "open_clip-custom": lambda: _open_clip("ViT-B-16", qk_norm=True, scale_heads=True),  # custom blocks
    "hf-clip": lambda: _hf("CLIPModel"),
    "hf-siglip": lambda: _hf("SiglipModel"),
    "hf-vit": lambda: _hf("ViTForImageClassification"),
    "hf-dinov2-registers": lambda: _hf("Dinov2WithRegistersForImageClassification"),
}


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request):
    model = FAMILIES[request.param]()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (*model.cfg.image_size, 3), dtype=np.uint8) for _ in range(4)]
    prompts = PROMPTS if model.cfg.readout == "text" else None
    return model, images, prompts


def test_attention_grid(family):
    model, images, _ = family
    grid = pw.AttentionGrid(model, images[:2], precision="float32")
    with torch.no_grad():
        _, cache = model.run_with_cache(images[:2], names_filter=lambda n: n.endswith("hook_pattern"))
    ref = np.stack([cache["pattern", i].numpy() for i in range(model.cfg.n_layers)], 1)
    np.testing.assert_array_equal(grid.pattern_values(), ref)
    assert grid.token_labels == model.token_labels() and grid.n_prefix_tokens == model.cfg.n_prefix_tokens
    assert grid.grid == list(model.cfg.grid)


def test_logit_lens_reads_out_the_models_own_output(family):
    model, images, prompts = family
    w = pw.LogitLens(model, images[0], prompts=prompts)
    lens = pw.analysis.logit_lens(model, [images[0]], prompts=prompts)
    idx, _ = w.top_values()
    np.testing.assert_array_equal(idx, lens.top_k_indices[0].numpy())
    readout = pw.analysis.Readout(model, prompts)
    with torch.no_grad():
        final = readout.scores(model(images[0]))
    torch.testing.assert_close(lens.pooled[:, -1], final, atol=1e-5, rtol=1e-5)  # the lens ends at the output
    assert w.class_names == (prompts or model.labels) and w.token_labels == model.token_labels()


def test_patching_heatmap_holds_the_engines_sweep(family):
    model, images, prompts = family
    def metric(out):  # random weights may give both images one top class: read one output unit instead
        return out[..., 0].mean()

    w = pw.PatchingHeatmap(model, images[0], images[1], prompts=prompts, top_k=2, metric=metric)
    result = pw.analysis.patch(model, images[0], images[1], metric=metric, progress=False)
    np.testing.assert_array_equal(decode_array(w.values), result.values.numpy())
    L, T = model.cfg.n_layers, model.cfg.n_tokens
    assert w.token_labels == model.token_labels() and decode_array(w.values).shape == (L, T)
    assert decode_array(w.cell_top_indices).shape == (L, T, 2)  # every cell's patched prediction, read out


def test_feature_gallery_on_a_tiny_sae(family):
    model, images, prompts = family
    hook = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    g = torch.Generator().manual_seed(0)
    sae = pw.SAE(d_in=model.cfg.d_model, d_sae=12, k=3, hook=hook, generator=g)
    w = pw.FeatureGallery(model, sae, images, prompts=prompts, page_size=4)
    stats = pw.feature_stats(model, sae, images, prompts=prompts)
    np.testing.assert_array_equal(decode_array(w.frequency), stats.frequency)
    assert w.d_sae == 12 and w.grid == list(model.cfg.grid)
    assert w.class_names == list(stats.class_names or [])


def test_logit_attribution_linked_to_an_attention_grid(family):
    model, images, prompts = family
    if model.cfg.pooling in ("map", "attention"):  # an attention-pool head: its score does not split
        with pytest.raises(pw.UnsupportedModelError, match="not a weighted sum of tokens"):
            pw.LogitAttribution(model, images[0], prompts=prompts)
        return
    w = pw.LogitAttribution(model, images[0], prompts=prompts)
    dla = pw.analysis.direct_logit_attribution(model, [images[0]], prompts=prompts)
    np.testing.assert_allclose(w.values(), dla.values[0].numpy(), rtol=1e-5, atol=1e-6)
    assert abs(float(w.values().sum()) - w.logit()) <= 1e-4 * max(1.0, abs(w.logit()))
    L, H, T = model.cfg.n_layers, model.cfg.n_heads, model.cfg.n_tokens
    assert w.token_labels == model.token_labels() and w.grid == list(model.cfg.grid)
    assert w.n_prefix_tokens == model.cfg.n_prefix_tokens and (w.n_layers, w.n_heads) == (L, H)
    label = f"L{w.layer}H{w.head}"  # the selected head's source map: over this layout's tokens, summing to its value
    source = w.position_map(label)
    assert source.shape == (T,)
    assert abs(float(source.sum()) - float(w.values()[w.labels.index(label)])) <= 1e-4 * max(1.0, abs(w.logit()))
    pooled = decode_array(w.pooled_attention)
    assert pooled.shape == (L, H, T)
    np.testing.assert_allclose(pooled.sum(-1), np.ones((L, H)), atol=1e-5)
    grid = pw.AttentionGrid(model, images[:2], precision="float32")
    pw.link(w, grid)
    w.layer, w.head = L - 1, H - 1
    assert (grid.layer, grid.head) == (L - 1, H - 1)
    grid.head = 0
    assert (w.head, w.part) == (0, "head")
    summary = grid.head_summary()  # mean attention distance and entropy on this layout
    rows, cols = model.cfg.grid
    assert summary["distance"].shape == summary["entropy"].shape == (L, H)
    assert np.all(summary["distance"] >= 0) and np.all(summary["distance"] <= np.hypot(rows - 1, cols - 1) + 1e-5)
    assert np.all(summary["entropy"] >= 0) and np.all(summary["entropy"] <= np.log(T) + 1e-5)
