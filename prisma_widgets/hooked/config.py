"""The shape of a wrapped model, read off the module itself."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HookedViTConfig:
    """What a wrapped ViT looks like. Token layout is data: never assume one CLS token or a square grid.

    Token positions are ``n_prefix_tokens`` prefix tokens (CLS first when ``has_cls``, then registers),
    followed by ``grid[0] * grid[1]`` patch tokens in row-major order.
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

    @property
    def n_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def n_tokens(self) -> int:
        return self.n_prefix_tokens + self.n_patches

    def token_labels(self) -> list[str]:
        """One label per token position: ``"CLS"``, ``"reg0"`` ... (or ``prefix_labels``), then ``"r{row}c{col}"``."""
        if self.prefix_labels is not None:
            prefix = list(self.prefix_labels)
        else:
            prefix = (["CLS"] if self.has_cls else []) + [f"reg{i}" for i in range(self.n_registers)]
        prefix += [f"prefix{i}" for i in range(len(prefix), self.n_prefix_tokens)]
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
