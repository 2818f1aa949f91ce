"""Token layout and display images for widgets built from precomputed arrays (no model at hand).

A model knows its layout (``model.cfg.grid``, ``model.token_labels()``); arrays alone do not, so the
``from_*`` constructors infer it here: a grid and a number of prefix tokens (CLS, registers) that add
up to the token count, labels in the backend's convention, and uint8 RGB images for display.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .codec import to_numpy


def infer_layout(n_tokens: int, grid: Sequence[int] | None, n_prefix: int | None) -> tuple[tuple[int, int], int]:
    """``((rows, cols), n_prefix)`` for ``n_tokens`` tokens; what is not given is inferred (square grid,
    fewest prefix tokens).

    Example:
        >>> infer_layout(197, None, None)
        ((14, 14), 1)
        >>> infer_layout(65, (8, 8), None)
        ((8, 8), 1)
    """
    if grid is not None:
        rows, cols = int(grid[0]), int(grid[1])
        prefix = n_tokens - rows * cols if n_prefix is None else int(n_prefix)
    else:
        if n_prefix is None:
            candidates = [p for p in range(0, min(n_tokens, 17)) if math.isqrt(n_tokens - p) ** 2 == n_tokens - p]
            if not candidates:
                raise ValueError(f"cannot infer the patch grid from {n_tokens} tokens; pass grid=(rows, cols)")
            prefix = candidates[0]
        else:
            prefix = int(n_prefix)
        side = math.isqrt(max(0, n_tokens - prefix))
        if side * side != n_tokens - prefix:
            raise ValueError(f"{n_tokens - prefix} patch tokens are not a square grid; pass grid=(rows, cols)")
        rows = cols = side
    if prefix < 0 or prefix + rows * cols != n_tokens:
        raise ValueError(f"{n_tokens} tokens do not fit n_prefix_tokens={prefix} + grid {rows}x{cols}")
    return (rows, cols), prefix


def default_token_labels(grid: Sequence[int], n_prefix: int) -> list[str]:
    """``"CLS"``, ``"reg0"`` ..., then ``"r{row}c{col}"``: the backend's labels (``HookedViT.token_labels``)."""
    prefix = ["CLS"] + [f"reg{i}" for i in range(n_prefix - 1)] if n_prefix else []
    return prefix + [f"r{r}c{c}" for r in range(int(grid[0])) for c in range(int(grid[1]))]


def as_uint8_image(image: Any) -> np.ndarray | None:
    """One image for display as uint8 ``[H, W, 3]``: PIL, or an array HWC/CHW/HW, uint8 or float
    (``[0, 1]`` or ``[0, 255]``)."""
    if image is None:
        return None
    if hasattr(image, "convert"):  # PIL
        image = np.asarray(image.convert("RGB"))
    a = np.asarray(to_numpy(image))
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, -1)
    if a.ndim != 3:
        raise ValueError(f"an image must be HWC, CHW or HW; got shape {a.shape}")
    if a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = a.transpose(1, 2, 0)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, -1)
    a = a[..., :3]
    if a.dtype != np.uint8:
        f = a.astype(np.float32)
        unit = f.max() <= 1.0 + 1e-6
        # Resampling may undershoot 0 a little. Clearly below 0 with a small maximum is a normalised model
        # input (about -2..2.6), which clipping would garble.
        if f.min() < (-12.0 if f.max() > 8.0 else -0.05):
            raise ValueError(
                f"this float image has values down to {f.min():.2f}: it looks normalised for a model. Pass the "
                "original image (uint8, or float in [0, 1] or [0, 255]), or model.display_images(pixels)"
            )
        if unit:
            f = f * 255.0
        a = np.clip(np.rint(f), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a)


def as_uint8_images(images: Any, batch: int) -> np.ndarray | None:
    """``batch`` display images, uint8 ``[B, H, W, 3]``, from a list, a batch array or one image (repeated)."""
    if images is None:
        return None
    if isinstance(images, (list, tuple)):
        items = list(images)
    else:
        a = np.asarray(images.convert("RGB")) if hasattr(images, "convert") else to_numpy(images)
        items = list(a) if a.ndim == 4 else [a]
    out = [as_uint8_image(item) for item in items]
    shapes = {x.shape for x in out}
    if len(shapes) != 1:
        raise ValueError(f"all images must have the same size, got {sorted(shapes)}")
    arr = np.stack(out)
    if arr.shape[0] == 1 and batch > 1:
        arr = np.repeat(arr, batch, axis=0)
    if arr.shape[0] != batch:
        raise ValueError(f"{arr.shape[0]} images for {batch} sets of values")
    return arr


# ----- a clean / corrupted pair -----
def single_image(image: Any, name: str) -> Any:
    """Refuse batches: the widget compares ONE clean image with ONE corrupted image."""
    if isinstance(image, (list, tuple)):
        if len(image) != 1:
            raise ValueError(f"{name} must be one image (PIL, array HWC/CHW or [1, 3, H, W] tensor); got a list of {len(image)}")
        image = image[0]
    shape = getattr(image, "shape", None)
    if shape is not None and len(shape) == 4 and shape[0] != 1:
        raise ValueError(f"{name} must be one image; got a batch of shape {list(shape)} (pass {name}[i])")
    return image


def check_same_size(clean: Any, corrupted: Any) -> None:
    a, b = getattr(clean, "shape", None), getattr(corrupted, "shape", None)
    if a is not None and b is not None and len(a) != len(b):
        return  # e.g. HWC against a [1, 3, H, W] tensor: to_pixels checks those
    size_a = getattr(clean, "size", None) if a is None else None
    size_b = getattr(corrupted, "size", None) if b is None else None
    if a is not None and b is not None and tuple(a) != tuple(b):
        got = f"clean {list(a)}, corrupted {list(b)}"
    elif callable(getattr(clean, "convert", None)) and callable(getattr(corrupted, "convert", None)) and size_a != size_b:
        got = f"clean {size_a}, corrupted {size_b} (PIL sizes)"
    else:
        return
    raise ValueError(
        "clean and corrupted must be the same image at the same size (only the corrupted patches differ); "
        f"got {got}. Build the corrupted one from the clean one: pw.corrupt(clean, patches, mode=..., model=model)"
    )


def changed_patches(clean: np.ndarray, corrupted: np.ndarray, grid: Sequence[int]) -> list[int]:
    """Flat indices of the patches where the two images (uint8, model size) differ."""
    rows, cols = int(grid[0]), int(grid[1])
    h, w = clean.shape[:2]
    if corrupted.shape != clean.shape or h % rows or w % cols:
        return []
    diff = (clean != corrupted).any(-1).reshape(rows, h // rows, cols, w // cols).any(axis=(1, 3))
    return [int(i) for i in np.flatnonzero(diff)]
