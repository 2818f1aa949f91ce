"""The widgets' time axis: a clip's token layout, the synced ``frame``, frames sent once as images."""

from __future__ import annotations

import numpy as np
import pytest
import traitlets

from prisma_widgets import zoo
from prisma_widgets.widgets.codec import decode_array
from prisma_widgets.widgets.frames import frame_images, frame_token_labels, infer_frame_layout
from prisma_widgets.widgets.logit_lens import LogitLens


@pytest.fixture(scope="module")
def clip():
    return zoo.moving_shapes(1, seed=3)


def _lens(clip, **kw):
    logits = np.random.default_rng(0).normal(size=(4, 64, 4)).astype(np.float32)
    return logits, LogitLens.from_arrays(logits, clip.videos[0], frames=4, grid=(4, 4),
                                         class_names=list(zoo.MOTIONS), **kw)


def test_layout_and_labels_of_a_clip():
    assert infer_frame_layout(64, 4, (4, 4), None) == ((4, 4), 0)
    assert infer_frame_layout(65, 4, None, None) == ((4, 4), 1)  # one CLS token
    assert infer_frame_layout(64, 4, None, None) == ((4, 4), 0)
    assert infer_frame_layout(1 + 8 * 14 * 14, 8, None, 1) == ((14, 14), 1)
    with pytest.raises(ValueError, match="grid=\\(rows, cols\\)"):
        infer_frame_layout(63, 4, None, None)
    with pytest.raises(ValueError, match="do not fit"):
        infer_frame_layout(64, 4, (4, 5), None)
    labels = frame_token_labels((2, 3), 1, 2)
    assert labels[:3] == ["CLS", "t0 r0c0", "t0 r0c1"] and labels[-1] == "t1 r1c2" and len(labels) == 13
    assert frame_token_labels((2, 2), 1, 1) == ["CLS", "r0c0", "r0c1", "r1c0", "r1c1"]


def test_frame_images_take_the_first_frame_of_each_tubelet(clip):
    video = clip.videos[0]  # [8, 32, 32, 3]
    shown = frame_images(video, 4)
    assert shown.shape == (4, 32, 32, 3) and shown.dtype == np.uint8
    np.testing.assert_array_equal(shown, video[::2])
    np.testing.assert_array_equal(frame_images(list(video), 8), video)
    np.testing.assert_array_equal(frame_images(video[0], 3), np.stack([video[0]] * 3))  # one image: every frame
    np.testing.assert_allclose(frame_images(video.astype(np.float32) / 255, 4), video[::2], atol=1)
    with pytest.raises(ValueError, match="token frames"):
        frame_images(video, 3)
    assert frame_images(None, 4) is None


def test_logit_lens_of_a_clip_from_arrays(clip):
    logits, w = _lens(clip)
    assert (w.frames, w.frame, w.grid, w.n_prefix_tokens) == (4, 0, [4, 4], 0)
    assert w.token_labels[17] == "t1 r0c1"
    pixels = decode_array(w.frame_pixels)
    np.testing.assert_array_equal(pixels, clip.videos[0][::2])  # the frames, sent once
    np.testing.assert_array_equal(decode_array(w.image_pixels), clip.videos[0][0])  # frame 0 for image-only views
    # the numbers are the clip's: every token of every frame
    idx, probs = w.top_values()
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_array_equal(idx[..., 0], p.argmax(-1))
    np.testing.assert_allclose(probs[..., 0], p.max(-1), atol=p.max() / 255)


def test_frame_is_synced_and_checked(clip):
    _, w = _lens(clip, frame=2)
    assert w.frame == 2
    seen = []
    w.observe(lambda c: seen.append(c["new"]), "frame")
    w.frame = 3
    assert seen == [3]
    for bad in (4, -1):
        with pytest.raises(traitlets.TraitError, match=r"frame must be a token frame in \[0, 4\)"):
            w.frame = bad
    assert "frame" in w.keys and "frames" in w.keys and "frame_pixels" in w.keys  # synced
    # an image has one frame and no frame images
    img = LogitLens.from_arrays(np.zeros((2, 17, 3), np.float32), np.zeros((32, 32, 3), np.uint8))
    assert img.frames == 1 and img.frame_pixels == {}
    with pytest.raises(traitlets.TraitError):
        img.frame = 1


