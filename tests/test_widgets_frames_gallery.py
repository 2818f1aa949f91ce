"""FeatureGallery over clips: top clips per feature, each shown at the token frame where the feature peaks, and
per-frame activations of each top clip, against pw.feature_stats and the SAE run by hand on the hook."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import prisma_widgets as pw
from prisma_widgets import zoo
from prisma_widgets.widgets._base import decode_array
from prisma_widgets.widgets.gallery_frames import clip_frames, frame_maxima, slice_frames

HOOK = "blocks.3.hook_resid_post"


@pytest.fixture(scope="module")
def setup():
    model = pw.load("mouse-video")
    clips = list(zoo.moving_shapes(12, seed=6).videos)
    torch.manual_seed(0)
    sae = pw.SAE(d_in=model.cfg.d_model, d_sae=16, k=4, hook=HOOK)
    stats = pw.feature_stats(model, sae, clips, HOOK, top_k=4, n_samples=4)
    return model, sae, clips, stats


def hand_activations(model, sae, clip) -> np.ndarray:
    """The SAE's activations on every patch token of one clip: ``[tokens, d_sae]`` (frame-major)."""
    _, cache = model.run_with_cache(model.to_pixels(clip), names_filter=[HOOK])
    with torch.no_grad():
        acts = sae.encode(cache[HOOK][0, model.cfg.n_prefix_tokens:].float())
    return acts.numpy()


def test_clip_statistics_are_per_token_of_every_frame(setup):
    model, sae, clips, stats = setup
    assert clip_frames(stats) == model.cfg.frames == 4 and stats.tokens_per_image == 64
    f = int(np.argmax(stats.max_activation))
    clip = int(stats.top_images[f, 0])
    acts = hand_activations(model, sae, clips[clip])[:, f]
    np.testing.assert_allclose(stats.top_maps[f, 0].astype(np.float32), acts, rtol=2e-3, atol=2e-3)  # float16 maps


def test_cards_show_each_top_clip_at_its_peak_frame(setup):
    model, sae, clips, stats = setup
    g = pw.FeatureGallery(model, sae, clips, stats=stats, feature=int(np.argmax(stats.max_activation)))
    assert g.frames == 4 and g.live is True
    images, ids, frames = decode_array(g.images), g.image_ids, decode_array(g.card_frames)
    pos = decode_array(g.card_images)
    maps = g.card_map_values()
    assert maps.shape[-1] == model.cfg.grid[0] * model.cfg.grid[1]  # one frame's patches, as an image
    for n, f in enumerate(g.card_features):
        for j in range(pos.shape[1]):
            clip = int(stats.top_images[f, j])
            if clip < 0:
                assert pos[n, j] == -1
                continue
            top = stats.top_maps[f, j].astype(np.float32).reshape(4, 16)
            peak = int(np.argmax(top.max(1)))  # by hand: the frame holding the clip's largest activation
            assert frames[n, j] == peak and ids[pos[n, j]] == clip
            shown = model.display_images(model.to_pixels(clips[clip]))[0][peak * model.cfg.tubelet_size]
            np.testing.assert_array_equal(images[pos[n, j]], shown)
            assert g.image_labels[pos[n, j]] == f"clip {clip} · t{peak}"
            scale = max(float(top.max()), 1e-12)
            np.testing.assert_allclose(maps[n, j], top[peak], atol=scale / 500)


def test_detail_strip_holds_every_frames_maximum(setup):
    model, sae, clips, stats = setup
    f = int(np.argmax(stats.max_activation))
    g = pw.FeatureGallery(model, sae, clips, stats=stats, feature=f)
    fv, fi = decode_array(g.detail_frame_values), decode_array(g.detail_frame_images)
    assert fv.shape == (1, stats.top_images.shape[1], 4) and fi.shape == fv.shape
    images = decode_array(g.images)
    for j, clip in enumerate(stats.top_images[f]):
        if clip < 0:
            continue
        acts = hand_activations(model, sae, clips[int(clip)])[:, f].reshape(4, 16)
        np.testing.assert_allclose(fv[0, j], acts.max(1), rtol=2e-3, atol=2e-3)
        assert int(decode_array(g.detail_frames)[0, j]) == int(np.argmax(fv[0, j]))
        shown = model.display_images(model.to_pixels(clips[int(clip)]))[0]
        for t in range(4):
            assert g.image_ids[fi[0, j, t]] == int(clip)
            np.testing.assert_array_equal(images[fi[0, j, t]], shown[t * model.cfg.tubelet_size])


