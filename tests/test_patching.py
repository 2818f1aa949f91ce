"""The batched patching engine against a naive one-variant-at-a-time loop, and its anchors (0 and 1)."""

from __future__ import annotations

import itertools

import pytest
import torch

import prisma_widgets as pw
from prisma_widgets.analysis.patching import BY, SITES
from conftest import pixels_for


@pytest.fixture(scope="module")
def small_clip():
    """A real open_clip CLIP, shrunk: 2 vision blocks, 32 px, patch 8 (16 patches + CLS)."""
    import open_clip

    torch.manual_seed(0)
    clip = open_clip.CLIP(
        embed_dim=32,
        vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2, head_width=16),
        text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1),
    ).eval()
    return pw.HookedViT(clip)


def naive_patch(model, clean, corrupted, metric, site, by, direction):
    """One forward per variant over the whole model, patching through an ordinary hook."""
    suffix, layout = SITES[site]
    base, source = (corrupted, clean) if direction == "denoise" else (clean, corrupted)
    names = [f"blocks.{l}.{suffix}" for l in range(model.cfg.n_layers)]
    with torch.no_grad():
        clean_m = float(metric(model(clean)))
        corrupted_m = float(metric(model(corrupted)))
        _, cache = model.run_with_cache(source, names_filter=names)
    dims = [layout.index(a) for a in BY[by]]
    shape = cache[names[0]].shape[1:]
    cells = list(itertools.product(*[range(shape[d]) for d in dims]))
    values = torch.zeros(len(names), len(cells), dtype=torch.float64)
    for layer, name in enumerate(names):
        for i, cell in enumerate(cells):
            index = [slice(None)] * (len(shape) + 1)
            for d, c in zip(dims, cell):
                index[1 + d] = c

            def put(act, hook, index=tuple(index)):
                act = act.clone()
                act[index] = cache[hook.name][index]
                return act

            with torch.no_grad():
                m = float(metric(model.run_with_hooks(base, fwd_hooks=[(name, put)])))
            values[layer, i] = (m - corrupted_m) / (clean_m - corrupted_m)
    return values


def first_logit(out):
    return out[:, 0].mean()


CASES = [(site, by) for site, (_, layout) in SITES.items() for by, axes in BY.items() if set(axes) <= set(layout)]


