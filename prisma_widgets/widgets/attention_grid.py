"""``AttentionGrid``: every head's attention for one query token, drawn over the image.

A layers x heads grid of thumbnails. Each shows, for the selected query token, where it looks (a row
of the pattern) or who looks at it (a column), over the patch grid and the image; prefix tokens (CLS,
registers) get their own cells. Hover the query image to choose the query live, click to lock it;
click a thumbnail for the head's full query x key matrix, linked to the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from ..analysis.attention import attention_rollout, head_summaries
from ..validate import check_finite
from ._base import (
    ArrayTrait,
    PrismaWidget,
    bundle_css,
    bundle_esm,
    check_position,
    check_shown,
    decode_array,
    dequantize_rows,
    encode_array,
    quantize_rows,
    to_numpy,
)
from ._layout import as_uint8_images, default_token_labels, infer_layout
from .attention_frames import clip_grid_parts, strip_frame, strip_position
from .frames import FrameTraits

if TYPE_CHECKING:
    from ..hooked.model import HookedViT

DIRECTIONS = ("row", "column")
NORMALIZATIONS = ("head", "layer", "global")
SCALES = ("linear", "log", "percentile")
SUMMARIES = ("none", "distance", "entropy")
PRECISIONS = ("uint8", "float32")

#: Largest absolute error of a pattern value sent as uint8, as a fraction of its row's maximum.
QUANTIZATION_BOUND = 1.0 / 510.0


def grid_state(
    patterns: np.ndarray,
    display: np.ndarray | None,
    *,
    grid: tuple[int, int],
    n_prefix_tokens: int,
    token_labels: list[str],
    layers: list[int],
    heads: Sequence[int] | None,
    rollout: np.ndarray | None,
    precision: str,
    image_labels: Sequence[str] | None,
) -> dict[str, Any]:
    """The synced state of a grid: quantised patterns, images, layout, and the default selection."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    n_heads = patterns.shape[2]
    head_list = list(range(n_heads)) if heads is None else [int(h) for h in heads]
    if not head_list or not layers:
        raise ValueError(f"{'heads' if not head_list else 'layers'} is empty; pass at least one index, or None for all")
    check_finite(patterns, "the attention patterns", "patterns are probabilities: check the model and its input")
    for h in head_list:
        if not 0 <= h < n_heads:
            raise ValueError(f"head {h} out of range: there are {n_heads} heads")
    patterns = patterns[:, :, head_list]
    n_tokens = patterns.shape[-1]
    if len(token_labels) != n_tokens:
        raise ValueError(f"{len(token_labels)} token labels for {n_tokens} tokens")
    batch = patterns.shape[0]
    labels = [str(x) for x in image_labels] if image_labels is not None else [f"image {i}" for i in range(batch)]
    if len(labels) != batch:
        raise ValueError(f"{len(labels)} image labels for {batch} images")
    if display is not None and display.shape[0] != batch:
        raise ValueError(f"{display.shape[0]} images for {batch} sets of patterns")

    data: dict[str, Any] = {}
    if precision == "uint8":
        q, s = quantize_rows(patterns)
        data["patterns"], data["pattern_scale"] = encode_array(q), encode_array(s)
        if rollout is not None:
            rq, rs = quantize_rows(rollout)
            data["rollout_patterns"], data["rollout_scale"] = encode_array(rq), encode_array(rs)
    else:
        data["patterns"] = encode_array(patterns, "float32")
        data["pattern_scale"] = {}
        if rollout is not None:
            data["rollout_patterns"], data["rollout_scale"] = encode_array(rollout, "float32"), {}
    data["image_pixels"] = encode_array(display) if display is not None else {}
    # per-head summaries over the images, a layer at a time (bounded memory)
    per_layer = [head_summaries(patterns[:, i], grid, n_prefix_tokens) for i in range(patterns.shape[1])]
    for key in ("distance", "entropy"):
        table = np.stack([s[key].mean(0) for s in per_layer]) if per_layer else np.zeros((0, 0), np.float32)
        data[f"head_{key}"] = encode_array(table, "float32")
    selection = {
        "layer": layers[0],
        "head": head_list[0],
        "query": 0 if n_prefix_tokens else (grid[0] // 2) * grid[1] + grid[1] // 2,
    }
    # layout first, selection last: validators check the selection against the layout
    return {
        "grid": [int(grid[0]), int(grid[1])],
        "n_prefix_tokens": int(n_prefix_tokens),
        "token_labels": [str(t) for t in token_labels],
        "layer_indices": layers,
        "head_indices": head_list,
        "image_labels": labels,
        **data,
        "show_rollout": rollout is not None,
        **selection,
    }


class AttentionGrid(FrameTraits, PrismaWidget):
    """Layers x heads thumbnails of attention for one query token, over the image.

    Args:
        model: a :class:`prisma_widgets.HookedViT`.
        images: one image or a list (PIL, arrays HWC/CHW, paths): the widget gets an image switcher.
        layers, heads: which to show (default all).
        rollout: also compute attention rollout (an extra row: rollout through each shown layer).
        precision: ``"uint8"`` (default; each pattern row quantised with its own scale, absolute error
            at most ``max(row) / 510``) or ``"float32"`` (exact, 4x the bytes).
        image_labels: names for the image switcher (shown as text).
        attention: a video model's clips are shown as film strips (every token frame side by side: hover a
            query at ``(t, r, c)``, see its attention over all frames); for divided space-time attention
            (TimeSformer) ``"space"`` (default) or ``"time"`` picks which attention is shown.
        **traits: initial values of the synced traits below.

    Synced traits (set them from Python and the view follows; the view sets them when clicked):
        ``layer``, ``head``: the selected head (model indices), opened in the detail view.
        ``query``: the token position whose attention is shown (default: the first prefix token).
        ``direction``: ``"row"`` (where the query looks) or ``"column"`` (who looks at it).
        ``image_index``: which image.
        ``normalization``: colour range per ``"head"``, ``"layer"`` or ``"global"``.
        ``scale``: ``"linear"``, ``"log"`` or ``"percentile"`` (clip at ``percentile``).
        ``summary``: ``"distance"`` (mean attention distance, in patches) or ``"entropy"`` (nats) per head,
        averaged over the images: a layer x head table beside the grid and a bar under each thumbnail
        (``"none"``: hidden). ``sort_heads``: order each layer's heads by that summary (local heads first).

    Example:
        >>> import prisma_widgets as pw
        >>> model = pw.load("mouse-vit")
        >>> scenes = pw.zoo.scenes(2, seed=1)
        >>> grid = pw.AttentionGrid(model, list(scenes.images), layers=[2, 3])
        >>> grid.pattern_values().shape        # [image, layer, head, query, key]
        (2, 2, 4, 65, 65)
        >>> grid.layer, grid.head = 3, 1       # the view opens that head's query x key matrix
        >>> grid.query = 10                    # and shows where token 10 (r1c1) looks
    """

    _widget_name = "attention_grid"
    _esm = bundle_esm("attention_grid")
    _css = bundle_css("attention_grid")
    #: the head selection, for prisma_widgets.link (see widgets/link.py)
    _head_link = {"fields": {"layer": "layer", "head": "head"}, "among": {"layer": "layer_indices", "head": "head_indices"}}

    # data (binary)
    patterns = ArrayTrait()  # uint8 or float32 [B, L, H, Q, K]
    pattern_scale = ArrayTrait()  # float32 [B, L, H, Q] when patterns are uint8, else {}
    rollout_patterns = ArrayTrait()  # uint8/float32 [B, L, Q, K] or {}
    rollout_scale = ArrayTrait()  # float32 [B, L, Q] or {}
    image_pixels = ArrayTrait()  # uint8 [B, H, W, 3] or {}
    head_distance = ArrayTrait()  # float32 [L, H]: mean attention distance (patches), mean over the images
    head_entropy = ArrayTrait()  # float32 [L, H]: attention entropy (nats), mean over the images
    # layout (plain JSON)
    grid = traitlets.List(traitlets.Int(), default_value=[1, 1]).tag(sync=True)
    n_prefix_tokens = traitlets.Int(0).tag(sync=True)
    token_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    layer_indices = traitlets.List(traitlets.Int()).tag(sync=True)
    head_indices = traitlets.List(traitlets.Int()).tag(sync=True)
    image_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    # selection, both ways
    layer = traitlets.Int(0).tag(sync=True)
    head = traitlets.Int(0).tag(sync=True)
    query = traitlets.Int(0).tag(sync=True)
    direction = traitlets.Enum(DIRECTIONS, default_value="row").tag(sync=True)
    image_index = traitlets.Int(0).tag(sync=True)
    normalization = traitlets.Enum(NORMALIZATIONS, default_value="head").tag(sync=True)
    scale = traitlets.Enum(SCALES, default_value="linear").tag(sync=True)
    percentile = traitlets.Float(99.0).tag(sync=True)
    show_rollout = traitlets.Bool(False).tag(sync=True)
    show_detail = traitlets.Bool(True).tag(sync=True)
    summary = traitlets.Enum(SUMMARIES, default_value="none").tag(sync=True)
    sort_heads = traitlets.Bool(False).tag(sync=True)
    #: a clip's attention: "joint" space-time, or a divided model's "space" or "time" (widgets/attention_frames.py)
    attention = traitlets.Enum(("joint", "space", "time"), default_value="joint").tag(sync=True)
    # look
    thumb_size = traitlets.Int(64, min=16, max=512).tag(sync=True)
    opacity = traitlets.Float(0.8, min=0.0, max=1.0).tag(sync=True)

    def __init__(
        self,
        model: HookedViT,
        images: Any,
        layers: Sequence[int] | None = None,
        heads: Sequence[int] | None = None,
        *,
        rollout: bool = False,
        precision: str = "uint8",
        image_labels: Sequence[str] | None = None,
        attention: str | None = None,
        **traits: Any,
    ) -> None:
        import torch

        self._init_private()
        cfg = model.cfg
        layer_list = list(range(cfg.n_layers)) if layers is None else [int(x) for x in layers]
        if not layer_list:
            raise ValueError(f"layers is empty; pass layer indices in [0, {cfg.n_layers}), or layers=None for all")
        for lay in layer_list:
            if not 0 <= lay < cfg.n_layers:
                raise ValueError(f"layer {lay} out of range: the model has {cfg.n_layers} layers")
        if cfg.is_video:  # a clip: its token frames side by side, a film strip (widgets/attention_frames.py)
            parts = clip_grid_parts(model, images, layer_list, rollout, attention)
            shown, display, roll, grid = parts["patterns"], parts["display"], parts["rollout"], parts["grid"]
            labels = parts["token_labels"]
        else:
            # rollout needs every layer from the first up to the last shown
            needed = list(range(max(layer_list) + 1)) if rollout else layer_list
            names = {f"blocks.{i}.attn.hook_pattern" for i in needed}
            batch = images if isinstance(images, (list, tuple)) else [images]
            with torch.no_grad():
                _, cache = model.run_with_cache(batch, names_filter=lambda n: n in names)
            full = np.stack([to_numpy(cache[f"blocks.{i}.attn.hook_pattern"]).astype(np.float32) for i in needed], 1)
            shown = full[:, [needed.index(i) for i in layer_list]]
            roll = attention_rollout(full)[:, [needed.index(i) for i in layer_list]] if rollout else None
            display = model.display_images(batch)
            grid, labels = tuple(cfg.grid), list(model.token_labels())
        state = grid_state(
            shown,
            display,
            grid=grid,
            n_prefix_tokens=cfg.n_prefix_tokens,
            token_labels=labels,
            layers=layer_list,
            heads=heads,
            rollout=roll,
            precision=precision,
            image_labels=image_labels,
        )
        state = {"frames": cfg.frames, "attention": parts["attention"] if cfg.is_video else "joint", **state}
        state["model_name"] = str(model.name or "")
        self._init_traits(state)
        self._apply_options(traits)

    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_patterns(
        cls,
        patterns: Any,
        image: Any = None,
        grid: Sequence[int] | None = None,
        n_prefix_tokens: int | None = None,
        *,
        token_labels: Sequence[str] | None = None,
        layers: Sequence[int] | None = None,
        heads: Sequence[int] | None = None,
        rollout: bool = False,
        precision: str = "uint8",
        image_labels: Sequence[str] | None = None,
        **traits: Any,
    ) -> AttentionGrid:
        """Show attention patterns you computed.

        Args:
            patterns: ``[layers, heads, query, key]`` or ``[batch, layers, heads, query, key]`` (numpy
                or torch), rows summing to one. All layers of the model, in order, if ``rollout``.
            image: the image(s) the patterns belong to (uint8 or float HWC/CHW, PIL), one per batch
                item or one for all; ``None`` draws on grey.
            grid: ``(rows, cols)`` of patch tokens; inferred for square grids.
            n_prefix_tokens: tokens before the patches (CLS, registers); inferred from ``grid``.
            token_labels: one label per token (default ``CLS``, ``reg0``..., ``r{row}c{col}``).
            layers: the model layer index of each entry of the layer axis (default ``0..L-1``).
            heads: which heads to show (default all).
        """
        p = np.asarray(to_numpy(patterns), dtype=np.float32)
        if p.ndim == 4:
            p = p[None]
        if p.ndim != 5 or p.shape[-1] != p.shape[-2]:
            raise ValueError(f"patterns must be [layers, heads, q, k] or [batch, layers, heads, q, k], got {p.shape}")
        g, prefix = infer_layout(p.shape[-1], grid, n_prefix_tokens)
        layer_list = list(range(p.shape[1])) if layers is None else [int(x) for x in layers]
        if len(layer_list) != p.shape[1]:
            raise ValueError(f"{len(layer_list)} layer indices for {p.shape[1]} layers of patterns")
        roll = attention_rollout(p) if rollout else None
        labels = list(token_labels) if token_labels is not None else default_token_labels(g, prefix)
        display = as_uint8_images(image, p.shape[0])
        state = grid_state(
            p,
            display,
            grid=g,
            n_prefix_tokens=prefix,
            token_labels=labels,
            layers=layer_list,
            heads=heads,
            rollout=roll,
            precision=precision,
            image_labels=image_labels,
        )
        return cls._from_state(state, traits)

    # ------------------------------------------------------------------------------------------
    @traitlets.validate("percentile")
    def _v_percentile(self, proposal: Any) -> float:
        v = float(proposal["value"])
        if not 50.0 <= v <= 100.0:
            raise traitlets.TraitError(f"percentile must be in [50, 100], not {v}")
        return v

    @traitlets.validate("layer")
    def _v_layer(self, proposal: Any) -> int:
        return check_shown(proposal["value"], self.layer_indices, "layer")

    @traitlets.validate("head")
    def _v_head(self, proposal: Any) -> int:
        return check_shown(proposal["value"], self.head_indices, "head")

    @traitlets.validate("query")
    def _v_query(self, proposal: Any) -> int:
        return check_position(proposal["value"], len(self.token_labels), "query", "token position")

    @traitlets.observe("query", "frame")
    def _sync_frame(self, change: Any) -> None:
        """A clip: ``frame`` is the query's token frame; a new frame moves the query to its (row, col) there."""
        if self.frames <= 1 or self.query < self.n_prefix_tokens:
            return
        grid, n = (self.grid[0], self.grid[1]), self.n_prefix_tokens
        now = strip_frame(self.query, grid, self.frames, n)
        if change["name"] == "query" and now != self.frame:
            self.frame = now
        elif change["name"] == "frame" and now != self.frame:
            row, col = divmod(self.query - n, grid[1])
            self.query = strip_position(self.frame, row, col % (grid[1] // self.frames), grid, self.frames, n)

    @traitlets.validate("image_index")
    def _v_image_index(self, proposal: Any) -> int:
        return check_position(proposal["value"], len(self.image_labels), "image_index", "image index")

    # ------------------------------------------------------------------------------------------
    def pattern_values(self) -> np.ndarray:
        """The patterns as the front end reads them, float32 ``[B, L, H, Q, K]`` (dequantised)."""
        q = decode_array(self.patterns)
        if q is None:
            raise ValueError("this grid holds no patterns")
        s = decode_array(self.pattern_scale)
        return dequantize_rows(q, s) if s is not None else q.astype(np.float32)

    def head_summary(self) -> dict[str, np.ndarray]:
        """Per-head summaries over the images, ``{"distance": [L, H], "entropy": [L, H]}`` for the shown layers
        and heads (see :func:`prisma_widgets.analysis.head_summaries`): local heads have small distances."""
        out = {}
        for key in ("distance", "entropy"):
            table = decode_array(getattr(self, f"head_{key}"))
            out[key] = table if table is not None else np.zeros((len(self.layer_indices), len(self.head_indices)), np.float32)
        return out

    def rollout_values(self) -> np.ndarray | None:
        """The rollout as the front end reads it, float32 ``[B, L, Q, K]``, or ``None``."""
        q = decode_array(self.rollout_patterns)
        if q is None:
            return None
        s = decode_array(self.rollout_scale)
        return dequantize_rows(q, s) if s is not None else q.astype(np.float32)

    def to_circuitsvis(self, layer: int | None = None, image_index: int | None = None) -> Any:
        """This layer as circuitsvis ``attention_heads``, with patch labels and no causal mask."""
        from circuitsvis.attention import attention_heads

        layer = self.layer if layer is None else int(layer)
        if layer not in self.layer_indices:
            raise ValueError(f"layer {layer} is not in this grid; shown layers: {self.layer_indices}")
        b = self.image_index if image_index is None else int(image_index)
        values = self.pattern_values()[b, self.layer_indices.index(layer)]
        return attention_heads(
            attention=values,
            tokens=list(self.token_labels),
            attention_head_names=[f"L{layer}H{h}" for h in self.head_indices],
            mask_upper_tri=False,
        )
