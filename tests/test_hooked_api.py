"""Hook registration, name filters, the cache and the errors users meet."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import prisma_widgets as pw
from conftest import pixels_for


# ----- hook names and filters -----
def test_hook_names_follow_transformer_lens(tiny, clip_b32):
    names = tiny.hook_names()
    for expected in [
        "hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre", "blocks.0.ln1.hook_normalized",
        "blocks.0.attn.hook_q", "blocks.0.attn.hook_k", "blocks.0.attn.hook_v", "blocks.0.attn.hook_attn_scores",
        "blocks.0.attn.hook_pattern", "blocks.0.attn.hook_z", "blocks.0.hook_attn_out", "blocks.0.hook_resid_mid",
        "blocks.1.mlp.hook_pre", "blocks.1.mlp.hook_post", "blocks.1.hook_mlp_out", "blocks.1.hook_resid_post",
        "ln_final.hook_normalized", "hook_logits",
    ]:
        assert expected in names
    assert names.index("blocks.0.hook_resid_pre") < names.index("blocks.0.attn.hook_pattern") < names.index("blocks.1.hook_resid_pre")
    assert "hook_image_embed" in clip_b32.hook_names() and "hook_logits" not in clip_b32.hook_names()


@torch.no_grad()
def test_activation_shapes_follow_the_documented_layouts(any_model):
    c = any_model.cfg
    _, cache = any_model.run_with_cache(pixels_for(any_model, batch=2))
    assert cache["hook_embed"].shape == (2, c.n_patches, c.d_model)
    for kind in ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "ln1"):
        assert cache[kind, 0].shape == (2, c.n_tokens, c.d_model), kind
    for kind in ("q", "k", "v", "z"):
        assert cache[kind, 0].shape == (2, c.n_tokens, c.n_heads, c.d_head), kind
    assert cache["pattern", 0].shape == (2, c.n_heads, c.n_tokens, c.n_tokens)
    assert cache["blocks.0.mlp.hook_post"].shape == (2, c.n_tokens, c.d_mlp)
    out_name = "hook_image_embed" if c.family == "open_clip" else ("hook_logits" if c.n_classes else "hook_pooled")
    assert cache[out_name].shape == (2, c.d_output)


@torch.no_grad()
def test_names_filter_accepts_names_globs_predicates_and_lists(tiny):
    pixels = pixels_for(tiny)
    one = tiny.run_with_cache(pixels, "blocks.1.hook_resid_post")[1]
    assert list(one) == ["blocks.1.hook_resid_post"]
    globbed = tiny.run_with_cache(pixels, "blocks.*.attn.hook_pattern")[1]
    assert list(globbed) == ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"]
    predicate = tiny.run_with_cache(pixels, lambda n: "resid_mid" in n)[1]
    assert list(predicate) == ["blocks.0.hook_resid_mid", "blocks.1.hook_resid_mid"]
    mixed = tiny.run_with_cache(pixels, ["hook_embed", lambda n: n.endswith("hook_z")])[1]
    assert list(mixed) == ["hook_embed", "blocks.0.attn.hook_z", "blocks.1.attn.hook_z"]
    assert len(tiny.run_with_cache(pixels)[1]) == len(tiny.hook_names())


def test_act_name_short_forms():
    assert pw.act_name("pattern", 3) == "blocks.3.attn.hook_pattern"
    assert pw.act_name("resid_pre", 0) == "blocks.0.hook_resid_pre"
    assert pw.act_name("embed") == "hook_embed"
    with pytest.raises(ValueError, match="per-layer"):
        pw.act_name("resid_pre")


# ----- hooks: add, replace, remove -----
@torch.no_grad()
def test_hooks_context_removes_hooks_even_when_the_forward_raises(tiny):
    pixels = pixels_for(tiny)
    clean = tiny(pixels)

    def explode(x, hook):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with tiny.hooks([("blocks.0.hook_resid_pre", explode)]):
            tiny(pixels)
    assert tiny._hooks == []
    with pytest.raises(RuntimeError, match="boom"):
        tiny.run_with_hooks(pixels, fwd_hooks=[("blocks.1.attn.hook_z", explode)])
    assert torch.equal(tiny(pixels), clean)


@torch.no_grad()
def test_hooks_context_applies_inside_only(tiny):
    pixels = pixels_for(tiny)
    clean = tiny(pixels)
    with tiny.hooks([("blocks.1.hook_resid_post", lambda x, hook: x * 0)]):
        zeroed = tiny(pixels)
    # zero residual -> final norm gives its bias everywhere -> the output no longer depends on the image
    assert not torch.equal(zeroed, clean)
    torch.testing.assert_close(zeroed[0], zeroed[1])
    assert torch.equal(tiny(pixels), clean)


@torch.no_grad()
def test_add_hook_persists_until_reset(tiny):
    pixels = pixels_for(tiny)
    clean = tiny(pixels)
    seen: list[str] = []
    tiny.add_hook("blocks.*.hook_resid_pre", lambda x, hook: seen.append(hook.name))
    try:
        tiny(pixels)
        tiny(pixels)
        assert seen == ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"] * 2
    finally:
        tiny.reset_hooks()
    assert torch.equal(tiny(pixels), clean)


@torch.no_grad()
def test_hook_point_tells_its_layer(tiny):
    layers = []
    tiny.run_with_hooks(pixels_for(tiny), fwd_hooks=[(lambda n: "resid_post" in n or n == "hook_embed",
                                                       lambda x, hook: layers.append(hook.layer()))])
    assert layers == [None, 0, 1]


@torch.no_grad()
def test_in_place_edits_and_replacements_both_take_effect(tiny):
    pixels = pixels_for(tiny)

    def in_place(z, hook):
        z[:, :, 0] = 0

    def replace(z, hook):
        z = z.clone()
        z[:, :, 0] = 0
        return z

    a = tiny.run_with_hooks(pixels, fwd_hooks=[("blocks.0.attn.hook_z", in_place)])
    b = tiny.run_with_hooks(pixels, fwd_hooks=[("blocks.0.attn.hook_z", replace)])
    assert torch.equal(a, b) and not torch.equal(a, tiny(pixels))


@torch.no_grad()
def test_pattern_edits_change_the_output(tiny):
    """Replacing the pattern with uniform attention is used downstream (value mixing)."""
    pixels = pixels_for(tiny)

    def uniform(pattern, hook):
        return torch.full_like(pattern, 1.0 / pattern.shape[-1])

    edited = tiny.run_with_hooks(pixels, fwd_hooks=[("blocks.1.attn.hook_pattern", uniform)])
    _, cache = tiny.run_with_cache(pixels, "blocks.1.attn.hook_v")
    assert not torch.allclose(edited, tiny(pixels))
    # With uniform attention every query's z is the mean of v over keys.
    z_seen = {}
    tiny.run_with_hooks(pixels, fwd_hooks=[("blocks.1.attn.hook_pattern", uniform),
                                           ("blocks.1.attn.hook_z", lambda z, h: z_seen.setdefault("z", z.clone()))])
    expected = cache["v", 1].mean(dim=1, keepdim=True).expand_as(z_seen["z"])
    torch.testing.assert_close(z_seen["z"], expected, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_run_with_hooks_can_keep_hooks(tiny):
    pixels = pixels_for(tiny)
    seen = []
    tiny.run_with_hooks(pixels, fwd_hooks=[("hook_embed", lambda x, h: seen.append(1))], reset_hooks_end=False)
    try:
        tiny(pixels)
        assert seen == [1, 1]
    finally:
        tiny.reset_hooks()


# ----- errors -----
def test_unknown_hook_name_suggests_the_nearest(tiny):
    with pytest.raises(pw.HookNameError) as err:
        tiny.run_with_cache(pixels_for(tiny), names_filter="blocks.0.hook_resid")
    message = str(err.value)
    assert "blocks.0.hook_resid_pre" in message and "blocks.0.hook_resid_post" in message
    with pytest.raises(pw.HookNameError, match="Did you mean.*blocks.1.attn.hook_pattern"):
        tiny.run_with_hooks(pixels_for(tiny), fwd_hooks=[("blocks.1.attn.hook_patern", lambda x, h: None)])
    with pytest.raises(pw.HookNameError, match="out of range.*2 layers"):
        tiny.run_with_cache(pixels_for(tiny), names_filter="blocks.7.hook_resid_pre")
    with pytest.raises(pw.HookNameError, match="unknown hook name"):
        tiny.run_with_cache(pixels_for(tiny), names_filter="blocks.*.hook_nothing")


def test_wrong_image_tensor_shape_says_what_is_expected(tiny):
    with pytest.raises(ValueError, match=r"\[batch, 3, 64, 64\].*model.preprocess"):
        tiny(torch.randn(2, 3, 224, 224))
    with pytest.raises(ValueError, match=r"\[batch, 3, 64, 64\]"):
        tiny(torch.randn(2, 64, 64))
    with pytest.raises(ValueError, match="residual stream"):
        tiny(torch.randn(2, 3, 64, 64), start_at_layer=1)


def test_hook_returning_the_wrong_shape_is_refused(tiny):
    with pytest.raises(ValueError, match=r"returned shape \[2, 17\].*\[2, 17, 192\]"):
        tiny.run_with_hooks(pixels_for(tiny), fwd_hooks=[("blocks.0.hook_resid_pre", lambda x, h: x[..., 0])])


def test_unsupported_modules_name_the_supported_families():
    import timm

    # Eva and post-norm blocks became supported families (issue 14: tests/test_model_families.py); BEiT's
    # relative-position attention and relpos ViTs are still other architectures
    beit = timm.create_model("beit_base_patch16_224", pretrained=False, img_size=32, depth=1)
    relpos = timm.create_model("vit_relpos_medium_patch16_224", pretrained=False, img_size=32, depth=1)
    for module in (beit, relpos, nn.Linear(3, 3)):
        with pytest.raises(pw.UnsupportedModelError, match="timm VisionTransformer.*open_clip"):
            pw.HookedViT(module)

    class OwnBlock(timm.models.vision_transformer.Block):
        """A block with its own forward: the adapter cannot know its parts."""

    own = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=1, block_fn=OwnBlock)
    with pytest.raises(pw.UnsupportedModelError, match="OwnBlock"):
        pw.HookedViT(own)


# ----- the cache -----
@torch.no_grad()
def test_cache_short_keys_accumulated_resid_and_stack(tiny):
    _, cache = tiny.run_with_cache(pixels_for(tiny), lambda n: "resid" in n or "pattern" in n)
    assert cache["pattern", 1] is cache["blocks.1.attn.hook_pattern"]
    assert ("resid_pre", 0) in cache and ("q", 0) not in cache
    resid, labels = cache.accumulated_resid(return_labels=True)
    assert labels == ["0_pre", "1_pre", "final_post"]
    assert torch.equal(resid[0], cache["resid_pre", 0]) and torch.equal(resid[-1], cache["resid_post", 1])
    assert cache.accumulated_resid(incl_mid=True).shape[0] == 5
    assert torch.equal(cache.accumulated_resid(layer=1)[-1], cache["resid_pre", 1])
    stacked = cache.stack("hook_pattern")
    assert stacked.shape == (2, *cache["pattern", 0].shape) and torch.equal(stacked[1], cache["pattern", 1])
    assert torch.equal(cache.stack("blocks.*.hook_resid_mid")[0], cache["resid_mid", 0])


@torch.no_grad()
def test_cache_memory_move_and_errors(tiny):
    _, cache = tiny.run_with_cache(pixels_for(tiny), "blocks.*.hook_resid_post")
    assert cache.nbytes == 2 * 2 * 17 * 192 * 4
    assert "KB" in repr(cache)
    half = cache.to("cpu", dtype=torch.float16)
    assert half["resid_post", 0].dtype == torch.float16 and half.nbytes == cache.nbytes // 2
    with pytest.raises(pw.HookNameError, match="was not cached.*names_filter"):
        cache["blocks.0.hook_mlp_out"]
    with pytest.raises(pw.HookNameError, match="blocks.1.hook_resid_post"):
        cache["blocks.1.hook_resid_pst"]
    with pytest.raises(pw.HookNameError, match="accumulated_resid needs"):
        cache.accumulated_resid()
    single = tiny.run_with_cache(pixels_for(tiny, batch=1), "hook_embed")[1].remove_batch_dim()
    assert single["hook_embed"].shape == (16, 192)


@torch.no_grad()
def test_cache_to_device_option_and_stop_at_layer(tiny):
    out, cache = tiny.run_with_cache(pixels_for(tiny), lambda n: "resid" in n, stop_at_layer=1, device="cpu")
    assert out.shape == (2, 17, 192)
    assert "blocks.1.hook_resid_pre" not in cache and "blocks.0.hook_resid_post" in cache
    assert torch.equal(out, cache["resid_post", 0])
