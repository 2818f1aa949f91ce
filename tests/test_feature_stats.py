"""pw.feature_stats: equal to a brute-force computation on a tiny SAE, class effects equal to the decoder
direction pushed through the readout by hand, and on mouse-vit an SAE whose features are tied to shapes."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

import prisma_widgets as pw
from prisma_widgets.sae import FeatureStats, feature_stats
from prisma_widgets.zoo.shapes import shapes

HOOK = "blocks.3.hook_resid_post"


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def mouse():
    return pw.load("mouse-vit")


def _tiny_sae(d_in: int, d_sae: int = 24, k: int = 5, seed: int = 0, hook: str = HOOK) -> pw.SAE:
    g = torch.Generator().manual_seed(seed)
    sae = pw.SAE(d_in=d_in, d_sae=d_sae, k=k, hook=hook, generator=g)
    with torch.no_grad():
        sae.b_enc.copy_(torch.randn(d_sae, generator=g) * 0.5)
    return sae


def _brute(model, sae, images, hook=HOOK, tokens="patches"):
    _, cache = model.run_with_cache(images, names_filter=[hook])
    x = cache[hook].float()
    if tokens == "patches":
        x = x[:, model.cfg.n_prefix_tokens:]
    with torch.no_grad():
        return x, sae.encode(x).numpy()  # [N, T, F]


def test_matches_brute_force_on_a_tiny_sae(mouse):
    images, _ = shapes(13, seed=3)
    sae = _tiny_sae(128)
    K, S = 4, 5
    stats = feature_stats(mouse, sae, images, top_k=K, n_samples=S, batch_size=5)  # 3 batches: merges
    _x, f = _brute(mouse, sae, images)
    N, T, F = f.shape
    assert stats.top_maps.shape == (F, K, T) and stats.n_images == N and stats.grid == (8, 8)
    fires = f > 0
    np.testing.assert_allclose(stats.frequency, fires.mean((0, 1)), rtol=1e-6)
    for j in range(F):
        col = f[..., j]
        ref_mean = col[col > 0].mean() if fires[..., j].any() else 0.0
        assert stats.mean_activation[j] == pytest.approx(ref_mean, rel=1e-5, abs=1e-7)
        assert stats.max_activation[j] == pytest.approx(col.max(), rel=1e-6)
        # top (image, patch) pairs by a loop over images
        per_image = [(float(col[i].max()), i, int(col[i].argmax())) for i in range(N) if col[i].max() > 0]
        per_image.sort(key=lambda e: (-e[0], e[1]))
        want = per_image[:K]
        got = stats.top_pairs(j)
        assert [(i, t) for _, i, t in want] == [(i, t) for i, t, _ in got], j
        np.testing.assert_allclose([v for v, _, _ in want], [v for _, _, v in got], rtol=1e-6)
        for slot, (_, i, _) in enumerate(want):
            np.testing.assert_allclose(stats.top_maps[j, slot].astype(np.float32), col[i], rtol=2e-3, atol=2e-3)
        assert (stats.top_images[j, len(want):] == -1).all()
        # the sample: distinct firing images, their maxima and maps
        n_fire = len(per_image)
        smp = stats.sample_images[j]
        real = smp[smp >= 0]
        assert len(real) == min(S, n_fire) and len(set(real.tolist())) == len(real)
        for slot, i in enumerate(smp[: len(real)]):
            assert stats.sample_values[j, slot] == pytest.approx(col[i].max(), rel=1e-6)
            np.testing.assert_allclose(stats.sample_maps[j, slot].astype(np.float32), col[i], rtol=2e-3, atol=2e-3)
        groups = stats.quantile_groups(j, 2)
        if groups:
            assert sum(len(g["images"]) for g in groups) == len(real)
            assert groups[0]["high"] <= groups[-1]["low"] + 1e-6
    # the sample is random but seeded
    again = feature_stats(mouse, sae, images, top_k=K, n_samples=S, batch_size=7)
    np.testing.assert_array_equal(again.top_images, stats.top_images)


def test_class_effect_is_the_decoder_direction_through_the_readout(mouse):
    images, _ = shapes(6, seed=4)
    sae = _tiny_sae(128, d_sae=10)
    stats = feature_stats(mouse, sae, images)
    x, _ = _brute(mouse, sae, images)
    m = mouse.model
    rows = x.reshape(-1, 128).double()
    s = (rows.var(-1, unbiased=False) + m.norm.eps).sqrt().mean()  # the final norm's scale, frozen
    d = sae.W_dec.detach().double()
    by_hand = (((d - d.mean(-1, keepdim=True)) / s * m.norm.weight.double()) @ m.head.weight.double().T).detach()
    assert isinstance(m.fc_norm, torch.nn.Identity)
    np.testing.assert_allclose(stats.class_effects, by_hand.numpy(), rtol=1e-4, atol=1e-5)
    assert stats.class_names == mouse.labels
    top, top_v, bottom, _bottom_v = stats.class_effect_extremes(0, 3)
    assert top_v[0] == pytest.approx(by_hand[0].max().item(), rel=1e-4) and top[0] == int(by_hand[0].argmax())
    assert bottom[0] == int(by_hand[0].argmin())
    # a direction along the residual that the head reads: the effect is the head's own row direction
    assert stats.readout_note.startswith("direct effect")


def test_clip_prompts_effect_by_hand():
    import open_clip

    torch.manual_seed(0)
    clip = pw.HookedViT(open_clip.CLIP(
        embed_dim=32,
        vision_cfg={"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 16},
        text_cfg={"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    ))
    hook = "blocks.1.hook_resid_post"
    images = np.random.default_rng(0).integers(0, 255, (5, 32, 32, 3), dtype=np.uint8)
    prompts = ["a cat", "a dog", "a <b>tree</b>"]
    sae = _tiny_sae(64, d_sae=12, hook=hook)
    stats = feature_stats(clip, sae, images, hook, prompts=prompts, tokens="all")
    assert stats.class_names == prompts and stats.class_effects.shape == (12, 3)
    _, cache = clip.run_with_cache(images, names_filter=[hook])
    rows = cache[hook].reshape(-1, 64).double()
    v = clip.adapter.tower
    ln = v.ln_post
    s1 = (rows.var(-1, unbiased=False) + ln.eps).sqrt()
    normed = ((rows - rows.mean(-1, keepdim=True)) / s1[:, None]) * ln.weight.double() + ln.bias.double()
    s2 = (normed @ v.proj.double()).norm(dim=-1).mean()
    d = sae.W_dec.detach().double()
    y = (d - d.mean(-1, keepdim=True)) / s1.mean() * ln.weight.double()
    text = clip.encode_text(prompts, normalize=True).double()
    by_hand = clip.logit_scale * (y @ v.proj.double() / s2) @ text.T
    np.testing.assert_allclose(stats.class_effects, by_hand.detach().numpy(), rtol=1e-4, atol=1e-4)
    assert stats.n_prefix_tokens == 1 and stats.tokens_per_image == 17


def test_save_and_load_round_trip(mouse, tmp_path):
    images, _ = shapes(5, seed=5)
    stats = feature_stats(mouse, _tiny_sae(128, d_sae=8), images, top_k=3, n_samples=2)
    back = FeatureStats.load(stats.save(tmp_path / "stats"))
    for name in FeatureStats._ARRAYS:
        np.testing.assert_array_equal(getattr(back, name), getattr(stats, name))
    assert (back.hook, back.grid, back.class_names, back.n_images) == (stats.hook, stats.grid, stats.class_names, 5)
    with pytest.raises(FileNotFoundError):
        FeatureStats.load(tmp_path / "missing")


def test_unknown_hook_is_refused(mouse):
    with pytest.raises(Exception, match="resid_post"):
        feature_stats(mouse, _tiny_sae(128), shapes(2, seed=0)[0], "blocks.3.hook_resid_postt")


def class_purity(stats: FeatureStats, labels: np.ndarray, k: int = 8) -> np.ndarray:
    """Per feature: the largest fraction of its top-k images that share one class (0 when < k images)."""
    out = np.zeros(stats.d_sae)
    for j in range(stats.d_sae):
        imgs = stats.top_images[j, :k]
        if (imgs >= 0).sum() < k:
            continue
        out[j] = np.bincount(labels[imgs], minlength=8).max() / k
    return out


def test_mouse_vit_sae_features_are_tied_to_shape_classes(mouse, tmp_path):
    """mouse-vit at blocks.3.hook_resid_post (patch tokens): a TopK SAE trained on 300 images explains >= 90%
    of the variance on 150 held-out images, and many features' top-8 held-out images are >= 80% one shape
    class, with that class among the feature's top class effects for most of them."""
    t0 = time.perf_counter()
    train_imgs, _ = shapes(300, seed=1)
    test_imgs, test_labels = shapes(150, seed=2)
    test_labels = np.asarray(test_labels)
    store = pw.cache_activations(mouse, train_imgs, HOOK, tmp_path / "train", tokens="patches", progress=False)
    sae = pw.train_sae(store, expansion=4, k=16, batch_size=1024, steps=300, progress=False)
    held = pw.cache_activations(mouse, test_imgs, HOOK, tmp_path / "test", tokens="patches", progress=False)
    ev = sae.evaluate(held)["explained_variance"]
    stats = feature_stats(mouse, sae, test_imgs, top_k=8)
    purity = class_purity(stats, test_labels)
    tied = np.flatnonzero(purity >= 0.8)
    agree = [j for j in tied if np.bincount(test_labels[stats.top_images[j]], minlength=8).argmax()
             in stats.class_effect_extremes(j, 2)[0]]
    elapsed = time.perf_counter() - t0
    print(f"\nEV={ev:.3f} at {HOOK}; {len(tied)}/{stats.d_sae} features >= 80% one class "
          f"({(purity == 1).sum()} pure); class effect agrees for {len(agree)}/{len(tied)}; {elapsed:.1f}s")
    assert ev >= 0.9, ev
    assert len(tied) >= 20, len(tied)
    assert len(set(test_labels[stats.top_images[tied, 0]].tolist())) >= 6  # most classes have one
    assert len(agree) >= 0.5 * len(tied)



def test_a_misspelled_token_mode_is_refused():
    model = pw.load("mouse-vit")
    sae = pw.SAE(d_in=128, d_sae=16, k=2, hook="blocks.3.hook_resid_post")
    images, _ = pw.zoo.shapes(2, seed=0)
    with pytest.raises(ValueError, match="tokens must be one of 'all', 'patches', 'cls'; got 'patch'"):
        pw.feature_stats(model, sae, images, tokens="patch")
    with pytest.raises(ValueError, match="tokens must be one of"):
        sae.evaluate(torch.zeros(4, 128), model=model, images=images, tokens="patch")
