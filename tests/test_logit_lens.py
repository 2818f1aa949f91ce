"""The logit lens reads out every token with the model's own head; at the last layer it is the model's output."""

from __future__ import annotations

import pytest
import torch

import prisma_widgets as pw
from conftest import build, pixels_for


@pytest.mark.parametrize("name", ["vit_tiny_patch16_224", "vit_medium_patch16_gap_256", "deit3_small_patch16_224"])
def test_last_layer_pooled_lens_is_the_model_output(name):
    model = build(name)
    pixels = pixels_for(model)
    lens = pw.analysis.logit_lens(model, pixels)
    with torch.no_grad():
        out = model.model(pixels)
    assert lens.logits.shape == (2, model.cfg.n_layers, model.cfg.n_tokens, 1000)
    torch.testing.assert_close(lens.pooled[:, -1], out, atol=1e-5, rtol=1e-5)
    if model.cfg.pooling == "token":  # the CLS token's own lens is the output too
        torch.testing.assert_close(lens.logits[:, -1, 0], out, atol=1e-5, rtol=1e-5)


def test_open_clip_lens_is_the_zero_shot_output(clip_b32):
    prompts = ["a photo of a cat", "a photo of a dog", "a diagram"]
    pixels = pixels_for(clip_b32)
    lens = pw.analysis.logit_lens(clip_b32, pixels, prompts=prompts)
    with torch.no_grad():
        image = torch.nn.functional.normalize(clip_b32.model.encode_image(pixels), dim=-1)
        text = clip_b32.encode_text(prompts, normalize=True)
    expected = clip_b32.logit_scale * image @ text.T
    assert lens.logits.shape == (2, 12, 50, 3) and lens.class_names == prompts
    torch.testing.assert_close(lens.pooled[:, -1], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(lens.logits[:, -1, 0], expected, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_intermediate_layer_matches_a_hand_readout(tiny):
    pixels = pixels_for(tiny)
    lens = pw.analysis.logit_lens(tiny, pixels, layers=[0], site="resid_mid", top_k=3)
    _, cache = tiny.run_with_cache(pixels, "blocks.0.hook_resid_mid")
    token = cache["resid_mid", 0][:, 7]
    by_hand = tiny.model.head(tiny.model.norm(token))
    torch.testing.assert_close(lens.logits[:, 0, 7], by_hand, atol=1e-5, rtol=1e-5)
    assert lens.top_k_indices.shape == (2, 1, 17, 3)
    assert torch.equal(lens.top_k_indices[:, 0, 7, 0], by_hand.argmax(-1))
    assert lens.patch_logits().shape == (2, 1, 4, 4, 1000)
    torch.testing.assert_close(lens.probs.sum(-1), torch.ones(2, 1, 17))


def test_lens_errors_name_the_fix(tiny, clip_b32):
    with pytest.raises(ValueError, match="prompts="):
        pw.analysis.logit_lens(clip_b32, pixels_for(clip_b32, 1))
    with pytest.raises(ValueError, match="CLIP"):
        pw.analysis.logit_lens(tiny, pixels_for(tiny, 1), prompts=["a cat"])
    with pytest.raises(ValueError, match="resid_post"):
        pw.analysis.logit_lens(tiny, pixels_for(tiny, 1), site="mlp_out")
    headless = build("vit_small_patch14_reg4_dinov2")
    with pytest.raises(ValueError, match="no classifier head"):
        pw.analysis.logit_lens(headless, pixels_for(headless, 1))


def test_layers_out_of_range_are_refused_not_wrapped(tiny):
    with pytest.raises(ValueError, match="layer 2 is out of range: the model has 2 layers"):
        pw.analysis.logit_lens(tiny, pixels_for(tiny), layers=[2])
    lens = pw.analysis.logit_lens(tiny, pixels_for(tiny), layers=[-1])
    assert lens.layers == [tiny.cfg.n_layers - 1]