def test_bad_frames_are_named(clip):
    logits = np.zeros((2, 64, 4), np.float32)
    with pytest.raises(ValueError, match="frames"):
        LogitLens.from_arrays(logits, clip.videos[0], frames=0, grid=(4, 4))
    with pytest.raises(TypeError, match="frames"):
        LogitLens.from_arrays(logits, clip.videos[0], frames="4", grid=(4, 4))
    with pytest.raises(ValueError, match="do not split into 3 token frames"):
        LogitLens.from_arrays(np.zeros((2, 48, 4), np.float32), clip.videos[0], frames=3, grid=(4, 4))


def test_saved_clip_page_is_small_and_holds_the_frames_once(clip, tmp_path):
    _, w = _lens(clip)
    path = w.save_html(tmp_path / "clip.html")
    size = path.stat().st_size
    # the bundle plus 4 frames of 32x32 and a 4-layer lens: far under the 2 MB a saved widget may take
    assert size < 2 * 1024 * 1024, size
    # the frames travel once: the page grows by at most the frames' own bytes (base64), not per layer or mode
    logits = np.random.default_rng(0).normal(size=(4, 64, 4)).astype(np.float32)
    bare = LogitLens.from_arrays(logits, None, frames=4, grid=(4, 4), class_names=list(zoo.MOTIONS))
    extra = size - bare.save_html(tmp_path / "bare.html").stat().st_size
    assert 0 < extra < 1.4 * (4 * 32 * 32 * 3) * 4 / 3, extra


def _video_model(kind: str):
    import transformers

    import prisma_widgets as pw

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    small = {"image_size": 32, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": 64, "num_labels": 5}
    if kind == "videomae":
        config = transformers.VideoMAEConfig(patch_size=16, num_frames=4, tubelet_size=2, **small)
        return pw.HookedViT(transformers.VideoMAEForVideoClassification(config).eval())
    config = transformers.TimesformerConfig(patch_size=16, num_frames=3, **small)
    return pw.HookedViT(transformers.TimesformerForVideoClassification(config).eval())


@pytest.mark.parametrize("kind", ["videomae", "timesformer"])
def test_logit_lens_of_a_video_model_shows_frames_in_frame_major_order(kind, clip):
    from prisma_widgets.analysis.logit_lens import logit_lens

    model = _video_model(kind)
    cfg = model.cfg
    video = clip.videos[0][: cfg.input_frames]
    w = LogitLens(model, video)
    assert (w.frames, w.grid, w.n_prefix_tokens) == (cfg.frames, list(cfg.grid), cfg.n_prefix_tokens)
    rows, cols = cfg.grid
    patches = [f"t{t} r{r}c{c}" for t in range(cfg.frames) for r in range(rows) for c in range(cols)]
    assert w.token_labels[cfg.n_prefix_tokens:] == patches  # TimeSformer's (row, col, frame) order reordered
    # the frames shown are the model's own input frames, one per token frame
    shown = model.display_images([video])[0]
    np.testing.assert_array_equal(decode_array(w.frame_pixels), shown[:: cfg.tubelet_size])
    # each widget token holds the lens of the model token with the same label
    lens = logit_lens(model, [video])
    ref = lens.logits[0].softmax(-1).numpy()
    order = [list(lens.token_labels).index(label) for label in w.token_labels]
    _, probs = w.top_values()
    np.testing.assert_allclose(probs[..., 0], ref[:, order].max(-1), atol=ref.max() / 255 + 1e-6)
    w.frame = cfg.frames - 1
    with pytest.raises(traitlets.TraitError):
        w.frame = cfg.frames
