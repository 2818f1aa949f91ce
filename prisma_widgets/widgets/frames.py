"""The time axis of the widgets: clips of token frames, a synced ``frame``, and the frames sent once as images.

A video transformer's tokens are ``n_prefix`` prefix tokens, then ``frames`` token frames of ``rows x cols``
patches, frame-major (token ``prefix + (t * rows + r) * cols + c`` is labelled ``"t{t} r{r}c{c}"``). A widget
that shows per-token maps mixes in :class:`FrameTraits`: ``frames`` (how many token frames; 1 for an image),
``frame`` (the one shown, synced both ways: a slider and a play button in the view, or ``widget.frame = 2``
here) and ``frame_pixels`` (one display image per token frame, uint8 ``[frames, H, W, 3]``, sent once and
shared by every layer and mode). ``image_pixels`` stays frame 0, so a view that knows nothing of time still
shows the clip's start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets

from ._layout import as_uint8_image
from .codec import ArrayTrait, encode_array, to_numpy


class FrameTraits(traitlets.HasTraits):
    """Mixin of the synced time axis (list it before :class:`~prisma_widgets.widgets._base.PrismaWidget`).

    ``frames``: token frames (1: an image, no frame strip). ``frame``: the token frame shown, both ways.
    ``frame_pixels``: uint8 ``[frames, H, W, 3]`` display images, one per token frame, or ``{}``.
    """

    frames = traitlets.Int(1, min=1).tag(sync=True)
    frame = traitlets.Int(0).tag(sync=True)
    frame_pixels = ArrayTrait()

    @traitlets.validate("frame")
    def _v_frame(self, proposal: Any) -> int:
        v = int(proposal["value"])
        if not 0 <= v < max(int(self.frames), 1):
            raise traitlets.TraitError(f"frame must be a token frame in [0, {self.frames}); got {v}")
        return v


def infer_frame_layout(n_tokens: int, frames: int, grid: Sequence[int] | None,
                       n_prefix: int | None) -> tuple[tuple[int, int], int]:
    """``((rows, cols), n_prefix)`` for ``n_tokens = n_prefix + frames * rows * cols`` tokens.

    Example:
        >>> infer_frame_layout(64, 4, (4, 4), None)
        ((4, 4), 0)
        >>> infer_frame_layout(65, 4, None, 1)
        ((4, 4), 1)
    """
    frames = int(frames)
    if frames < 1:
        raise ValueError(f"frames must be at least 1; got {frames}")
    if grid is not None:
        rows, cols = int(grid[0]), int(grid[1])
        prefix = n_tokens - frames * rows * cols if n_prefix is None else int(n_prefix)
    else:
        prefix = 0 if n_prefix is None else int(n_prefix)
        per = (n_tokens - prefix) / frames
        side = int(round(per ** 0.5)) if per > 0 else 0
        if side * side != per and n_prefix is None:  # one CLS token is the common case
            prefix = 1
            per = (n_tokens - 1) / frames
            side = int(round(per ** 0.5)) if per > 0 else 0
        if side * side != per:
            raise ValueError(f"{n_tokens} tokens are not {frames} square frames of patches; pass grid=(rows, cols) "
                             "and n_prefix_tokens")
        rows = cols = side
    if prefix < 0 or prefix + frames * rows * cols != n_tokens:
        raise ValueError(f"{n_tokens} tokens do not fit n_prefix_tokens={prefix} + {frames} frames x grid "
                         f"{rows}x{cols}")
    return (rows, cols), prefix


def frame_token_labels(grid: Sequence[int], n_prefix: int, frames: int) -> list[str]:
    """``"CLS"`` ..., then ``"t{t} r{r}c{c}"`` frame-major (one frame: the image labels ``"r{r}c{c}"``).

    Example:
        >>> frame_token_labels((2, 2), 0, 2)[:5]
        ['t0 r0c0', 't0 r0c1', 't0 r1c0', 't0 r1c1', 't1 r0c0']
    """
    prefix = ["CLS"] + [f"reg{i}" for i in range(n_prefix - 1)] if n_prefix else []
    rows, cols = int(grid[0]), int(grid[1])
    cells = [f"r{r}c{c}" for r in range(rows) for c in range(cols)]
    if frames <= 1:
        return prefix + cells
    return prefix + [f"t{t} {cell}" for t in range(frames) for cell in cells]


def frame_images(video: Any, frames: int) -> np.ndarray | None:
    """One uint8 ``[H, W, 3]`` display image per token frame, ``[frames, H, W, 3]``.

    ``video`` is a clip ``[T, H, W, 3]`` (or ``[T, 3, H, W]``, uint8 or float in [0, 1] / [0, 255]) or a list of
    frames; ``T`` a multiple of ``frames`` (a tubelet of ``T // frames`` input frames makes one token frame,
    shown by its first frame), or one image (shown under every frame). ``None`` stays ``None``.
    """
    if video is None:
        return None
    items = list(video) if isinstance(video, (list, tuple)) else None
    if items is None:
        a = np.asarray(video.convert("RGB")) if hasattr(video, "convert") else np.asarray(to_numpy(video))
        items = list(a) if a.ndim == 4 else [a]
    shown = [as_uint8_image(x) for x in items]
    if len({x.shape for x in shown}) != 1:
        raise ValueError(f"all frames must have the same size, got {sorted({x.shape for x in shown})}")
    if len(shown) == 1:
        shown = shown * frames
    if len(shown) % frames:
        raise ValueError(f"{len(shown)} video frames do not split into {frames} token frames; pass a clip of "
                         f"{frames} x tubelet frames")
    step = len(shown) // frames
    return np.stack(shown[::step])


def frame_state(video: Any, frames: int) -> dict[str, Any]:
    """``image_pixels`` (frame 0), ``frame_pixels`` and ``frames`` for a widget's state, from a clip."""
    shown = frame_images(video, frames)
    if shown is None:
        return {"image_pixels": {}, "frame_pixels": {}, "frames": int(frames)}
    return {"image_pixels": encode_array(shown[0]), "frame_pixels": encode_array(shown) if frames > 1 else {},
            "frames": int(frames)}


def frame_major_tokens(values: np.ndarray, lens: Any) -> tuple[np.ndarray, list[str]]:
    """Per-token ``values`` ``[..., T, C]`` and the token labels of a lens result in the widgets' order: prefix
    tokens, then the patches frame by frame (a model that keeps its tokens otherwise, such as TimeSformer's
    ``(row, col, frame)``, is reordered; an image model's order is already this)."""
    labels = list(lens.token_labels)
    major = getattr(lens, "frame_major", None)
    if major is None:
        return values, labels
    order = list(range(int(lens.n_prefix_tokens))) + [int(i) for i in major]
    return values[..., order, :], [labels[i] for i in order]
