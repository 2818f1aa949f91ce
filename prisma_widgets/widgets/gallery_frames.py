"""FeatureGallery over clips (a video model's SAE): top clips per feature and the frames where it fires.

:func:`~prisma_widgets.feature_stats` treats a clip like an image whose tokens are ``prefix + frames x rows x
cols`` (frame-major): a clip's activation is its largest over every token of every frame. The gallery then
shows, for each card's clip, the token frame where the feature peaks (that frame's image and patch map: the
``rows x cols`` layout an image has, so the view draws it as one), and in the detail view, under each top
clip, a strip of all its frames with the feature's largest activation in each (``detail_frame_values``, the
frames' images in ``detail_frame_images``). ``card_frames`` / ``detail_frames`` / ``quantile_frames`` name the
frame shown. The image pool holds one thumbnail per (clip, frame) shown, labelled ``"<clip label> · t2"``. A model whose tokens are not frame-major (TimeSformer) is reordered first.
A clicked patch asks for the features at its clip token (``image_frames`` names each image's frame); the
look-up is off for a model whose tokens are not frame-major.

Example:
    >>> import numpy as np
    >>> maps = np.array([[0, 1, 0, 0, 5, 0, 2, 0]], np.float32)   # 2 frames of 2 x 2 patches, no prefix
    >>> frame_maxima(maps, 2, 0).tolist(), slice_frames(maps, np.array([1]), 2, 0).tolist()
    ([[1.0, 5.0]], [[5.0, 0.0, 2.0, 0.0]])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import traitlets

from .codec import ArrayTrait, encode_array
from .frames import frame_images
from .gallery_detail import quantized_maps, thumbnail

#: largest thumbnail side of a clip's frames, in pixels (as the gallery's images)
THUMB_SIDE = 96


class GalleryFrameTraits(traitlets.HasTraits):
    """The time axis of a gallery over clips (``frames`` 1 and the rest ``{}`` for images)."""

    frames = traitlets.Int(1, min=1).tag(sync=True)
    card_frames = ArrayTrait()  # int32 [n, CARD_IMAGES]: the token frame each card image shows (its peak)
    detail_frames = ArrayTrait()  # int32 [n, K]
    detail_frame_values = ArrayTrait()  # float32 [n, K, F]: the feature's largest activation in each frame
    detail_frame_images = ArrayTrait()  # int32 [n, K, F]: each frame's image in `images` (-1: none)
    quantile_frames = ArrayTrait()  # int32 [n, Q, S]
    image_frames = traitlets.List(traitlets.Int()).tag(sync=True)  # the token frame of each image in `images`

    def _clip_frames(self, i: int) -> np.ndarray:
        """Clip ``i``'s thumbnails, one per token frame (the gallery's thumbnail cache, its source and model)."""
        thumbs: dict[int, np.ndarray] = self._thumbs  # type: ignore[attr-defined]
        if i not in thumbs:
            item = self._source.item(i)  # type: ignore[attr-defined]
            model = self._model  # type: ignore[attr-defined]
            shown = model.display_images([item])[0] if model is not None else item
            thumbs[i] = clip_thumbs(shown, clip_frames(self._stats), THUMB_SIDE)  # type: ignore[attr-defined]
        return thumbs[i]

    def _frame_order(self) -> np.ndarray | None:
        """The stats' token rows in frame-major order, for a model that orders its tokens otherwise (TimeSformer:
        all frames of one patch together); ``None`` when they already are (or there is no model to ask)."""
        model, stats = self._model, self._stats  # type: ignore[attr-defined]
        cfg = getattr(model, "cfg", None)
        if cfg is None or getattr(cfg, "patch_order", "trc") == "trc":
            return None
        first = int(cfg.n_prefix_tokens) - int(stats.n_prefix_tokens)  # the stats' rows drop prefix tokens
        patches = [tok - first for t in range(cfg.frames) for tok in cfg.frame_tokens(t)]
        return np.asarray(list(range(int(stats.n_prefix_tokens))) + patches)


def clip_frames(stats: Any) -> int:
    """Token frames per item of ``stats`` (1 for images): its patch tokens over one frame's grid."""
    per = int(stats.grid[0]) * int(stats.grid[1])
    n = int(stats.tokens_per_image) - int(stats.n_prefix_tokens)
    return n // per if per and n > per and n % per == 0 else 1


def frame_maxima(maps: np.ndarray, frames: int, n_prefix: int) -> np.ndarray:
    """``[..., T]`` token maps -> ``[..., frames]``: the largest activation over each frame's patches."""
    m = np.asarray(maps, np.float32)[..., n_prefix:]
    per = m.shape[-1] // frames  # explicit: a reshape of no maps cannot infer it
    return m.reshape(*m.shape[:-1], frames, per).max(-1, initial=-np.inf) if per else np.zeros((*m.shape[:-1], frames))


