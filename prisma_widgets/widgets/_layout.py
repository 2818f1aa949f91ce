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

from ._base import _to_numpy


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
    a = np.asarray(_to_numpy(image))
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
        a = np.asarray(images.convert("RGB")) if hasattr(images, "convert") else _to_numpy(images)
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