@pytest.mark.parametrize("site,by", CASES)
@pytest.mark.parametrize("family", ["timm", "open_clip"])
def test_batched_engine_equals_naive_loop(site, by, family, tiny, small_clip):
    model = tiny if family == "timm" else small_clip
    clean, corrupted = pixels_for(model, batch=1, seed=3), pixels_for(model, batch=1, seed=4)
    direction = "noise" if by == "head" else "denoise"  # both directions covered across the cases
    result = pw.analysis.patch(model, clean, corrupted, metric=first_logit, site=site, by=by,
                               direction=direction, progress=False, memory_budget=200_000)  # forces several chunks
    expected = naive_patch(model, clean, corrupted, first_logit, site, by, direction)
    assert result.axes == ("layer", *BY[by])
    torch.testing.assert_close(result.values.double().reshape(expected.shape), expected, atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_patching_all_of_layer_0_gives_1_and_an_unchanged_cell_gives_0(tiny):
    clean, corrupted = pixels_for(tiny, batch=2, seed=5), pixels_for(tiny, batch=2, seed=6)
    everything = pw.analysis.patch(tiny, clean, corrupted, site="resid_pre", by="layer", layers=[0], progress=False)
    assert everything.values.shape == (1,)
    assert abs(float(everything.values[0]) - 1.0) < 1e-5
    by_position = pw.analysis.patch(tiny, clean, corrupted, site="resid_pre", by="position", layers=[0], progress=False)
    # The CLS token entering block 0 is cls_token + its position embedding: the same in both runs.
    assert abs(float(by_position.values[0, 0])) < 1e-6
    assert by_position.labels["position"][:2] == ["CLS", "r0c0"]
    assert everything.clean_metric > everything.corrupted_metric  # logit difference favours the clean class


def test_attribution_matches_exact_patching_to_first_order(tiny):
    clean = pixels_for(tiny, batch=1, seed=7)
    corrupted = clean + 1e-3 * pixels_for(tiny, batch=1, seed=8)  # a small corruption: linearisation is accurate
    kwargs = dict(metric=first_logit, site="resid_pre", by="position", progress=False)
    exact = pw.analysis.patch(tiny, clean, corrupted, **kwargs)
    approx = pw.analysis.patch(tiny, clean, corrupted, method="attribution", **kwargs)
    assert approx.values.shape == exact.values.shape == (2, 17)
    patches = exact.values[:, 1:]  # CLS rows are 0 in both at layer 0
    torch.testing.assert_close(approx.values[:, 1:], patches, atol=0.02, rtol=0.05)


def test_patching_errors_name_the_fix(tiny):
    x = pixels_for(tiny, batch=1)
    with pytest.raises(ValueError, match="site must be one of"):
        pw.analysis.patch(tiny, x, x, site="resid")
    with pytest.raises(ValueError, match="by='head' does not apply to site='resid_pre'"):
        pw.analysis.patch(tiny, x, x, site="resid_pre", by="head")
    with pytest.raises(ValueError, match="same top class.*metric="):
        pw.analysis.patch(tiny, x, x)
    with pytest.raises(ValueError, match="differ in shape"):
        pw.analysis.patch(tiny, x, pixels_for(tiny, batch=2))


def test_corrupt_changes_only_the_chosen_patches(chelsea, coffee, tiny):
    import numpy as np

    image = tiny.display_images(chelsea)[0]  # 64 x 64, a 4 x 4 grid of 16 px patches
    inside = np.zeros((64, 64), bool)
    inside[16:32, 32:48] = True  # patch (1, 2)
    for mode in ("mask", "blur", "noise", "swap"):
        out = pw.corrupt(image, [(1, 2)], mode=mode, other=coffee, grid=(4, 4))
        assert out.shape == image.shape and out.dtype == np.uint8
        assert np.array_equal(out[~inside], image[~inside]), mode
        assert not np.array_equal(out[inside], image[inside]), mode
    swapped = pw.corrupt(chelsea, np.eye(4, dtype=bool), mode="swap", other=coffee, model=tiny)
    coffee_small = tiny.display_images(coffee)[0]
    assert np.array_equal(swapped[:16, :16], coffee_small[:16, :16])
    assert np.array_equal(swapped[:16, 16:32], image[:16, 16:32])
    assert np.array_equal(pw.corrupt(image, [6], grid=(4, 4)), pw.corrupt(image, [(1, 2)], grid=(4, 4)))
    with pytest.raises(ValueError, match="other="):
        pw.corrupt(image, [(0, 0)], mode="swap", grid=(4, 4))
    with pytest.raises(ValueError, match="outside the 4x4 grid"):
        pw.corrupt(image, [(4, 0)], grid=(4, 4))
    with pytest.raises(ValueError, match="grid="):
        pw.corrupt(image, [(0, 0)])
    with pytest.raises(ValueError, match="mode must be"):
        pw.corrupt(image, [(0, 0)], mode="erase", grid=(4, 4))


@torch.no_grad()
def test_patching_a_real_photo_pair(tiny, chelsea, coffee):
    """End to end on real images: clean cat vs cat with coffee swapped into half the patches."""
    corrupted = pw.corrupt(chelsea, [(r, c) for r in range(4) for c in range(4) if (r + c) % 2], mode="swap",
                           other=coffee, model=tiny)
    clean = tiny.display_images(chelsea)[0]
    result = pw.analysis.patch(tiny, clean, corrupted, metric=first_logit, site="resid_pre", by="position",
                               progress=False)
    # Denoising all patches of layer 0 at once restores the clean run; positions that were not swapped do nothing.
    untouched = [1 + r * 4 + c for r in range(4) for c in range(4) if (r + c) % 2 == 0]
    assert result.values[0, untouched].abs().max() < 1e-5
    assert torch.isfinite(result.values).all()
