"""FeatureGallery's detail panel and list: the default sort (push: the largest class effect), no class on a dead
feature's card, top and bottom class lists that never overlap, the activation and logit-effect histograms
(against the statistics), and steering in the kernel (against the model run with plain hooks)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import prisma_widgets as pw
from prisma_widgets.sae import feature_stats
from prisma_widgets.widgets._base import decode_array
from prisma_widgets.widgets.feature_gallery import FeatureGallery
from prisma_widgets.widgets.gallery_detail import BINS
from prisma_widgets.zoo.shapes import shapes

pytestmark = pytest.mark.usefixtures("one_thread")

HOOK = "blocks.1.hook_resid_post"  # early enough that the patches reach the CLS token the head reads


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    model = pw.load("mouse-vit")
    g = torch.Generator().manual_seed(0)
    sae = pw.SAE(d_in=128, d_sae=32, k=6, hook=HOOK, generator=g)
    with torch.no_grad():
        sae.b_enc.copy_(torch.randn(32, generator=g) * 0.3)
        sae.b_enc[30:] = -1e4  # two features that never fire
    images, _ = shapes(20, seed=3)
    stats = feature_stats(model, sae, images, top_k=4, n_samples=6)
    return model, sae, images, stats


def test_default_sort_is_push_and_dead_features_carry_no_class(setup):
    model, sae, images, stats = setup
    assert (stats.frequency[30:] == 0).all() and (stats.frequency[:30] > 0).sum() >= 10
    w = FeatureGallery.from_stats(stats, images, model=model, sae=sae, page_size=8)
    assert w.sort_by == "push" and w.descending and w.hide_dead
    push = stats.class_effects.max(1)
    np.testing.assert_array_equal(decode_array(w.effect_strength), push.astype(np.float32))
    live = np.flatnonzero(stats.frequency > 0)
    assert w.card_features == live[np.argsort(-push[live], kind="stable")][:8].tolist() == w.visible
    top = decode_array(w.top_class)
    assert (top[30:] == -1).all()  # dead: no class
    np.testing.assert_array_equal(top[:30], np.argsort(-stats.class_effects[:30], 1, kind="stable")[:, :3])
    # without class effects there is nothing to push: the frequency order
    bare = dataclasses.replace(stats, class_effects=None, class_names=None)
    w2 = FeatureGallery.from_stats(bare, images, page_size=5)
    assert w2.sort_by == "frequency" and w2.card_features == np.argsort(-stats.frequency, kind="stable")[:5].tolist()


def test_top_and_bottom_class_lists_never_overlap(setup):
    *_, stats = setup
    for f in range(stats.d_sae):
        for k in (1, 3, 5, 8):
            top, top_v, bottom, bottom_v = stats.class_effect_extremes(f, k)
            assert not set(top) & set(bottom), (f, k, top, bottom)
            assert len(top) == min(k, 4) and len(bottom) == min(k, 4)  # 8 classes: at most 4 each way
            assert top_v == sorted(top_v, reverse=True) and bottom_v == sorted(bottom_v)
            assert min(top_v) >= max(bottom_v)
    # one class: it is on top, the bottom is empty; ties: still disjoint
    one = dataclasses.replace(stats, class_effects=np.ones((stats.d_sae, 1), np.float32))
    assert one.class_effect_extremes(0, 5)[0] == [0] and one.class_effect_extremes(0, 5)[2] == []
    flat = dataclasses.replace(stats, class_effects=np.zeros((stats.d_sae, 8), np.float32))
    top, _, bottom, _ = flat.class_effect_extremes(0, 5)
    assert not set(top) & set(bottom) and len(top) + len(bottom) == 8


def test_histograms_equal_the_statistics(setup):
    model, sae, images, stats = setup
    f = int(np.argmax(stats.frequency))
    w = FeatureGallery.from_stats(stats, images, model=model, sae=sae, feature=f)
    counts, edges = decode_array(w.act_hist_counts)[0], decode_array(w.act_hist_edges)[0]
    keep = stats.sample_images[f] >= 0
    values = stats.sample_maps[f][keep].astype(np.float32).ravel()
    values = values[values > 0]
    assert counts.shape == (BINS,) and counts.sum() == values.size > 0
    assert edges[0] == 0 and edges[-1] == pytest.approx(max(values.max(), stats.max_activation[f]))
    ref, _ = np.histogram(values, bins=BINS, range=(0, edges[-1]))
    np.testing.assert_array_equal(counts, ref)
    e_counts, e_edges = decode_array(w.effect_hist_counts)[0], decode_array(w.effect_hist_edges)[0]
    assert e_counts.sum() == 8  # one per class
    assert e_edges[0] == pytest.approx(stats.class_effects[f].min()) and e_edges[-1] == pytest.approx(stats.class_effects[f].max())


def _by_hand(model, sae, pixels, feature, edit):
    """Mean class probabilities with the feature edited on the patch tokens at HOOK, written with a plain hook."""
    n = model.cfg.n_prefix_tokens

    def hook(act, _):
        p = act[:, n:]
        f = sae.encode(p)
        g = f.clone()
        g[..., feature] = edit(g[..., feature])
        out = act.clone()
        out[:, n:] = p + (sae.decode(g) - sae.decode(f))
        return out

    with torch.no_grad():
        before = torch.softmax(model(pixels), -1).mean(0)
        after = torch.softmax(model.run_with_hooks(pixels, fwd_hooks=[(HOOK, hook)]), -1).mean(0)
    return before, after


@pytest.mark.parametrize("op,value,edit", [("zero", 0.0, lambda a: a * 0), ("scale", 2.0, lambda a: a * 2),
                                           ("clamp", 25.0, lambda a: torch.full_like(a, 25.0))])
def test_steering_in_the_kernel_against_plain_hooks(setup, op, value, edit):
    model, sae, images, stats = setup
    f = int(np.argmax(stats.frequency[:30] * (stats.class_effects[:30].max(1) > 0)))
    w = FeatureGallery.from_stats(stats, images, model=model, sae=sae, feature=f)
    assert w.can_steer
    w.steer_request = {"feature": f, "op": op, "value": value, "n": 1}
    r = w.steer_result
    assert "error" not in r, r
    ids = [int(i) for i in stats.top_images[f] if i >= 0]
    before, after = _by_hand(model, sae, model.preprocess([images[i] for i in ids]), f, edit)
    delta = (after - before).numpy()
    assert r["images"] == len(ids) and r["classes"] == np.argsort(-np.abs(delta), kind="stable")[:5].tolist()
    np.testing.assert_allclose(r["before"], before[r["classes"]].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r["after"], after[r["classes"]].numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(delta).max() > 1e-6  # the edit moves something (the mouse is sure of itself: little)
    assert r["names"] == [w.class_names[c] for c in r["classes"]] and r["note"] == ""


def test_bad_steering_is_refused_with_a_message(setup, tmp_path):
    model, sae, images, stats = setup
    w = FeatureGallery.from_stats(stats, images, model=model, sae=sae)
    w.steer_request = {"feature": 99, "op": "zero", "value": 0}
    assert "steering failed" in w.steer_result["error"] and "0..31" in w.steer_result["error"]
    w.steer_request = {"feature": 1, "op": "explode", "value": 0}
    assert "op must be one of 'zero', 'scale', 'clamp'" in w.steer_result["error"]
    w.steer_request = {"feature": 1, "op": "clamp", "value": float("inf")}
    assert "finite" in w.steer_result["error"]
    with pytest.raises(ValueError, match="fires on none of the images"):
        w.steer(31, "zero")
    offline = FeatureGallery.from_stats(stats, images)
    assert not offline.can_steer
    with pytest.raises(ValueError, match="needs the model and the SAE"):
        offline.steer(1, "zero")
    # a saved page has no kernel: no steering there, whatever the live widget could do
    path = w.save_html(tmp_path / "g.html", features=[1, 2])
    text = path.read_text()
    assert '"can_steer": false' in text or '"can_steer":false' in text
