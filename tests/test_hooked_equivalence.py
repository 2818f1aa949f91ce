"""The wrapped model computes what the unwrapped module computes."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from conftest import build, pixels_for


def unwrapped(model, pixels):
    """The user's own module, called directly: logits for timm, encode_image for open_clip."""
    if model.cfg.family == "open_clip":
        return model.model.encode_image(pixels)
    return model.model(pixels)


def no_pattern(name: str) -> bool:
    return "hook_pattern" not in name and "hook_attn_scores" not in name


@torch.no_grad()
def test_no_hooks_and_edge_hooks_are_bit_exact(any_model):
    pixels = pixels_for(any_model)
    ref = unwrapped(any_model, pixels)
    assert torch.equal(any_model(pixels), ref)
    out, cache = any_model.run_with_cache(pixels, names_filter="blocks.*.hook_resid_post")
    assert torch.equal(out, ref)
    assert len(cache) == any_model.cfg.n_layers


@torch.no_grad()
def test_every_hook_but_patterns_is_bit_exact(any_model):
    pixels = pixels_for(any_model)
    ref = unwrapped(any_model, pixels)
    if any_model.cfg.family == "open_clip":
        # Without autograd, PyTorch runs nn.MultiheadAttention through its native fast path, whose
        # rounding differs from the same maths step by step; q/k/v/z hooks agree within 1e-5 there
        # (bit-exact with autograd on: see test_open_clip_attention_hooks_exact_with_grad).
        out, _ = any_model.run_with_cache(pixels, names_filter=lambda n: "attn." not in n)
        assert torch.equal(out, ref)
        out, _ = any_model.run_with_cache(pixels, names_filter=no_pattern)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    else:
        out, cache = any_model.run_with_cache(pixels, names_filter=no_pattern)
        assert torch.equal(out, ref)
        assert "blocks.1.attn.hook_z" in cache and "blocks.1.attn.hook_pattern" not in cache


def test_open_clip_attention_hooks_exact_with_grad(clip_b32):
    pixels = pixels_for(clip_b32, batch=1)
    ref = unwrapped(clip_b32, pixels)
    out, _ = clip_b32.run_with_cache(pixels, names_filter=no_pattern)
    assert torch.equal(out, ref)


@torch.no_grad()
def test_all_hooks_with_patterns_within_1e5(any_model):
    pixels = pixels_for(any_model)
    ref = unwrapped(any_model, pixels)
    out, cache = any_model.run_with_cache(pixels)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert set(cache) == set(any_model.hook_names())


@torch.no_grad()
def test_patterns_are_distributions_over_every_token(any_model):
    cfg = any_model.cfg
    _, cache = any_model.run_with_cache(pixels_for(any_model), names_filter="blocks.*.attn.hook_pattern")
    for layer in range(cfg.n_layers):
        pattern = cache["pattern", layer]
        assert pattern.shape == (2, cfg.n_heads, cfg.n_tokens, cfg.n_tokens)
        assert (pattern >= 0).all()
        torch.testing.assert_close(pattern.sum(-1), torch.ones(2, cfg.n_heads, cfg.n_tokens), atol=1e-5, rtol=0)


