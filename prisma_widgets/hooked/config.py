"""The shape of a wrapped model, read off the module itself."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HookedViTConfig:
    """What a wrapped ViT looks like. Token layout is data: never assume one CLS token, a square grid or one frame.

    Token positions are ``n_prefix_tokens`` prefix tokens (CLS first when ``has_cls``, then registers),
    followed by ``n_patches = frames * grid[0] * grid[1]`` patch tokens. An image has one frame and its patches
    in row-major order. A video model reads ``input_frames = frames * tubelet_size`` frames and has ``frames``
    token frames (a tubelet of ``tubelet_size`` frames makes one token), each a ``grid``; ``patch_order`` says how
    they are laid out: ``"trc"`` frame by frame (VideoMAE, ViViT), ``"rct"`` all frames of one patch together
    (TimeSformer). :meth:`patch_coords`, :meth:`token_index`, :meth:`frame_tokens` and :meth:`tube_tokens`
    answer where a token sits, so no caller needs to know the order.

    Example:
        >>> from prisma_widgets.hooked.config import HookedViTConfig
        >>> cfg = HookedViTConfig("hf", None, 2, 2, 8, 4, 16, (16, 16), (32, 32), (2, 2), 1, True, 0, 5, 5,
        ...                       "token", frames=3, tubelet_size=2)
        >>> cfg.n_tokens, cfg.token_labels()[:3], cfg.token_index(1, 0, 1)
        (13, ['CLS', 't0 r0c0', 't0 r0c1'], 6)
    """

    family: str  # "timm" or "open_clip": for people; code asks the adapter, never this
    model_name: str | None
    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_mlp: int | None
    patch_size: tuple[int, int]
    image_size: tuple[int, int]
    grid: tuple[int, int]
    n_prefix_tokens: int
    has_cls: bool
    n_registers: int
    n_classes: int | None  # classifier heads; None for CLIP and headless models
    d_output: int  # logits for classifiers, the embedding width for CLIP
    pooling: str  # "token", "avg", "map", ...
    #: what the output reads out against: "classes" (a classifier head, ``labels``), "text" (an image
    #: embedding scored against text prompts, CLIP-style) or "none" (a headless model: features only)
    readout: str = "classes"
    #: names of the prefix tokens when they are not CLS then registers (a distillation token: ``("CLS", "DIST")``)
    prefix_labels: tuple[str, ...] | None = None
    #: token frames (after tubelets): 1 for images
    frames: int = 1
    #: input frames per token frame (VideoMAE and ViViT embed 2 frames into one token): 1 for images
    tubelet_size: int = 1
    #: the order of the patch tokens: "trc" (frame, row, column: images, VideoMAE, ViViT) or "rct" (TimeSformer)
    patch_order: str = "trc"

    @property
    def is_video(self) -> bool:
        """Whether the model reads a clip (``[batch, input_frames, 3, H, W]``) rather than one image."""
        return self.input_frames > 1

    @property
    def input_frames(self) -> int:
        """Frames the model reads per clip (``frames * tubelet_size``); 1 for images."""
        return self.frames * self.tubelet_size

    @property
    def patches_per_frame(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def n_patches(self) -> int:
        return self.frames * self.grid[0] * self.grid[1]

    @property
    def n_tokens(self) -> int:
        return self.n_prefix_tokens + self.n_patches

    def patch_coords(self) -> list[tuple[int, int, int]]:
        """``(frame, row, col)`` of every patch token, in token order (after the prefix)."""
        rows, cols = self.grid
        if self.patch_order == "rct":
            return [(t, r, c) for r in range(rows) for c in range(cols) for t in range(self.frames)]
        return [(t, r, c) for t in range(self.frames) for r in range(rows) for c in range(cols)]

    def token_index(self, frame: int, row: int, col: int) -> int:
        """The token position of the patch at ``(frame, row, col)`` (prefix tokens counted)."""
        rows, cols = self.grid
        if not (0 <= frame < self.frames and 0 <= row < rows and 0 <= col < cols):
            raise ValueError(f"patch (frame {frame}, row {row}, col {col}) is outside {self.frames} frame(s) of "
                             f"{rows}x{cols} patches")
        if self.patch_order == "rct":
            return self.n_prefix_tokens + (row * cols + col) * self.frames + frame
        return self.n_prefix_tokens + (frame * rows + row) * cols + col

    def frame_major(self) -> list[int]:
        """Token positions of the patches in ``(frame, row, col)`` order: ``x[:, cfg.frame_major()]`` reshapes to
        ``[batch, frames, rows, cols, ...]`` whatever the model's own order."""
        rows, cols = self.grid
        return [self.token_index(t, r, c) for t in range(self.frames) for r in range(rows) for c in range(cols)]

    def frame_tokens(self, frame: int) -> list[int]:
        """Token positions of every patch of token frame ``frame`` (row-major)."""
        rows, cols = self.grid
        return [self.token_index(frame, r, c) for r in range(rows) for c in range(cols)]

    def tube_tokens(self, row: int, col: int) -> list[int]:
        """Token positions of the patch at ``(row, col)`` in every frame (a tube through time)."""
        return [self.token_index(t, row, col) for t in range(self.frames)]

    def token_labels(self) -> list[str]:
        """One label per token position: ``"CLS"``, ``"reg0"`` ... (or ``prefix_labels``), then ``"r{row}c{col}"``
        (``"t{frame} r{row}c{col}"`` for a video model)."""
        if self.prefix_labels is not None:
            prefix = list(self.prefix_labels)
        else:
            prefix = (["CLS"] if self.has_cls else []) + [f"reg{i}" for i in range(self.n_registers)]
        prefix += [f"prefix{i}" for i in range(len(prefix), self.n_prefix_tokens)]
        if self.is_video:
            return prefix + [f"t{t} r{r}c{c}" for t, r, c in self.patch_coords()]
        rows, cols = self.grid
        return prefix + [f"r{r}c{c}" for r in range(rows) for c in range(cols)]


def layer_index(layer: int, n_layers: int) -> int:
    """``layer`` as an index in ``[0, n_layers)``; negative counts from the end (``-1`` is the last layer).

    Example:
        >>> layer_index(-1, 12), layer_index(3, 12)
        (11, 3)
    """
    try:
        if isinstance(layer, bool):
            raise TypeError
        i = operator.index(layer)
    except TypeError:
        raise TypeError(f"a layer is an integer index in 0..{n_layers - 1} (or -1 for the last); got {layer!r}") from None
    if not -n_layers <= i < n_layers:
        raise ValueError(f"layer {i} is out of range: the model has {n_layers} layers (0..{n_layers - 1}, or -1 for the last)")
    return i % n_layers


def layer_list(layers: Any, n_layers: int) -> list[int] | None:
    """``layers`` as indices in ``[0, n_layers)`` (``None`` stays ``None``: every layer); an empty list is refused.

    Example:
        >>> layer_list([0, -1], 4)
        [0, 3]
    """
    if layers is None:
        return None
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise TypeError(f"layers must be a list of layer indices in 0..{n_layers - 1}; got {layers!r}")
    out = [layer_index(x, n_layers) for x in layers]
    if not out:
        raise ValueError(f"layers is empty; pass layer indices in [0, {n_layers}), or layers=None for all")
    return out
