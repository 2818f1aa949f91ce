"""Building corrupted images for patching: change chosen patches, keep every other pixel."""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any, TYPE_CHECKING

import numpy as np

from ..validate import check_seed

if TYPE_CHECKING:
    from ..hooked.model import HookedViT

MODES = ("mask", "blur", "noise", "swap")


def patch_mask(patches: Any, grid: tuple[int, int] | None) -> np.ndarray:
    """A boolean ``[rows, cols]`` grid from a boolean grid, or from ``(row, col)`` pairs / flat (row-major)
    patch indices on ``grid``.

    Example:
        >>> patch_mask([(0, 1), 5], grid=(2, 3)).astype(int).tolist()
        [[0, 1, 0], [0, 0, 1]]
    """
    array = np.asarray(patches) if not isinstance(patches, (list, tuple, set)) else None
    if array is not None and array.dtype == bool and array.ndim == 2:
        if grid is not None and tuple(array.shape) != tuple(grid):
            raise ValueError(f"the patch mask is {array.shape[0]}x{array.shape[1]} but the grid is {grid[0]}x{grid[1]}")
        return array
    if grid is None:
        raise ValueError("pass grid=(rows, cols) or model=... with a list of (row, col) patches, or a boolean [rows, cols] mask")
    mask = np.zeros(grid, dtype=bool)
    for entry in patches if isinstance(patches, Iterable) else [patches]:
        try:
            row, col = (divmod(operator.index(entry), grid[1]) if np.ndim(entry) == 0 else
                        (operator.index(entry[0]), operator.index(entry[1])))
        except (TypeError, IndexError):
            raise TypeError(f"patches are flat patch indices, (row, col) pairs or a boolean [rows, cols] mask; got "
                            f"{entry!r} in them") from None
        if not (0 <= row < grid[0] and 0 <= col < grid[1]):
            raise ValueError(f"patch ({row}, {col}) is outside the {grid[0]}x{grid[1]} grid")
        mask[row, col] = True
    return mask


def _pixel_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    rows = np.linspace(0, height, mask.shape[0] + 1).round().astype(int)
    cols = np.linspace(0, width, mask.shape[1] + 1).round().astype(int)
    row_of = np.searchsorted(rows, np.arange(height), side="right") - 1
    col_of = np.searchsorted(cols, np.arange(width), side="right") - 1
    return mask[row_of][:, col_of]


def corrupt(
    image: Any,
    patches: Any,
    mode: str = "mask",
    other: Any = None,
    *,
    grid: tuple[int, int] | None = None,
    model: HookedViT | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A copy of ``image`` (uint8 ``[H, W, 3]``) with the chosen patches corrupted, every other pixel kept.

    ``patches``: a boolean ``[rows, cols]`` mask, or ``(row, col)`` pairs / flat patch indices with ``grid``.
    With ``model=...`` the image is first brought to the model's input size and the grid is the model's.
    Modes: ``"mask"`` (the image's mean colour), ``"blur"`` (Gaussian blur), ``"noise"`` (seeded Gaussian noise),
    ``"swap"`` (the same patches of ``other``).

    Example:
        >>> import prisma_widgets as pw
        >>> model = pw.load("mouse-vit")
        >>> images, labels = pw.zoo.shapes(2, seed=0)
        >>> corrupted = pw.corrupt(images[0], [(3, 4), (3, 5)], mode="swap", other=images[1], model=model)
        >>> corrupted.shape, bool((corrupted[24:32, 32:48] == images[1][24:32, 32:48]).all())
        ((64, 64, 3), True)
    """
    from PIL import Image, ImageFilter

    from ..hooked.preprocess import to_pil

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    seed = check_seed(seed)
    if model is not None:
        image = model.display_images(image)[0]
        grid = model.cfg.grid
    pixels = np.asarray(to_pil(image))
    height, width = pixels.shape[:2]
    patch_grid = patch_mask(patches, grid)
    where = _pixel_mask(patch_grid, height, width)[..., None]
    if mode == "mask":
        replacement = np.broadcast_to(pixels.reshape(-1, 3).mean(0).round().astype(np.uint8), pixels.shape)
    elif mode == "blur":
        cell = max(height // patch_grid.shape[0], 2)
        replacement = np.asarray(to_pil(pixels).filter(ImageFilter.GaussianBlur(radius=cell / 2)))
    elif mode == "noise":
        noise = np.random.default_rng(seed).normal(0, 64, pixels.shape)
        replacement = np.clip(pixels.astype(float) + noise, 0, 255).round().astype(np.uint8)
    else:
        if other is None:
            raise ValueError("mode='swap' takes the patches from another image: pass other=...")
        if model is not None:
            other = model.display_images(other)[0]
        other_image = to_pil(other)
        if other_image.size != (width, height):
            other_image = other_image.resize((width, height), Image.BILINEAR)
        replacement = np.asarray(other_image)
    return np.where(where, replacement, pixels).astype(np.uint8)
