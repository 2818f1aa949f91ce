"""The clean / corrupted pair of a :class:`~prisma_widgets.PatchingHeatmap`, for an image or a video model's clip.

An image model compares ONE clean image with ONE corrupted image. A video model compares one clean clip
(``[T, H, W, 3]``, a list of frames or a file) with one corrupted clip: the widget then shows the clip's token
frames (``frames``, a synced ``frame``, ``frame_pixels``: see :mod:`prisma_widgets.widgets.frames`), and a
painted corruption corrupts the same patches in every frame of the clip.

Example:
    >>> import prisma_widgets as pw
    >>> from prisma_widgets import zoo
    >>> model = pw.load("mouse-video")
    >>> clip = zoo.moving_shapes(1, seed=6).videos[0]             # [8, 32, 32, 3]: 4 token frames
    >>> clean, corrupted = pair_pixels(model, clip, clip[::-1].copy())
    >>> list(clean.shape), pair_state(model, clean, corrupted)[0]["frames"]
    ([1, 8, 3, 32, 32], 4)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis.corrupt import corrupt
from ._base import encode_array
from ._layout import changed_patches, check_same_size, single_image
from .frames import frame_state

if TYPE_CHECKING:
    import torch

    from ..hooked.model import HookedViT


def pair_pixels(model: HookedViT, clean: Any, corrupted: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's pixels ``[1, ...]`` of the clean and the corrupted input, validated to be one of each."""
    cfg = model.cfg
    if not cfg.is_video:  # a clip is [T, H, W, 3]: single_image would take it for a batch
        clean, corrupted = single_image(clean, "clean"), single_image(corrupted, "corrupted")
        check_same_size(clean, corrupted)
    clean_px, corrupted_px = model.to_pixels(clean), model.to_pixels(corrupted)
    if clean_px.shape != corrupted_px.shape or clean_px.shape[0] != 1:
        what = f"one clip of {cfg.input_frames} frames" if cfg.is_video else "one image"
        raise ValueError(
            f"clean and corrupted must each be {what} of the model's input size {list(cfg.image_size)}; "
            f"got pixels {list(clean_px.shape)} and {list(corrupted_px.shape)}"
        )
    return clean_px, corrupted_px


def clip_changed_patches(clean: np.ndarray, corrupted: np.ndarray, grid: Any) -> list[int]:
    """Flat patch indices that differ in any frame (``[T, H, W, 3]`` clips) or in the image (``[H, W, 3]``)."""
    if clean.ndim == 3:
        return changed_patches(clean, corrupted, grid)
    if clean.shape != corrupted.shape:
        return []
    return sorted({p for a, b in zip(clean, corrupted) for p in changed_patches(a, b, grid)})


def pair_state(model: HookedViT, clean_px: Any, corrupted_px: Any) -> tuple[dict[str, Any], np.ndarray]:
    """The images' traits (and, for a clip, its frames) and the display input ``swap`` takes patches from."""
    cfg = model.cfg
    clean_img = model.display_images(clean_px)[0]  # [H, W, 3], or for a clip [T, H, W, 3]
    corrupted_img = model.display_images(corrupted_px)[0]
    first = clean_img[0] if cfg.is_video else clean_img
    state: dict[str, Any] = {
        "image_pixels": encode_array(first),
        "corrupted_pixels": encode_array(corrupted_img[0] if cfg.is_video else corrupted_img),
        "corruption_patches": clip_changed_patches(clean_img, corrupted_img, cfg.grid),
        "frames": int(cfg.frames),
        "frame_pixels": {},
    }
    if cfg.is_video:
        state.update(frame_state(clean_img, cfg.frames))
    return state, corrupted_img


def corrupt_input(model: HookedViT, shown: np.ndarray, mask: np.ndarray, mode: str, other: np.ndarray | None) -> np.ndarray:
    """``shown`` (the display image, or a clip ``[T, H, W, 3]``) with the ``mask`` patches corrupted by ``mode``;
    a clip has the same patches corrupted in every frame (``swap``: from the same frame of ``other``)."""
    grid = tuple(model.cfg.grid)
    if shown.ndim == 3:
        return corrupt(shown, mask, mode=mode, grid=grid, other=other)
    others = [None] * len(shown) if other is None else list(other)
    return np.stack([corrupt(f, mask, mode=mode, grid=grid, other=o) for f, o in zip(shown, others)])