def test_helpers_and_saved_page(setup, tmp_path):
    maps = np.arange(2 * 9, dtype=np.float32).reshape(2, 9)  # 1 prefix + 2 frames of 2 x 2
    np.testing.assert_array_equal(frame_maxima(maps, 2, 1), [[4, 8], [13, 17]])
    np.testing.assert_array_equal(slice_frames(maps, np.array([1, 0]), 2, 1), [[0, 5, 6, 7, 8], [9, 10, 11, 12, 13]])
    model, sae, clips, stats = setup
    g = pw.FeatureGallery(model, sae, clips, stats=stats)
    path = g.save_html(tmp_path / "clips.html", features="all")
    assert path.stat().st_size < 3_000_000


def test_an_image_gallery_has_no_frames():
    model = pw.load("mouse-vit")
    images, _ = zoo.shapes(12, seed=0)
    sae = pw.SAE(d_in=128, d_sae=8, k=2, hook=HOOK)
    g = pw.FeatureGallery(model, sae, images, top_k=2, n_samples=2)
    assert g.frames == 1 and g.card_frames == {} and g.detail_frame_values == {} and g.live is True


def test_a_timesformer_clip_is_read_frame_by_frame():
    """TimeSformer keeps all frames of one patch together: the gallery reorders its tokens per frame."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.TimesformerConfig(patch_size=16, num_frames=3, image_size=32, hidden_size=32,
                                            num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                            num_labels=5)
    model = pw.HookedViT(transformers.TimesformerForVideoClassification(config).eval())
    cfg = model.cfg
    assert cfg.patch_order == "rct" and cfg.frames == 3
    clips = [c[: cfg.input_frames] for c in zoo.moving_shapes(6, seed=2).videos]
    hook = "blocks.1.hook_resid_post"
    sae = pw.SAE(d_in=32, d_sae=8, k=3, hook=hook)
    stats = pw.feature_stats(model, sae, clips, hook, top_k=2, n_samples=2)
    f = int(np.argmax(stats.max_activation))
    g = pw.FeatureGallery(model, sae, clips, stats=stats, feature=f)
    fv = decode_array(g.detail_frame_values)
    for j, clip in enumerate(stats.top_images[f]):
        _, cache = model.run_with_cache(model.to_pixels(clips[int(clip)]), names_filter=[hook])
        with torch.no_grad():
            acts = sae.encode(cache[hook][0].float())[:, f].numpy()
        want = [acts[cfg.frame_tokens(t)].max() for t in range(cfg.frames)]  # by the model's own token layout
        np.testing.assert_allclose(fv[0, j], want, rtol=2e-3, atol=2e-3)


def test_patch_look_up_names_a_clip_token(setup):
    model, sae, clips, stats = setup
    g = pw.FeatureGallery(model, sae, clips, stats=stats)
    clip, frame, patch_ = 3, 2, 5  # the view sends the clip token of the patch it shows at that frame
    token = frame * 16 + patch_
    g.patch_query = [clip, token]
    acts = hand_activations(model, sae, clips[clip])[token]
    want = np.flatnonzero(acts > 0)
    want = want[np.argsort(-acts[want], kind="stable")][: len(g.patch_result["features"])]
    assert g.patch_result["token"] == token and g.patch_result["features"] == want.tolist()
    np.testing.assert_allclose(g.patch_result["values"], acts[want], rtol=1e-4, atol=1e-4)