def slice_frames(maps: np.ndarray, frame: np.ndarray, frames: int, n_prefix: int) -> np.ndarray:
    """``[..., T]`` clip maps -> ``[..., n_prefix + rows * cols]``: the prefix tokens and frame ``frame[...]``."""
    m = np.asarray(maps, np.float32)
    patches = m[..., n_prefix:].reshape(*m.shape[:-1], frames, (m.shape[-1] - n_prefix) // frames)
    picked = np.take_along_axis(patches, np.asarray(frame)[..., None, None], axis=-2)[..., 0, :]
    return np.concatenate([m[..., :n_prefix], picked], -1)


def frame_content(stats: Any, cards: Sequence[int], details: Sequence[int], groups: list[list[dict[str, Any]]],
                  shown: Callable[[int], np.ndarray], labels: Sequence[str] | None, card_images: int,
                  n_groups: int, order: np.ndarray | None = None) -> dict[str, Any]:
    """The content traits of a clip gallery (what ``FeatureGallery._content_state`` sends for images, per frame).

    ``groups``: each detail feature's quantile groups; ``shown(i)``: clip ``i``'s display frames, one per token
    frame ``[frames, H, W, 3]``; ``order``: the token rows in frame-major order (``None``: they are).
    """
    F, pre = clip_frames(stats), int(stats.n_prefix_tokens)
    cards, details = [int(f) for f in cards], [int(f) for f in details]
    if order is None:
        order = np.arange(stats.tokens_per_image)
    c_ids, c_maps = stats.top_images[cards, :card_images], stats.top_maps[cards, :card_images][..., order]
    d_ids, d_maps = stats.top_images[details], stats.top_maps[details][..., order]
    per_group = max([len(g["images"]) for gs in groups for g in gs] or [1])
    q_ids = np.full((len(details), n_groups, per_group), -1, np.int64)
    q_maps = np.zeros((len(details), n_groups, per_group, stats.tokens_per_image), np.float32)
    for n, gs in enumerate(groups):
        for g, grp in enumerate(gs):
            q_ids[n, g, : len(grp["images"])] = grp["images"]
            q_maps[n, g, : len(grp["images"])] = np.asarray(grp["maps"])[..., order]
    c_f, d_pf, q_f = (frame_maxima(c_maps, F, pre).argmax(-1), frame_maxima(d_maps, F, pre),
                      frame_maxima(q_maps, F, pre).argmax(-1))
    d_f = d_pf.argmax(-1) if d_pf.size else np.zeros(d_ids.shape, np.int64)
    every = np.broadcast_to(np.arange(F), (*d_ids.shape, F))
    pairs = {(int(i), int(f)) for ids, fr in ((c_ids, c_f), (q_ids, q_f)) for i, f in zip(ids.ravel(), fr.ravel())}
    pairs |= {(int(i), int(f)) for i, f in zip(np.repeat(d_ids.ravel(), F), every.ravel())}
    pool = sorted(p for p in pairs if p[0] >= 0)
    at = {p: k for k, p in enumerate(pool)}

    def pos(ids: np.ndarray, fr: np.ndarray) -> np.ndarray:
        out = np.array([at.get((int(i), int(f)), -1) for i, f in zip(ids.ravel(), np.broadcast_to(fr, ids.shape).ravel())],
                       np.int32)
        return out.reshape(ids.shape)

    clips: dict[int, np.ndarray] = {}
    for i in sorted({i for i, _ in pool}):
        clips[i] = shown(i)
    pixels = (np.stack([clips[i][f] for i, f in pool]) if pool else np.zeros((0, 1, 1, 3), np.uint8))
    card_maps, card_scale = quantized_maps(slice_frames(c_maps, c_f, F, pre))
    det_maps, det_scale = quantized_maps(slice_frames(d_maps, d_f, F, pre))
    qm, q_scale = quantized_maps(slice_frames(q_maps, q_f, F, pre))
    name = (lambda i: str(labels[i])) if labels is not None else (lambda i: f"clip {i}")
    return {
        "frames": F,
        "card_images": encode_array(pos(c_ids, c_f)),
        "card_maps": card_maps,
        "card_map_scale": card_scale,
        "card_frames": encode_array(c_f.astype(np.int32)),
        "detail_images": encode_array(pos(d_ids, d_f)),
        "detail_maps": det_maps,
        "detail_map_scale": det_scale,
        "detail_frames": encode_array(d_f.astype(np.int32)),
        "detail_frame_values": encode_array(d_pf.astype(np.float32).reshape(*d_ids.shape, F)),
        "detail_frame_images": encode_array(pos(np.repeat(d_ids[..., None], F, -1), every)),
        "quantile_images": encode_array(pos(q_ids, q_f)),
        "quantile_maps": qm,
        "quantile_map_scale": q_scale,
        "quantile_frames": encode_array(q_f.astype(np.int32)),
        "images": encode_array(pixels),
        "image_ids": [i for i, _ in pool],
        "image_frames": [f for _, f in pool],
        "image_labels": [f"{name(i)} · t{f}" for i, f in pool],
    }


def clip_thumbs(display: np.ndarray, frames: int, max_side: int) -> np.ndarray:
    """One thumbnail per token frame of a displayed clip ``[T, H, W, 3]``: ``[frames, h, w, 3]``."""
    return np.stack([thumbnail(f, max_side) for f in frame_images(display, frames)])
