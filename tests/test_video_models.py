"""Hugging Face video transformers (VideoMAE, TimeSformer, ViViT) through HookedViT, against the unwrapped
modules: random weights from small configs, no hub."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import prisma_widgets as pw
from prisma_widgets.analysis.readout import Readout
from prisma_widgets.hooked.adapters import UnsupportedModelError
from prisma_widgets.hooked.hook_points import act_name

transformers = pytest.importorskip("transformers")

SMALL = {"image_size": 32, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 64, "num_labels": 5}
KINDS = ["VideoMAEForVideoClassification", "VideoMAEModel", "TimesformerForVideoClassification",
         "TimesformerModel", "VivitForVideoClassification", "VivitModel"]


def build(kind: str, **extra: object) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind.startswith("VideoMAE"):
        config = transformers.VideoMAEConfig(patch_size=16, num_frames=4, tubelet_size=2, **{**SMALL, **extra})
    elif kind.startswith("Timesformer"):
        config = transformers.TimesformerConfig(patch_size=16, num_frames=3, **{**SMALL, **extra})
    else:
        config = transformers.VivitConfig(tubelet_size=[2, 16, 16], num_frames=4, **{**SMALL, **extra})
    return getattr(transformers, kind)(config).eval()


def reference(module: torch.nn.Module, clips: torch.Tensor) -> torch.Tensor:
    """The module's own output, as HookedViT reports it."""
    out = module(pixel_values=clips)
    if hasattr(out, "logits"):
        return out.logits
    if getattr(out, "pooler_output", None) is not None:
        return out.pooler_output
    mean_pool = getattr(module.config, "use_mean_pooling", False)
    return out.last_hidden_state.mean(1) if mean_pool else out.last_hidden_state[:, 0]


@pytest.fixture(scope="module", params=KINDS)
def video(request: pytest.FixtureRequest) -> tuple[pw.HookedViT, torch.nn.Module, torch.Tensor]:
    module = build(request.param)
    model = pw.HookedViT(module)
    torch.manual_seed(1)
    clips = torch.randn(2, model.cfg.input_frames, 3, 32, 32)
    return model, module, clips


def test_cfg_holds_the_time_axis(video):
    model, module, _ = video
    cfg = model.cfg
    tubelet = 1 if "Timesformer" in type(module).__name__ else 2
    assert (cfg.tubelet_size, cfg.grid, cfg.is_video) == (tubelet, (2, 2), True)
    assert cfg.frames * tubelet == module.config.num_frames == cfg.input_frames
    assert cfg.n_tokens == cfg.n_prefix_tokens + cfg.frames * 4
    labels = model.token_labels()
    assert len(labels) == cfg.n_tokens and labels[: cfg.n_prefix_tokens] == ["CLS"] * cfg.n_prefix_tokens
    for t in range(cfg.frames):  # every label names the patch its position holds, whatever the token order
        for r in range(2):
            for c in range(2):
                assert labels[cfg.token_index(t, r, c)] == f"t{t} r{r}c{c}"
    assert sorted(cfg.frame_major()) == list(range(cfg.n_prefix_tokens, cfg.n_tokens))
    assert cfg.frame_tokens(0) == [cfg.token_index(0, r, c) for r in range(2) for c in range(2)]
    assert cfg.tube_tokens(1, 0) == [cfg.token_index(t, 1, 0) for t in range(cfg.frames)]


def test_no_hooks_is_bit_identical(video):
    model, module, clips = video
    with torch.no_grad():
        assert torch.equal(model(clips), reference(module, clips))


def test_resid_post_is_hidden_states_for_every_layer(video):
    model, module, clips = video
    with torch.no_grad():
        out, cache = model.run_with_cache(clips, names_filter="blocks.*.hook_resid_post")
        hidden = module(pixel_values=clips, output_hidden_states=True).hidden_states
    assert torch.equal(out, reference(module, clips))
    for layer in range(model.cfg.n_layers):
        assert torch.equal(cache[f"blocks.{layer}.hook_resid_post"], hidden[layer + 1])


