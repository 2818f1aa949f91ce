"""Every public path on a CUDA device, in float32 and bfloat16, against the same computation on the CPU in float32.

Hooks, the logit lens, patching (exact and attribution), caching (in memory and to disk), SAE training and its
resume, feature statistics, and each widget's compute. Marked ``cuda`` and skipped without a CUDA device;
``benchmarks/gpu_all.py`` runs them on a GPU machine. ``PRISMA_WIDGETS_TEST_DEVICE=cpu`` runs the same checks on
the CPU (bfloat16 against float32 there), which tests the tests where no GPU is at hand.

Agreement is measured against the reference's largest magnitude: ``max |device - cpu| <= tol * max |cpu|`` with
``tol`` 2e-4 in float32 (TF32 switched off while comparing) and 5e-2 in bfloat16 (8 significant bits).
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch

import prisma_widgets as pw
from conftest import build, pixels_for
from prisma_widgets.analysis.patching import default_metric, run_patched

DEVICE = os.environ.get("PRISMA_WIDGETS_TEST_DEVICE") or ("cuda" if torch.cuda.is_available() else None)
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(DEVICE is None, reason="needs a CUDA device (PRISMA_WIDGETS_TEST_DEVICE=cpu runs it on the CPU)"),
]
DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.bfloat16, id="bfloat16")]
TOL = {torch.float32: 2e-4, torch.bfloat16: 5e-2}
HOOK = "blocks.3.hook_resid_post"


@pytest.fixture(autouse=True)
def _float32_means_float32():
    matmul, conv = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, conv


def on_device(model: pw.HookedViT, dtype: torch.dtype) -> pw.HookedViT:
    return copy.deepcopy(model).to(DEVICE, dtype)


def assert_close(got, ref, dtype: torch.dtype, what: str, tol: float | None = None) -> None:
    got = torch.as_tensor(np.asarray(got) if not isinstance(got, torch.Tensor) else got).detach().float().cpu()
    ref = torch.as_tensor(np.asarray(ref) if not isinstance(ref, torch.Tensor) else ref).detach().float().cpu()
    assert got.shape == ref.shape, f"{what}: shape {list(got.shape)} on {DEVICE}, {list(ref.shape)} on the CPU"
    tol = TOL[dtype] if tol is None else tol
    scale = float(ref.abs().max()) if ref.numel() else 0.0
    err = float((got - ref).abs().max()) if ref.numel() else 0.0
    assert err <= tol * max(scale, 1e-6), f"{what}: max |{DEVICE} - cpu| = {err:.3g} > {tol} x {scale:.3g}"


def unwrapped(model: pw.HookedViT, pixels: torch.Tensor) -> torch.Tensor:
    own = model.model
    return own.encode_image(pixels) if hasattr(own, "encode_image") else own(pixels)


@pytest.fixture(scope="module")
def mouse():
    return pw.load("mouse-vit")


@pytest.fixture(scope="module")
def shapes_and_corrupted(mouse):
    images, _ = pw.zoo.shapes(8, seed=0)
    corrupted = pw.corrupt(images[0], [(r, c) for r in range(8) for c in range(8)], mode="mask", model=mouse)
    return images, corrupted


def tiny_sae(d_in: int, d_sae: int = 40, k: int = 6) -> pw.SAE:
    g = torch.Generator().manual_seed(0)
    sae = pw.SAE(d_in=d_in, d_sae=d_sae, k=k, hook=HOOK, generator=g)
    with torch.no_grad():
        sae.b_enc.copy_(torch.randn(d_sae, generator=g) * 0.3)
    return sae


# ----------------------------------------------------------------- hooks and caching
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("arch", ["vit_tiny_patch16_224", "deit3_small_patch16_224", "ViT-B-32"])
def test_every_hook_and_the_output_agree_with_cpu(arch, dtype):
    if arch == "ViT-B-32":
        pytest.importorskip("open_clip")
    cpu = build(arch)
    pixels = pixels_for(cpu)
    with torch.no_grad():
        ref_out, ref = cpu.run_with_cache(pixels)
        model = on_device(cpu, dtype)
        out, cache = model.run_with_cache(pixels.to(DEVICE))
        host_out, host = model.run_with_cache(pixels.to(DEVICE), device="cpu")
    assert out.device.type == DEVICE and out.dtype == dtype
    assert_close(out, ref_out, dtype, f"{arch} output")
    assert list(cache) == list(ref)
    for name in ref:
        assert cache[name].device.type == DEVICE and host[name].device.type == "cpu"
        assert_close(cache[name], ref[name], dtype, name)
        assert torch.equal(host[name], cache[name].cpu()), f"{name}: device='cpu' differs from the device cache"
    assert torch.equal(host_out, out)


@pytest.mark.parametrize("dtype", DTYPES)
def test_no_hooks_and_non_pattern_hooks_are_bit_identical_to_the_module_on_device(dtype):
    model = on_device(build("vit_tiny_patch16_224"), dtype)
    pixels = pixels_for(model).to(DEVICE, dtype)
    no_pattern = lambda n: "hook_pattern" not in n and "hook_attn_scores" not in n  # noqa: E731
    with torch.no_grad():
        ref = unwrapped(model, pixels)
        assert torch.equal(model(pixels), ref)
        assert torch.equal(model.run_with_cache(pixels, "blocks.*.hook_resid_post")[0], ref)
        assert torch.equal(model.run_with_cache(pixels, no_pattern)[0], ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_editing_hooks_and_partial_runs_agree_with_cpu(dtype):
    cpu = build("vit_tiny_patch16_224")
    model = on_device(cpu, dtype)
    pixels = pixels_for(cpu)

    def ablate_head(z, hook):
        z = z.clone()
        z[:, :, 1] = 0
        return z

    hooks = [("blocks.1.attn.hook_z", ablate_head), ("blocks.0.hook_mlp_out", lambda x, hook: x * 0.5)]
    with torch.no_grad():
        assert_close(model.run_with_hooks(pixels.to(DEVICE), hooks), cpu.run_with_hooks(pixels, hooks), dtype,
                     "edited run")
        resid = cpu(pixels, stop_at_layer=1)
        assert_close(model(pixels.to(DEVICE), stop_at_layer=1), resid, dtype, "stop_at_layer=1")
        assert_close(model(resid.to(DEVICE, dtype), start_at_layer=1), cpu(resid, start_at_layer=1), dtype,
                     "start_at_layer=1")


@pytest.mark.parametrize("dtype", DTYPES)
def test_logit_lens_agrees_with_cpu(dtype):
    cpu = build("vit_tiny_patch16_224")
    images = [pixels_for(cpu, batch=1, seed=s)[0] for s in range(2)]
    ref = pw.analysis.logit_lens(cpu, torch.stack(images))
    got = pw.analysis.logit_lens(on_device(cpu, dtype), torch.stack(images).to(DEVICE))
    assert_close(got.logits, ref.logits, dtype, "lens logits")
    assert_close(got.pooled, ref.pooled, dtype, "lens pooled")


# ----------------------------------------------------------------- patching
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ["exact", "attribution"])
@pytest.mark.parametrize(("site", "by"), [("resid_pre", "position"), ("z", "head")])
def test_patching_agrees_with_cpu(mouse, shapes_and_corrupted, site, by, method, dtype):
    images, corrupted = shapes_and_corrupted
    ref = pw.analysis.patch(mouse, images[0], corrupted, site=site, by=by, method=method, progress=False)
    got = pw.analysis.patch(on_device(mouse, dtype), images[0], corrupted, site=site, by=by, method=method,
                            progress=False)
    assert got.values.shape == ref.values.shape
    # effects are normalised (0 corrupted, 1 clean): compared on that scale
    tol = 2e-3 if dtype == torch.float32 else 0.1
    assert float((got.values - ref.values).abs().max()) <= tol, f"{site} by {by}, {method}"


def test_exact_patching_equals_single_patched_runs_on_device(mouse, shapes_and_corrupted):
    images, corrupted = shapes_and_corrupted
    model = on_device(mouse, torch.float32)
    result = pw.analysis.patch(model, images[0], corrupted, site="resid_pre", by="position", progress=False)
    with torch.no_grad():
        metric = default_metric(model, model(images[0]), model(corrupted))
    for layer, cell in [(0, 5), (2, 30), (3, 64)]:
        with torch.no_grad():
            m = float(metric(run_patched(model, images[0], corrupted, "resid_pre", "position", layer, cell)))
        expected = (m - result.corrupted_metric) / (result.clean_metric - result.corrupted_metric)
        assert abs(float(result.values[layer, cell]) - expected) < 1e-4


# ----------------------------------------------------------------- activation caching and SAEs
@pytest.mark.parametrize("dtype", DTYPES)
def test_cache_activations_agrees_with_cpu(mouse, tmp_path, dtype):
    images, _ = pw.zoo.shapes(6, seed=1)
    ref = pw.cache_activations(mouse, images, HOOK, tmp_path / "cpu", progress=False)
    got = pw.cache_activations(on_device(mouse, dtype), images, HOOK, tmp_path / "dev", progress=False)
    assert got.complete and got.shape == ref.shape
    assert_close(got.to_tensor(), ref.to_tensor(), dtype, "cached rows", tol=max(TOL[dtype], 2e-3))  # float16 file


@pytest.mark.parametrize("dtype", DTYPES)
def test_sae_training_and_resume_on_device(tmp_path, dtype):
    """Trains like the CPU does (explained variance within 0.05), and an interrupted run resumes to the same SAE."""
    g = torch.Generator().manual_seed(0)
    directions = torch.nn.functional.normalize(torch.randn(64, 32, generator=g), dim=-1)
    codes = torch.rand(4096, 64, generator=g) * (torch.rand(4096, 64, generator=g) < 0.06)
    x = (codes @ directions).to(dtype)
    kwargs = dict(expansion=4, k=4, batch_size=256, steps=40, lr=3e-3, progress=False, log_every=10,
                  checkpoint_every=10)
    evs: dict[str, float] = {}

    def record(where):
        return lambda step, sae, metrics: evs.__setitem__(where, metrics["ev"]) if metrics else None

    pw.train_sae(x, device="cpu", callback=record("cpu"), **kwargs)
    clean = pw.train_sae(x, device=DEVICE, checkpoint_dir=tmp_path / "clean", callback=record("device"), **kwargs)
    assert clean.W_dec.device.type == DEVICE
    assert abs(evs["device"] - evs["cpu"]) < 0.05, evs

    def stop_at_23(step, sae, metrics):
        if step == 23:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pw.train_sae(x, device=DEVICE, checkpoint_dir=tmp_path / "run", callback=stop_at_23, **kwargs)
    resumed = pw.train_sae(x, device=DEVICE, checkpoint_dir=tmp_path / "run", **kwargs)
    for name, param in clean.state_dict().items():
        assert_close(resumed.state_dict()[name], param, torch.float32, f"resumed {name}", tol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_feature_stats_agree_with_cpu(mouse, dtype):
    images, _ = pw.zoo.shapes(20, seed=7)
    sae = tiny_sae(mouse.cfg.d_model)
    ref = pw.feature_stats(mouse, sae, images)
    got = pw.feature_stats(on_device(mouse, dtype), copy.deepcopy(sae).to(DEVICE), images)
    # a feature firing or not can flip where its pre-activation sits at the threshold
    assert np.abs(got.frequency - ref.frequency).max() <= (1e-6 if dtype == torch.float32 else 0.03)
    assert_close(got.max_activation, ref.max_activation, dtype, "max activation")
    agree = (got.top_images[:, 0] == ref.top_images[:, 0]).mean()
    assert agree >= (1.0 if dtype == torch.float32 else 0.8), f"top image agrees for {agree:.0%} of features"
    if ref.class_effects is not None:
        assert_close(got.class_effects, ref.class_effects, dtype, "class effects")


# ----------------------------------------------------------------- each widget's compute
@pytest.mark.parametrize("dtype", DTYPES)
def test_attention_grid_compute_agrees_with_cpu(chelsea, coffee, dtype):
    pytest.importorskip("anywidget")
    from prisma_widgets.widgets.codec import decode_array

    cpu = build("vit_tiny_patch16_224")
    ref = pw.AttentionGrid(cpu, [chelsea, coffee], precision="float32", rollout=True)
    got = pw.AttentionGrid(on_device(cpu, dtype), [chelsea, coffee], precision="float32", rollout=True)
    assert_close(decode_array(got.patterns), decode_array(ref.patterns), dtype, "patterns")
    assert_close(decode_array(got.rollout_patterns), decode_array(ref.rollout_patterns), dtype, "rollout")


@pytest.mark.parametrize("dtype", DTYPES)
def test_logit_lens_widget_compute_agrees_with_cpu(chelsea, dtype):
    pytest.importorskip("anywidget")
    from prisma_widgets.widgets.codec import decode_array

    cpu = build("vit_tiny_patch16_224")
    ref = pw.LogitLens(cpu, chelsea)
    got = pw.LogitLens(on_device(cpu, dtype), chelsea)
    assert_close(got.top_values()[1], ref.top_values()[1], dtype, "top-k probabilities", tol=max(TOL[dtype], 0.01))
    assert_close(decode_array(got.entropy), decode_array(ref.entropy), dtype, "entropy")


@pytest.mark.parametrize("dtype", DTYPES)
def test_patching_heatmap_compute_agrees_with_cpu(mouse, shapes_and_corrupted, dtype):
    pytest.importorskip("anywidget")
    from prisma_widgets.widgets.codec import decode_array

    images, corrupted = shapes_and_corrupted
    ref = pw.PatchingHeatmap(mouse, images[0], corrupted)
    got = pw.PatchingHeatmap(on_device(mouse, dtype), images[0], corrupted)
    tol = 2e-3 if dtype == torch.float32 else 0.1
    assert np.abs(decode_array(got.values) - decode_array(ref.values)).max() <= tol


@pytest.mark.parametrize("dtype", DTYPES)
def test_feature_gallery_compute_agrees_with_cpu(mouse, dtype):
    pytest.importorskip("anywidget")
    from prisma_widgets.widgets.codec import decode_array

    images, _ = pw.zoo.shapes(20, seed=7)
    sae = tiny_sae(mouse.cfg.d_model)
    ref = pw.FeatureGallery(mouse, sae, images)
    got = pw.FeatureGallery(on_device(mouse, dtype), copy.deepcopy(sae).to(DEVICE), images)
    assert np.abs(decode_array(got.frequency) - decode_array(ref.frequency)).max() <= (
        1e-6 if dtype == torch.float32 else 0.03)
    assert_close(decode_array(got.mean_activation), decode_array(ref.mean_activation), dtype, "mean activation",
                 tol=max(TOL[dtype], 1e-3))