@torch.no_grad()
def test_pattern_matches_hand_computed_softmax(tiny):
    """The pattern is softmax(q k^T / sqrt(d_head)) of the cached q and k."""
    _, cache = tiny.run_with_cache(pixels_for(tiny), names_filter=lambda n: n.startswith("blocks.1.attn."))
    q, k = cache["q", 1], cache["k", 1]  # [batch, pos, head, d_head]
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / tiny.cfg.d_head**0.5
    torch.testing.assert_close(cache["pattern", 1], scores.softmax(-1), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(cache["attn_scores", 1], scores, atol=1e-5, rtol=1e-5)
    # z is the pattern-weighted sum of v
    z = torch.einsum("bhqk,bkhd->bqhd", cache["pattern", 1], cache["v", 1])
    torch.testing.assert_close(cache["z", 1], z, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_last_resid_post_is_forward_features_before_final_norm(any_model):
    pixels = pixels_for(any_model)
    seen = {}
    final_norm = any_model.model.norm if any_model.cfg.family == "timm" else any_model.model.visual.ln_post
    handle = final_norm.register_forward_pre_hook(lambda mod, args: seen.setdefault("x", args[0]))
    try:
        if any_model.cfg.family == "timm":
            any_model.model.forward_features(pixels)
        else:
            any_model.model.visual(pixels)
    finally:
        handle.remove()
    _, cache = any_model.run_with_cache(pixels, names_filter=f"blocks.{any_model.cfg.n_layers - 1}.hook_resid_post")
    assert torch.equal(cache["resid_post", any_model.cfg.n_layers - 1], seen["x"])


@torch.no_grad()
def test_residual_stream_adds_up(timm_model):
    """resid_mid = resid_pre + attn_out and resid_post = resid_mid + mlp_out, exactly."""
    _, cache = timm_model.run_with_cache(pixels_for(timm_model), names_filter=lambda n: n.startswith("blocks.0."))
    assert torch.equal(cache["resid_mid", 0], cache["resid_pre", 0] + cache["attn_out", 0])
    assert torch.equal(cache["resid_post", 0], cache["resid_mid", 0] + cache["mlp_out", 0])


@torch.no_grad()
def test_patching_every_resid_pre_position_restores_clean_output(any_model):
    clean, corrupted = pixels_for(any_model, seed=1), pixels_for(any_model, seed=2)
    clean_out, clean_cache = any_model.run_with_cache(clean, names_filter="blocks.0.hook_resid_pre")
    corrupted_out = any_model(corrupted)
    assert not torch.equal(clean_out, corrupted_out)

    def patch_in_clean(resid, hook):
        return clean_cache[hook.name]

    patched = any_model.run_with_hooks(corrupted, fwd_hooks=[("blocks.0.hook_resid_pre", patch_in_clean)])
    assert torch.equal(patched, clean_out)


@torch.no_grad()
def test_zero_ablating_a_head_equals_zeroing_its_output_weights(tiny):
    """Zeroing head 1 of block 0 through hook_z equals the unwrapped model with that head's proj columns zeroed."""
    pixels = pixels_for(tiny)
    d_head, head = tiny.cfg.d_head, 1

    def ablate(z, hook):
        z = z.clone()
        z[:, :, head] = 0
        return z

    ablated = tiny.run_with_hooks(pixels, fwd_hooks=[("blocks.0.attn.hook_z", ablate)])
    assert (ablated - tiny(pixels)).abs().max() > 1e-4

    by_hand = copy.deepcopy(tiny.model)
    by_hand.blocks[0].attn.proj.weight[:, head * d_head:(head + 1) * d_head] = 0
    torch.testing.assert_close(ablated, by_hand(pixels), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_fused_attention_stays_on_unless_pattern_requested(tiny, monkeypatch):
    calls = {"n": 0}
    real = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    pixels = pixels_for(tiny)
    tiny.run_with_cache(pixels, names_filter=lambda n: "resid" in n or "hook_z" in n or "hook_q" in n)
    assert calls["n"] == tiny.cfg.n_layers
    calls["n"] = 0
    tiny.run_with_cache(pixels, names_filter="blocks.1.attn.hook_pattern")
    assert calls["n"] == tiny.cfg.n_layers - 1  # block 1 runs explicitly, block 0 stays fused


@torch.no_grad()
def test_start_and_stop_at_layer_split_the_forward_exactly(any_model):
    pixels = pixels_for(any_model)
    ref = any_model(pixels)
    resid = any_model(pixels, stop_at_layer=1)
    _, cache = any_model.run_with_cache(pixels, names_filter="blocks.1.hook_resid_pre")
    assert torch.equal(resid, cache["resid_pre", 1])
    assert torch.equal(any_model(resid, start_at_layer=1), ref)
    embedded = any_model(pixels, stop_at_layer=0)  # the stream entering block 0
    assert embedded.shape == (2, any_model.cfg.n_tokens, any_model.cfg.d_model)
    assert torch.equal(any_model(embedded, start_at_layer=0), ref)


def test_gradients_flow_through_hooks(tiny):
    """Attribution methods need d(output)/d(activation) at a hook."""
    pixels = pixels_for(tiny, batch=1)
    kept = {}

    def keep(x, hook):
        x.retain_grad()
        kept["x"] = x

    out = tiny.run_with_hooks(pixels, fwd_hooks=[("blocks.1.hook_resid_pre", keep)])
    out[0, 0].backward()
    assert kept["x"].grad is not None and kept["x"].grad.abs().sum() > 0


def test_bf16_model_gets_bf16_input_and_hooks():
    """A bf16 model gets bf16 input and its hooks see bf16 tensors."""
    model = copy.deepcopy(build("vit_tiny_patch16_224")).to(torch.bfloat16)
    seen = {}

    def record(x, hook):
        seen["dtype"] = x.dtype

    model.run_with_hooks(pixels_for(model, batch=1), fwd_hooks=[("blocks.0.hook_resid_post", record)])
    assert seen["dtype"] == torch.bfloat16