def test_every_hook_cached_and_patterns_sum_to_one(video):
    model, module, clips = video
    with torch.no_grad():
        out, cache = model.run_with_cache(clips)
        hidden = module(pixel_values=clips, output_hidden_states=True).hidden_states
    torch.testing.assert_close(out, reference(module, clips), atol=1e-5, rtol=1e-5)
    assert set(cache.keys()) == set(model.hook_names())
    patterns = [n for n in model.hook_names() if n.endswith("hook_pattern")]
    assert len(patterns) == model.cfg.n_layers * (2 if "hook_time_embed" in model.hook_names() else 1)
    for name in patterns:
        torch.testing.assert_close(cache[name].sum(-1), torch.ones_like(cache[name].sum(-1)), atol=1e-5, rtol=0)
    for layer in range(model.cfg.n_layers):
        torch.testing.assert_close(cache[f"blocks.{layer}.hook_resid_post"], hidden[layer + 1], atol=1e-5, rtol=1e-5)
        assert cache[f"blocks.{layer}.hook_resid_post"].shape == (2, model.cfg.n_tokens, model.cfg.d_model)


def test_patching_the_whole_clip_residual_reproduces_the_clean_output(video):
    model, _, clips = video
    corrupted = clips.flip(0)  # the other clip of the batch
    with torch.no_grad():
        clean, cache = model.run_with_cache(clips, names_filter="blocks.*.hook_resid_pre")
        for layer in range(model.cfg.n_layers):
            name = f"blocks.{layer}.hook_resid_pre"
            patched = model.run_with_hooks(corrupted, [(name, lambda x, hook, n=name: cache[n])])
            assert torch.equal(patched, clean)


def test_readout_and_lens_go_through_the_real_head(video):
    model, _, clips = video
    if model.cfg.readout == "none":
        pytest.skip("a headless model has no classes to read out")
    last = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    with torch.no_grad():
        out, cache = model.run_with_cache(clips, names_filter=last)
        readout = Readout(model)
        torch.testing.assert_close(readout.pooled(cache[last]), out, atol=1e-5, rtol=1e-5)
        lens = pw.analysis.logit_lens(model, clips)
    torch.testing.assert_close(lens.pooled[:, -1], out, atol=1e-5, rtol=1e-5)
    cfg = model.cfg
    maps = lens.patch_logits()
    assert maps.shape == (2, cfg.n_layers, cfg.frames, 2, 2, cfg.n_classes)
    torch.testing.assert_close(maps[:, :, 1, 0, 1], lens.logits[:, :, cfg.token_index(1, 0, 1)])


