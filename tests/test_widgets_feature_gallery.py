"""FeatureGallery: what it sends equals the feature statistics (within the uint8 bound), only what is on
screen travels, `feature` / `visible` / `patch_query` drive kernel round trips, and save_html carries a
chosen subset with precomputed patch look-ups."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import traitlets
from test_feature_stats import _one_thread  # noqa: F401  (autouse: one intra-op thread)

import prisma_widgets as pw
from prisma_widgets.sae import feature_stats
from prisma_widgets.widgets._base import decode_array
from prisma_widgets.widgets.feature_gallery import CARD_IMAGES, FeatureGallery, density_histogram
from prisma_widgets.zoo.shapes import SHAPE_CLASSES, shapes

HOOK = "blocks.3.hook_resid_post"
HOSTILE = '<img src=x onerror="window.__pwned=1">'


@pytest.fixture(scope="module")
def setup():
    model = pw.load("mouse-vit")
    g = torch.Generator().manual_seed(0)
    sae = pw.SAE(d_in=128, d_sae=40, k=6, hook=HOOK, generator=g)
    with torch.no_grad():
        sae.b_enc.copy_(torch.randn(40, generator=g) * 0.3)
    images, labels = shapes(30, seed=7)
    names = [HOSTILE if i % 5 == 0 else SHAPE_CLASSES[c] for i, c in enumerate(labels)]
    stats = feature_stats(model, sae, images)
    return model, sae, images, names, stats


def _bytes(w: FeatureGallery) -> int:
    return sum(len(v["view"]) for v in w.get_state().values() if isinstance(v, dict) and "view" in v)


def test_index_cards_and_detail_equal_the_statistics(setup):
    model, sae, images, names, stats = setup
    w = FeatureGallery.from_stats(stats, images, model=model, sae=sae, image_labels=names, feature=5, page_size=6,
                                  sort_by="frequency")
    # the index: every feature, exact
    np.testing.assert_array_equal(decode_array(w.feature_ids), np.arange(40))
    np.testing.assert_array_equal(decode_array(w.frequency), stats.frequency)
    np.testing.assert_array_equal(decode_array(w.mean_activation), stats.mean_activation)
    top3 = np.argsort(-stats.class_effects, 1, kind="stable")[:, :3]
    np.testing.assert_array_equal(decode_array(w.top_class), top3)
    assert w.class_names == list(SHAPE_CLASSES) and w.d_sae == 40 and w.grid == [8, 8] and w.live
    assert (w.density_counts, w.density_edges) == density_histogram(stats.frequency)
    # the first page: most frequent first, CARD_IMAGES images each, maps within max/510
    order = np.argsort(-stats.frequency, kind="stable")
    assert w.card_features == order[:6].tolist() == w.visible
    pool = w.image_ids
    got_imgs = decode_array(w.card_images)
    maps = w.card_map_values()
    for n, f in enumerate(w.card_features):
        ref = stats.top_images[f, :CARD_IMAGES]
        assert [pool[p] if p >= 0 else -1 for p in got_imgs[n]] == ref.tolist()
        ref_maps = stats.top_maps[f, :CARD_IMAGES].astype(np.float32)
        bound = ref_maps.max(-1, keepdims=True) / 510 * (1 + 1e-5) + 1e-7
        assert (np.abs(maps[n] - ref_maps) <= bound).all()
    # the detail of `feature`: top images, quantile groups, class effects
    assert w.detail_features == [5]
    det = decode_array(w.detail_images)[0]
    assert [pool[p] for p in det if p >= 0] == [i for i, _, _ in stats.top_pairs(5)]
    groups = stats.quantile_groups(5, 4)
    q = decode_array(w.quantile_images)[0]
    assert [[pool[p] for p in row if p >= 0] for row in q][: len(groups)] == [g["images"] for g in groups]
    top, top_v, bottom, bottom_v = stats.class_effect_extremes(5, 5)
    assert len(top) == len(bottom) == 4 and not set(top) & set(bottom)  # 8 classes: 4 up, 4 down, none in both
    got_c, got_v = decode_array(w.effect_classes)[0], decode_array(w.effect_values)[0]
    np.testing.assert_array_equal(got_c, [top + [-1], bottom + [-1]])  # padded to N_EFFECTS with -1 (none)
    np.testing.assert_allclose(got_v[:, :4], [top_v, bottom_v], rtol=1e-6)
    # images: the model's view of each pooled image, uint8; labels travel as plain strings
    px = decode_array(w.images)
    assert px.dtype == np.uint8 and px.shape[1:] == (64, 64, 3) and px.shape[0] == len(pool)
    np.testing.assert_array_equal(px[0], model.display_images([images[pool[0]]])[0])
    assert w.image_labels == [names[i] for i in pool]


def test_only_what_is_on_screen_travels(setup):
    model, sae, images, _names, stats = setup
    w = FeatureGallery.from_stats(stats, images, model=model, sae=sae, page_size=4)
    small = _bytes(w)
    assert len(w.card_features) == 4 and w.detail_features == []
    # the view reports another page: Python sends those cards (and their images) instead
    order = np.argsort(-stats.frequency, kind="stable")
    w.visible = order[4:8].tolist()
    assert w.card_features == order[4:8].tolist()
    assert set(w.image_ids) >= {int(i) for i in stats.top_images[order[4:8], :CARD_IMAGES].ravel() if i >= 0}
    # selecting a feature sends its detail only; deselecting drops it
    w.feature = 11
    assert w.detail_features == [11] and _bytes(w) > small
    w.feature = -1
    assert w.detail_features == []
    with pytest.raises(traitlets.TraitError):
        w.feature = 40
    with pytest.raises(traitlets.TraitError):
        w.sort_by = "random"
    with pytest.raises(TypeError, match="no option"):
        FeatureGallery.from_stats(stats, images, colour="red")


def test_patch_click_is_a_kernel_round_trip(setup):
    model, sae, images, _names, _stats = setup
    w = FeatureGallery(model, sae, images, page_size=3)
    image, token = 4, 27
    w.patch_query = [image, token]
    r = w.patch_result
    assert (r["image"], r["token"]) == (image, token)
    # by hand: the SAE's activations at that patch, strongest first
    _, cache = model.run_with_cache([images[image]], names_filter=[HOOK])
    acts = sae.encode(cache[HOOK][0, 1 + token].float()).detach()
    ref = torch.argsort(-acts)[: len(r["features"])]
    assert r["features"] == ref.tolist() and len(r["features"]) == min(8, int((acts > 0).sum()))
    np.testing.assert_allclose(r["values"], acts[ref].numpy(), rtol=1e-5)
    assert r["values"] == sorted(r["values"], reverse=True)


def test_from_stats_without_model_has_no_lookup(setup, tmp_path):
    _model, _sae, images, _names, stats = setup
    back = pw.sae.FeatureStats.load(stats.save(tmp_path / "s"))
    w = FeatureGallery.from_stats(back, images, feature=2)
    assert not w.live and w.detail_features == [2]
    w.patch_query = [0, 0]
    assert w.patch_result == {}
    with pytest.raises(ValueError, match="images"):
        FeatureGallery.from_stats(back, images[:5])


def _payload(path) -> dict:
    text = path.read_text()
    m = re.search(r'<script type="application/json" class="pw-state">(.*?)</script>', text, re.DOTALL)
    return json.loads(m.group(1))


def test_save_html_carries_the_chosen_subset(setup, tmp_path):
    model, sae, images, names, _stats = setup
    w = FeatureGallery(model, sae, images, image_labels=names, title=HOSTILE, feature=3, page_size=5)
    chosen = [1, 3, 8]
    out = w.save_html(tmp_path / "g.html", features=chosen)
    text = out.read_text()
    assert HOSTILE not in text and "http://" not in text.replace("http://www.w3.org", "")
    state = _payload(out)["state"]
    assert state["card_features"] == chosen and state["detail_features"] == chosen
    assert state["feature"] == 3 and state["live"] is False and state["visible"] == chosen
    assert state["feature_ids"]["shape"] == [3]
    table_images = state["patch_table_images"]
    assert table_images == state["image_ids"] and state["patch_table_features"]["shape"][0] == len(table_images)
    # the widget itself is unchanged by saving
    assert w.detail_features == [3] and w.live and len(w.card_features) == 5
    # default: what is on screen
    state2 = _payload(w.save_html(tmp_path / "h.html"))["state"]
    assert state2["card_features"] == sorted(set(w.card_features) | {3})
    with pytest.raises(ValueError, match="features to save"):
        w.save_html(tmp_path / "x.html", features=[99])