def test_direct_logit_attribution_sums_to_the_logit_or_is_refused(video):
    model, module, clips = video
    if model.cfg.readout == "none":
        pytest.skip("a headless model has no classes to attribute")
    divided = "hook_time_embed" in model.hook_names()
    if divided:  # two attentions per block: no one output projection per head
        with pytest.raises(UnsupportedModelError, match="heads=False"):
            pw.analysis.direct_logit_attribution(model, clips)
        dla = pw.analysis.direct_logit_attribution(model, clips, heads=False)
        assert "L0 attn_time" in dla.labels and "L1 attn" in dla.labels
    else:
        dla = pw.analysis.direct_logit_attribution(model, clips)
        assert "L1H3" in dla.labels
    torch.testing.assert_close(dla.values.sum(-1), dla.logit, atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        assert torch.equal(dla.logit, reference(module, clips).gather(1, dla.target[:, None])[:, 0])


def test_decompose_resid_sums_to_the_stream(video):
    model, _, clips = video
    with torch.no_grad():
        _, cache = model.run_with_cache(clips)
    stack, labels = cache.decompose_resid(layer=model.cfg.n_layers, return_labels=True)
    torch.testing.assert_close(stack.sum(0), cache[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"],
                               atol=1e-5, rtol=1e-5)
    assert labels[0] == "embed"


def test_timesformer_hooks_both_attentions_with_clip_shapes():
    model = pw.HookedViT(build("TimesformerForVideoClassification"))
    cfg, names = model.cfg, model.hook_names()
    assert cfg.patch_order == "rct" and model.token_labels()[1:4] == ["t0 r0c0", "t1 r0c0", "t2 r0c0"]
    block = [n.split(".", 2)[2] for n in names if n.startswith("blocks.0.")]
    assert block[:10] == ["hook_resid_pre", "ln_time.hook_normalized", "attn_time.hook_q", "attn_time.hook_k",
                          "attn_time.hook_v", "attn_time.hook_attn_scores", "attn_time.hook_pattern",
                          "attn_time.hook_z", "hook_attn_time_out", "hook_resid_mid_time"]
    clips = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        out, cache = model.run_with_cache(clips)
        B, P, T, H, D = 2, 4, 3, 4, 8
        assert cache["blocks.0.attn_time.hook_pattern"].shape == (B, P, H, T, T)
        assert cache["blocks.0.attn_time.hook_q"].shape == (B, P, T, H, D)
        assert cache["blocks.0.attn.hook_pattern"].shape == (B, T, H, 1 + P, 1 + P)
        assert cache["blocks.0.hook_attn_time_out"].shape == (B, cfg.n_tokens, cfg.d_model)
        assert cache["blocks.0.hook_attn_time_out"][:, 0].abs().max() == 0  # CLS takes no temporal write
        assert cache["hook_time_embed"].shape == (B, T, cfg.d_model)
        torch.testing.assert_close(cache["blocks.0.hook_resid_mid_time"] + cache["blocks.0.hook_attn_out"],
                                   cache["blocks.0.hook_resid_mid"], atol=0, rtol=0)

        def frame_only(pattern, hook):  # every patch attends only to its own frame in time
            return torch.eye(T).expand_as(pattern).clone()

        ablated = model.run_with_hooks(clips, [("blocks.0.attn_time.hook_pattern", frame_only)])
        # the same edit by hand: temporal attention reads each frame's own value
        v = cache["blocks.0.attn_time.hook_v"]  # [B, P, T, H, D]

        def values_as_z(z, hook):
            return v.clone()

        by_hand = model.run_with_hooks(clips, [("blocks.0.attn_time.hook_z", values_as_z)])
    assert not torch.allclose(ablated, out)
    torch.testing.assert_close(ablated, by_hand, atol=1e-6, rtol=1e-6)


def test_timesformer_space_only_is_refused_clearly():
    with pytest.raises(UnsupportedModelError, match="space_only"):
        pw.HookedViT(build("TimesformerModel", attention_type="space_only"))


def test_joint_space_time_timesformer_is_exact():
    module = build("TimesformerForVideoClassification", attention_type="joint_space_time")
    model = pw.HookedViT(module)
    clips = torch.randn(1, 3, 3, 32, 32)
    with torch.no_grad():
        out, cache = model.run_with_cache(clips, names_filter="blocks.*.hook_resid_post")
        hidden = module(pixel_values=clips, output_hidden_states=True).hidden_states
        assert torch.equal(out, module(pixel_values=clips).logits)
        _, every = model.run_with_cache(clips)
    assert cache["blocks.1.hook_resid_post"].equal(hidden[2])
    assert every["blocks.0.attn.hook_pattern"].shape == (1, 4, 13, 13)
    dla = pw.analysis.direct_logit_attribution(model, clips)
    torch.testing.assert_close(dla.values.sum(-1), dla.logit, atol=1e-4, rtol=1e-4)


def test_hub_video_names_refuse_clearly_offline():
    with pytest.raises(pw.OfflineError, match="hf:MCG-NJU/videomae-base-finetuned-kinetics"):
        pw.load("hf:MCG-NJU/videomae-base-finetuned-kinetics")
    with pytest.warns(UserWarning, match="Offline"):
        model = pw.load("hf:MCG-NJU/videomae-base-finetuned-kinetics", fallback="mouse-vit")
    assert model.name == "mouse-vit"


def test_a_saved_video_model_folder_loads_offline(tmp_path):
    build("VivitForVideoClassification").save_pretrained(tmp_path / "vivit")
    model = pw.load(f"hf:{tmp_path / 'vivit'}")
    assert type(model.model).__name__ == "VivitForVideoClassification" and model.cfg.frames == 2
    assert model.labels is not None and len(model.labels) == 5
    assert np.isfinite(model(np.zeros((7, 40, 48, 3), np.uint8)).detach().numpy()).all()


def test_videomae_without_mean_pooling_reads_token_zero_through_the_final_norm():
    for kind in ("VideoMAEForVideoClassification", "VideoMAEModel"):
        module = build(kind, use_mean_pooling=False)
        model = pw.HookedViT(module)
        clips = torch.randn(2, 4, 3, 32, 32)
        with torch.no_grad():
            assert torch.equal(model(clips), reference(module, clips))
            out, cache = model.run_with_cache(clips, names_filter="blocks.1.hook_resid_post")
            last = cache["blocks.1.hook_resid_post"]
            rebuilt = model.adapter.project(model.adapter.pool(model.adapter.final_norm()(last)))
        torch.testing.assert_close(rebuilt, out, atol=1e-6, rtol=1e-6)
        assert model.cfg.pooling == "token" and model.adapter.pool_weights()[0] == 1


def test_short_names_reach_the_temporal_hooks():
    model = pw.HookedViT(build("TimesformerModel"))
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.randn(1, 3, 3, 32, 32), names_filter="blocks.1.attn_time.*")
    assert cache["pattern_time", 1].shape == (1, 4, 4, 3, 3)
    assert act_name("attn_time_out", 0) == "blocks.0.hook_attn_time_out"
