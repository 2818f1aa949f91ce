"""``PatchingHeatmap``: where in the network a corruption's effect lives, as a steerable heatmap.

Activation patching (:func:`prisma_widgets.analysis.patch`) puts one cell of the clean run (a token at a
layer, a head, a layer) into the corrupted run and measures how much of the clean behaviour comes back:
``0`` is the corrupted run, ``1`` the clean run. The view shows the effects as a layer x position heatmap
(prefix tokens apart from the patch grid), as one small map per layer over the clean image, or as a
layer x head grid, with a diverging colour bar centred at 0 (true values). Click a cell: a side panel
shows the clean, corrupted and patched predictions. Paint patches on the clean image, pick how to
corrupt them, press Run: the kernel runs a new sweep (progress in the view) and the heatmap follows.

What travels (Python computes every number; the front end only draws):

* ``values`` float32 ``[layer, *cells]``: the result's values exactly (no quantisation);
* ``cell_top_indices`` / ``cell_top_probs`` ``[layer, cells, k]``: the patched run's top-k predictions for
  every cell, when the sweep is exact and ``layers x cells <= max_precomputed_cells`` (they come free with
  the exact sweep's outputs); otherwise the kernel computes the selected cell's on demand
  (``selected_top``), and a saved page says which cells it holds;
* ``clean_top`` / ``corrupted_top``: the two runs' top-k, and both images as uint8.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import traitlets

from ..hooked.config import layer_index
from ._base import ArrayTrait, PrismaWidget, _to_numpy, bundle_css, bundle_esm, check_choice, decode_array, encode_array
from ._layout import as_uint8_image, default_token_labels, infer_layout

SITES = ("resid_pre", "resid_mid", "attn_out", "mlp_out", "z", "pattern")
BYS = ("position", "head", "head_position", "layer")
METHODS = ("exact", "attribution")
DIRECTIONS = ("denoise", "noise")
NORMALIZATIONS = ("global", "unit")
CORRUPTION_MODES = ("mask", "blur", "noise")

_CHOICES = {"site": SITES, "by": BYS, "method": METHODS, "direction": DIRECTIONS, "normalization": NORMALIZATIONS,
            "corruption_mode": CORRUPTION_MODES}

#: the cell axes of each ``by`` (after the layer axis), as :mod:`prisma_widgets.analysis.patching` orders them
CELL_AXES = {"position": ("position",), "head": ("head",), "head_position": ("position", "head"), "layer": ()}
#: keys of ``selected`` for each ``by``
SELECTION_KEYS = {"position": ("layer", "position"), "head": ("layer", "head"),
                  "head_position": ("layer", "position", "head"), "layer": ("layer",)}

#: at most this many (layer, cell) pairs get precomputed predictions (for a saved page)
DEFAULT_MAX_PRECOMPUTED = 4096


def allowed_by(site: str) -> list[str]:
    """The ``by`` values that apply to a site (``head`` needs a per-head site: ``z`` or ``pattern``)."""
    from prisma_widgets.analysis.patching import BY
    from prisma_widgets.analysis.patching import SITES as ENGINE_SITES

    layout = ENGINE_SITES[site][1]
    return [b for b in BYS if set(BY[b]) <= set(layout)]


def _top_k(probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Descending top-k along the last axis (ties: the lower index first)."""
    order = np.argsort(-probs, axis=-1, kind="stable")[..., :k]
    return order, np.take_along_axis(probs, order, -1)


def _single(image: Any, name: str) -> Any:
    """Refuse batches: the widget compares ONE clean image with ONE corrupted image."""
    if isinstance(image, (list, tuple)):
        if len(image) != 1:
            raise ValueError(f"{name} must be one image (PIL, array HWC/CHW or [1, 3, H, W] tensor); got a list of {len(image)}")
        image = image[0]
    shape = getattr(image, "shape", None)
    if shape is not None and len(shape) == 4 and shape[0] != 1:
        raise ValueError(f"{name} must be one image; got a batch of shape {list(shape)} (pass {name}[i])")
    return image


def _check_same_size(clean: Any, corrupted: Any) -> None:
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


def _changed_patches(clean: np.ndarray, corrupted: np.ndarray, grid: Sequence[int]) -> list[int]:
    """Flat indices of the patches where the two images (uint8, model size) differ."""
    rows, cols = int(grid[0]), int(grid[1])
    h, w = clean.shape[:2]
    if corrupted.shape != clean.shape or h % rows or w % cols:
        return []
    diff = (clean != corrupted).any(-1).reshape(rows, h // rows, cols, w // cols).any(axis=(1, 3))
    return [int(i) for i in np.flatnonzero(diff)]


class PatchingHeatmap(PrismaWidget):
    """Activation patching as a heatmap you can steer: which layer, token or head carries the clean answer.

    Args:
        model: a :class:`prisma_widgets.HookedViT`.
        clean: the clean image (PIL, array HWC/CHW, path, or a ``[1, 3, H, W]`` preprocessed tensor).
        corrupted: the same image with some patches changed (see :func:`prisma_widgets.corrupt`).
        site: ``"resid_pre"`` (default), ``"resid_mid"``, ``"attn_out"``, ``"mlp_out"``, ``"z"`` or
            ``"pattern"``.
        by: ``"position"`` (default), ``"head"`` (sites ``z``, ``pattern``), ``"head_position"`` or ``"layer"``.
        method: ``"exact"`` (one patched run per cell, batched) or ``"attribution"`` (gradient estimate).
        direction: ``"denoise"`` (clean activations into the corrupted run) or ``"noise"`` (the reverse).
        metric: a callable on the model output (default: clean-top minus corrupted-top logit).
        layers: which layers (default all).
        labels: class names for the predictions (default: the model's labels, or ``prompts``).
        prompts: CLIP only: texts to read the image embedding out against (else no predictions).
        top_k: how many classes the panel lists.
        max_precomputed_cells: exact sweeps with at most this many (layer, cell) pairs keep every cell's
            predictions (so a saved page has them all); larger ones are computed per click in the kernel.
        **traits: initial values of the synced traits below.

    Synced traits (both ways):
        ``selected``: the clicked cell, ``{"layer": l, "position": p}`` (``by="position"``), ``{"layer", "head"}``,
        ``{"layer", "position", "head"}`` or ``{"layer"}``; ``layer`` is the model's layer index.
        ``site``, ``by``, ``method``, ``direction``: changing them (from Python or the view) recomputes when a
        model is attached. ``status`` and ``progress`` (0..1) report a running sweep.
        ``corruption_patches`` (flat patch indices) and ``corruption_mode`` (``mask``, ``blur``, ``noise``):
        the painted corruption, run by :meth:`run_corruption` or the view's Run button.
        ``normalization``: ``"global"`` (symmetric around 0 over all cells) or ``"unit"`` (fixed [-1, 1]).

    Example:
        >>> import prisma_widgets as pw
        >>> from prisma_widgets import zoo
        >>> model = pw.load("mouse-vit")
        >>> images, classes = zoo.shapes(2, seed=1)
        >>> w = pw.PatchingHeatmap(model, images[0], images[1])
        >>> w.axes, w.values_array().shape
        (['layer', 'position'], (4, 65))
        >>> w.selected = {"layer": 0, "position": 1}
        >>> [p["label"] for p in w.cell_predictions()["patched"]][:1] in (["triangle"], ["cross"])
        True
    """

    _widget_name = "patching_heatmap"
    _esm = bundle_esm("patching_heatmap")
    _css = bundle_css("patching_heatmap")

    # the result (binary)
    values = ArrayTrait()  # float32 [L, *cells]
    cell_top_indices = ArrayTrait()  # uint8/uint16 [L, N, K] or {}
    cell_top_probs = ArrayTrait()  # float32 [L, N, K] or {}
    image_pixels = ArrayTrait()  # uint8 [H, W, 3] or {}: the clean image
    corrupted_pixels = ArrayTrait()  # uint8 [H, W, 3] or {}
    # layout and names (JSON)
    axes = traitlets.List(traitlets.Unicode()).tag(sync=True)
    layer_indices = traitlets.List(traitlets.Int()).tag(sync=True)
    token_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    head_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    grid = traitlets.List(traitlets.Int(), default_value=[1, 1]).tag(sync=True)
    n_prefix_tokens = traitlets.Int(0).tag(sync=True)
    class_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    clean_metric = traitlets.Float(0.0).tag(sync=True)
    corrupted_metric = traitlets.Float(0.0).tag(sync=True)
    clean_top = traitlets.Dict().tag(sync=True)  # {"indices": [...], "probs": [...]}
    corrupted_top = traitlets.Dict().tag(sync=True)
    selected_top = traitlets.Dict().tag(sync=True)  # {"layer", "cell", "indices", "probs"}: computed on demand
    predictions_note = traitlets.Unicode("").tag(sync=True)
    # what was computed, both ways
    site = traitlets.Unicode("resid_pre").tag(sync=True)
    by = traitlets.Unicode("position").tag(sync=True)
    method = traitlets.Unicode("exact").tag(sync=True)
    direction = traitlets.Unicode("denoise").tag(sync=True)
    selected = traitlets.Dict().tag(sync=True)
    normalization = traitlets.Unicode("global").tag(sync=True)
    # the patch editor and the kernel round trip
    corruption_patches = traitlets.List(traitlets.Int()).tag(sync=True)
    corruption_mode = traitlets.Unicode("mask").tag(sync=True)
    run_count = traitlets.Int(0).tag(sync=True)
    interactive = traitlets.Bool(False).tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    progress = traitlets.Float(0.0).tag(sync=True)
    # look
    colormap = traitlets.Unicode("rdbu").tag(sync=True)
    size = traitlets.Int(560).tag(sync=True)
    map_size = traitlets.Int(120).tag(sync=True)

    def __init__(
        self,
        model: Any,
        clean: Any = None,
        corrupted: Any = None,
        *,
        site: str = "resid_pre",
        by: str = "position",
        method: str = "exact",
        direction: str = "denoise",
        metric: Callable[[Any], Any] | None = None,
        layers: Sequence[int] | None = None,
        labels: Sequence[str] | None = None,
        prompts: Sequence[str] | None = None,
        top_k: int = 5,
        max_precomputed_cells: int = DEFAULT_MAX_PRECOMPUTED,
        result: Any = None,
        **traits: Any,
    ) -> None:
        self._model: Any = None
        self._clean: Any = None
        self._corrupted: Any = None
        self._metric = metric
        self._layers: list[int] | None = None
        self._top_k = max(1, int(top_k))
        self._max_cells = int(max_precomputed_cells)
        self._readout: Callable[[Any], np.ndarray] | None = None
        self._results: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._names: list[str] = []
        self._result: Any = None
        self._busy = False
        self._ready = False
        self._saving = False
        self._last_progress = -1.0
        self._running = ""
        if model is None:  # from_result without a model: the state is set by the caller
            super().__init__(**traits)
            self._ready = True
            return
        if clean is None or corrupted is None:
            raise ValueError("pass the clean image and the corrupted image: PatchingHeatmap(model, clean, corrupted)")
        for name, value, choices in (("site", site, SITES), ("by", by, BYS), ("method", method, METHODS),
                                     ("direction", direction, DIRECTIONS)):
            if value not in choices:
                raise ValueError(f"{name} must be one of {choices}; got {value!r}")
        if by not in allowed_by(site):
            raise ValueError(f"by={by!r} does not apply to site={site!r}; choose one of {allowed_by(site)}")
        clean, corrupted = _single(clean, "clean"), _single(corrupted, "corrupted")
        _check_same_size(clean, corrupted)
        cfg = model.cfg
        self._model = model
        self._clean, self._corrupted = model.to_pixels(clean), model.to_pixels(corrupted)
        if self._clean.shape != self._corrupted.shape or self._clean.shape[0] != 1:
            raise ValueError(
                f"clean and corrupted must each be one image of the model's input size {list(cfg.image_size)}; "
                f"got pixels {list(self._clean.shape)} and {list(self._corrupted.shape)}"
            )
        self._layers = None if layers is None else sorted({layer_index(x, cfg.n_layers) for x in layers})
        self._readout, names = self._make_readout(model, labels, prompts)
        self._names = names
        clean_img = model.display_images(self._clean)[0]
        corrupted_img = model.display_images(self._corrupted)[0]
        state: dict[str, Any] = {
            "image_pixels": encode_array(clean_img),
            "corrupted_pixels": encode_array(corrupted_img),
            "class_names": names,
            "corruption_patches": _changed_patches(clean_img, corrupted_img, cfg.grid),
            "interactive": True,
            "note": "",
        }
        state.update(self._run_predictions())
        key = (site, by, method, direction)
        state.update(self._from_result(result) if result is not None else self._compute(key))
        self._busy = True  # site/by/method arrive with their result: nothing to recompute
        try:
            super().__init__(**state)
        finally:
            self._busy = False
        self._ready = True
        self._set_selection_default()
        self._apply_options(dict(traits))

    # ------------------------------------------------------------------------------------------
    # computing
    @staticmethod
    def _make_readout(model: Any, labels: Sequence[str] | None, prompts: Sequence[str] | None):
        """A function from outputs ``[n, d]`` to class probabilities ``[n, C]`` (or None), and the class names."""
        import torch

        if model.cfg.family == "open_clip" or model.cfg.n_classes is None:
            if not prompts:
                return None, []
            with torch.no_grad():
                text = model.encode_text(list(prompts), normalize=True)
            scale = float(model.logit_scale)

            def clip_probs(out: Any) -> np.ndarray:
                out = torch.nn.functional.normalize(out.float(), dim=-1)
                return (scale * out @ text.float().T).softmax(-1).double().cpu().numpy()

            names = list(labels) if labels is not None else [str(p) for p in prompts]
            return clip_probs, names
        if prompts:
            raise ValueError("prompts are for CLIP models; a classifier reads out its own classes")

        def softmax(out: Any) -> np.ndarray:
            return out.float().softmax(-1).double().cpu().numpy()

        names = list(labels) if labels is not None else (model.labels or [f"class {i}" for i in range(model.cfg.n_classes)])
        if len(names) != model.cfg.n_classes:
            raise ValueError(f"{len(names)} labels for {model.cfg.n_classes} classes")
        return softmax, [str(n) for n in names]

    def _run_predictions(self) -> dict[str, Any]:
        """Top-k of the clean and of the corrupted run."""
        import torch

        if self._readout is None:
            return {"clean_top": {}, "corrupted_top": {}}
        with torch.no_grad():
            probs = self._readout(self._model(torch.cat([self._clean, self._corrupted])))
        idx, p = _top_k(probs, self._top_k)
        return {
            "clean_top": {"indices": idx[0].tolist(), "probs": p[0].tolist()},
            "corrupted_top": {"indices": idx[1].tolist(), "probs": p[1].tolist()},
        }

    def _on_progress(self, done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        if not self._ready or (fraction - self._last_progress < 0.02 and done < total):
            return  # a message per ~2%, not per chunk
        self._last_progress = fraction
        self.progress = fraction
        self.status = f"{self._running}: {done}/{total} variants"

    def _compute(self, key: tuple[str, str, str, str]) -> dict[str, Any]:
        """Run the sweep ``key = (site, by, method, direction)`` on the held images (cached per key)."""
        if key in self._results:
            self._result = self._results[key]["_result"]
            return {k: v for k, v in self._results[key].items() if k != "_result"}
        from prisma_widgets.analysis.patching import patch

        site, by, method, direction = key
        self._running = f"{method} sweep, {site} by {by} ({direction})"
        cfg = self._model.cfg
        n_layers = cfg.n_layers if self._layers is None else len(self._layers)
        n_cells = {"position": cfg.n_tokens, "head": cfg.n_heads, "head_position": cfg.n_tokens * cfg.n_heads,
                   "layer": 1}[by]
        keep = method == "exact" and self._readout is not None and n_layers * n_cells <= self._max_cells
        tables: dict[str, np.ndarray] = {}
        if keep:
            tables["indices"] = np.zeros((n_layers, n_cells, self._top_k), np.int64)
            tables["probs"] = np.zeros((n_layers, n_cells, self._top_k), np.float64)

        def collect(position: int, lo: int, out: Any) -> None:
            idx, p = _top_k(self._readout(out[:, 0]), self._top_k)
            tables["indices"][position, lo : lo + len(idx)] = idx
            tables["probs"][position, lo : lo + len(idx)] = p

        self._last_progress = -1.0
        result = patch(self._model, self._clean, self._corrupted, metric=self._metric, site=site, by=by,
                       direction=direction, method=method, layers=self._layers, progress=False,
                       on_progress=self._on_progress, on_chunk=collect if keep else None)
        state = self._from_result(result)
        state.update(self._tables_state(tables.get("indices"), tables.get("probs")))
        self._results[key] = {**state, "_result": result}
        return state

    def _tables_state(self, indices: np.ndarray | None, probs: np.ndarray | None) -> dict[str, Any]:
        if indices is None or probs is None:
            return {"cell_top_indices": {}, "cell_top_probs": {}}
        n = len(self._names) if self._names else int(indices.max(initial=0)) + 1
        dtype = "uint8" if n <= 256 else "uint16" if n <= 65536 else "uint32"
        return {"cell_top_indices": encode_array(indices, dtype), "cell_top_probs": encode_array(probs, "float32")}

    def _from_result(self, result: Any) -> dict[str, Any]:
        """The traits of a :class:`~prisma_widgets.analysis.PatchingResult` (its values exactly)."""
        values = np.asarray(_to_numpy(result.values), dtype=np.float32)
        axes = tuple(result.axes)
        by = result.by
        if axes != ("layer", *CELL_AXES[by]):
            raise ValueError(f"a by={by!r} result must have axes {('layer', *CELL_AXES[by])}; got {axes}")
        labels = result.labels
        layers = [int(x) for x in labels.get("layer", range(values.shape[0]))]
        state: dict[str, Any] = {
            "values": encode_array(values, "float32"),
            "axes": list(axes),
            "layer_indices": layers,
            "site": result.site,
            "by": by,
            "method": result.method,
            "direction": result.direction,
            "clean_metric": float(result.clean_metric),
            "corrupted_metric": float(result.corrupted_metric),
        }
        if self._model is not None:
            cfg = self._model.cfg
            state["grid"] = [int(cfg.grid[0]), int(cfg.grid[1])]
            state["n_prefix_tokens"] = int(cfg.n_prefix_tokens)
            state["token_labels"] = list(self._model.token_labels())
            state["head_labels"] = [f"H{h}" for h in range(cfg.n_heads)]
        if "position" in labels:
            state["token_labels"] = [str(t) for t in labels["position"]]
        if "head" in labels:
            state["head_labels"] = [str(h) for h in labels["head"]]
        self._result = result
        return state

    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_result(
        cls,
        result: Any,
        clean_image: Any = None,
        corrupted_image: Any = None,
        *,
        model: Any = None,
        grid: Sequence[int] | None = None,
        n_prefix_tokens: int | None = None,
        class_names: Sequence[str] | None = None,
        clean_top: dict[str, list[float]] | None = None,
        corrupted_top: dict[str, list[float]] | None = None,
        **traits: Any,
    ) -> PatchingHeatmap:
        """Show a :class:`~prisma_widgets.analysis.PatchingResult` you computed.

        Args:
            result: the result of :func:`prisma_widgets.analysis.patch` (values shown exactly).
            clean_image, corrupted_image: the two images (drawn under the maps and in the panel).
            model: with a model (and both images) the widget is live: predictions per click, recompute on
                ``site``/``by``/``method`` changes, and painted corruptions. Without one it only displays.
            grid, n_prefix_tokens: the token layout (inferred for square grids when there is no model).
            class_names, clean_top, corrupted_top: shown in the side panel when given
                (``{"indices": [...], "probs": [...]}``).
        """
        if model is not None:
            if clean_image is None or corrupted_image is None:
                raise ValueError("with model=..., pass clean_image and corrupted_image too (the widget recomputes)")
            return cls(model, clean_image, corrupted_image, site=result.site, by=result.by, method=result.method,
                       direction=result.direction, result=result, **traits)
        widget = cls(None)
        state = widget._from_result(result)
        if "position" in result.axes:
            g, prefix = infer_layout(len(state["token_labels"]), grid, n_prefix_tokens)
            state["grid"], state["n_prefix_tokens"] = [g[0], g[1]], prefix
        elif grid is not None:
            state["grid"], state["n_prefix_tokens"] = [int(grid[0]), int(grid[1])], int(n_prefix_tokens or 0)
        if "position" in result.axes and not state.get("token_labels"):
            state["token_labels"] = default_token_labels(tuple(state["grid"]), state["n_prefix_tokens"])
        clean = as_uint8_image(clean_image)
        corrupted = as_uint8_image(corrupted_image)
        state["image_pixels"] = encode_array(clean) if clean is not None else {}
        state["corrupted_pixels"] = encode_array(corrupted) if corrupted is not None else {}
        if clean is not None and corrupted is not None:
            state["corruption_patches"] = _changed_patches(clean, corrupted, state["grid"])
        state["class_names"] = [str(c) for c in class_names] if class_names is not None else []
        state["clean_top"] = dict(clean_top or {})
        state["corrupted_top"] = dict(corrupted_top or {})
        state["interactive"] = False
        state["note"] = "built from a result without a model: the controls that recompute need model=..."
        state["predictions_note"] = "no model: patched predictions are not available"
        widget._busy = True
        try:
            with widget.hold_trait_notifications():
                for k, v in state.items():
                    setattr(widget, k, v)
        finally:
            widget._busy = False
        widget._set_selection_default()
        widget._apply_options(traits)
        return widget

    # ------------------------------------------------------------------------------------------
    # selection
    def _cell_shape(self) -> tuple[int, ...]:
        return tuple(self.values_array().shape[1:])

    def _cell_of(self, selected: dict[str, Any]) -> tuple[int, int]:
        """``(layer position, flat cell index)`` of a selection dict (validated)."""
        keys = SELECTION_KEYS[self.by]
        missing = [k for k in keys if k not in selected]
        if missing:
            raise traitlets.TraitError(f"selected needs keys {list(keys)} for by={self.by!r}; missing {missing}")
        layer = int(selected["layer"])
        if layer not in self.layer_indices:
            raise traitlets.TraitError(f"selected layer {layer} is not in the result's layers {self.layer_indices}")
        shape = self._cell_shape()
        coords = [int(selected[a]) for a in CELL_AXES[self.by]]
        for axis, c, n in zip(CELL_AXES[self.by], coords, shape):
            if not 0 <= c < n:
                raise traitlets.TraitError(f"selected {axis} must be in [0, {n}); got {c}")
        cell = int(np.ravel_multi_index(coords, shape)) if coords else 0
        return self.layer_indices.index(layer), cell

    @traitlets.validate("selected")
    def _v_selected(self, proposal: Any) -> dict[str, int]:
        value = dict(proposal["value"] or {})
        if not value or self.values is None or not self.values or not self.axes:
            return value
        self._cell_of(value)
        return {k: int(value[k]) for k in SELECTION_KEYS[self.by]}

    def _set_selection_default(self) -> None:
        """Select the cell with the largest |effect| (the first one on ties)."""
        v = self.values_array()
        flat = int(np.argmax(np.abs(v).reshape(v.shape[0], -1)).item()) if v.size else 0
        lp, cell = divmod(flat, max(1, int(np.prod(v.shape[1:]))))
        coords = np.unravel_index(cell, v.shape[1:]) if v.ndim > 1 else ()
        sel = {"layer": self.layer_indices[lp] if self.layer_indices else lp}
        sel.update({a: int(c) for a, c in zip(CELL_AXES[self.by], coords)})
        self.selected = sel

    @traitlets.observe("selected")
    def _on_selected(self, change: Any) -> None:
        if self._busy or self._model is None or self._readout is None or not change["new"]:
            return
        lp, cell = self._cell_of(change["new"])
        if self._table_has():
            return  # the table already holds every cell
        self.selected_top = self._predict_cell(lp, cell)

    def _table_has(self) -> bool:
        idx = decode_array(self.cell_top_indices)
        return idx is not None and idx.shape[:2] == (len(self.layer_indices), int(np.prod(self._cell_shape())))

    def _predict_cell(self, lp: int, cell: int) -> dict[str, Any]:
        """Top-k of one patched run (one full forward with one hook)."""
        from prisma_widgets.analysis.patching import run_patched

        out = run_patched(self._model, self._clean, self._corrupted, self.site, self.by,
                          layer=self.layer_indices[lp], cell=cell, direction=self.direction)
        idx, p = _top_k(self._readout(out), self._top_k)
        return {"layer": lp, "cell": cell, "indices": idx[0].tolist(), "probs": p[0].tolist()}

    # ------------------------------------------------------------------------------------------
    # validation and recomputing
    @traitlets.validate("site", "by", "method", "direction", "normalization", "corruption_mode")
    def _v_choice(self, proposal: Any) -> str:
        name = proposal["trait"].name
        return check_choice(proposal["value"], _CHOICES[name], name)

    @traitlets.observe("site", "by", "method", "direction")
    def _on_sweep_change(self, change: Any) -> None:
        if self._busy:
            return
        old = {k: getattr(self, k) for k in ("site", "by", "method", "direction")}
        old[change["name"]] = change["old"]
        if self._model is None:
            self._restore(old, "site, by, method and direction need a model to recompute: "
                               "PatchingHeatmap(model, clean, corrupted) or from_result(..., model=model)")
            return
        site, by = self.site, self.by
        note = ""
        if by not in allowed_by(site):
            if change["name"] == "site":
                note = f"by={by!r} does not apply to site={site!r}: showing by='position'"
                by = "position"
            else:
                self._restore(old, f"by={by!r} does not apply to site={site!r}; choose one of {allowed_by(site)}")
                return
        self._recompute((site, by, self.method, self.direction), old, note)

    def _restore(self, old: dict[str, str], message: str) -> None:
        self._busy = True
        try:
            with self.hold_trait_notifications():
                for k, v in old.items():
                    setattr(self, k, v)
        finally:
            self._busy = False
        self.status = message

    def _recompute(self, key: tuple[str, str, str, str], old: dict[str, str], note: str = "") -> bool:
        self._busy = True
        try:
            self.progress = 0.0
            self.status = f"running {key[2]} sweep ({key[0]} by {key[1]})…"
            try:
                state = self._compute(key)
            except Exception as err:  # noqa: BLE001  (shown in the view; the old result stays)
                self._busy = False
                self._restore(old, f"could not run the sweep: {err}")
                return False
            with self.hold_sync():
                for k, v in state.items():
                    setattr(self, k, v)
                self.selected_top = {}
                self._set_selection_default()
                self.progress = 1.0
                self.status = note
        finally:
            self._busy = False
        if self.selected:
            self._on_selected({"new": self.selected})
        return True

    @traitlets.observe("run_count")
    def _on_run_count(self, change: Any) -> None:
        if self._busy or change["new"] == change["old"]:
            return
        self.run_corruption()

    def run_corruption(self, patches: Sequence[int] | Any = None, mode: str | None = None) -> bool:
        """Corrupt the clean image at ``patches`` with ``mode`` and run a new sweep (what Run does in the view).

        ``patches``: flat patch indices (row-major), ``(row, col)`` pairs or a boolean ``[rows, cols]`` grid;
        default ``corruption_patches``. ``mode``: ``mask``, ``blur`` or ``noise``; default ``corruption_mode``.
        Returns whether the new sweep ran (otherwise ``status`` says why and the old result stays).
        """
        from prisma_widgets.analysis.corrupt import corrupt, patch_mask

        if self._model is None:
            self.status = "painting a corruption needs a model: PatchingHeatmap(model, clean, corrupted)"
            return False
        cfg = self._model.cfg
        mode = self.corruption_mode if mode is None else check_choice(mode, CORRUPTION_MODES, "mode")
        chosen = self.corruption_patches if patches is None else patches
        try:
            mask = patch_mask(list(chosen) if not isinstance(chosen, np.ndarray) else chosen, tuple(cfg.grid))
        except ValueError as err:
            self.status = f"could not corrupt: {err}"
            return False
        if not mask.any():
            self.status = "paint at least one patch on the clean image, then press Run"
            return False
        clean_img = decode_array(self.image_pixels)
        corrupted_img = corrupt(clean_img, mask, mode=mode, grid=tuple(cfg.grid))
        old_images = (self._clean, self._corrupted)
        old_results = self._results
        self._clean = self._model.to_pixels(clean_img)  # the displayed clean image, so untouched patches match
        self._corrupted = self._model.to_pixels(corrupted_img)
        self._results = {}
        key = (self.site, self.by, self.method, self.direction)
        old = dict(zip(("site", "by", "method", "direction"), key))
        if not self._recompute(key, old):
            self._clean, self._corrupted = old_images
            self._results = old_results
            return False
        with self.hold_sync():
            self.corrupted_pixels = encode_array(corrupted_img)
            self.corruption_patches = [int(i) for i in np.flatnonzero(mask)]
            self.corruption_mode = mode
            for k, v in self._run_predictions().items():
                setattr(self, k, v)
        return True

    # ------------------------------------------------------------------------------------------
    # saving
    def _ensure_tables(self) -> None:
        """Before saving: every cell's predictions, when an exact sweep of this size is allowed."""
        if self._model is None or self._readout is None or self._table_has():
            return
        n = len(self.layer_indices) * int(np.prod(self._cell_shape()))
        if n > self._max_cells:
            return
        shown = self._result
        state = self._compute((self.site, self.by, "exact", self.direction))
        self._result = shown
        with self.hold_sync():
            self.cell_top_indices = state["cell_top_indices"]
            self.cell_top_probs = state["cell_top_probs"]
            self.status, self.progress = "", 0.0

    def get_state(self, key: Any = None) -> dict[str, Any]:
        state = super().get_state(key)
        if self._saving:
            if "interactive" in state:
                state["interactive"] = False
            if "note" in state:
                state["note"] = ("saved page, no kernel: site, by, method, direction and Run need the kernel; "
                                 "clicking cells, colours and PNG export work")
            if "status" in state:
                state["status"] = ""
            if "progress" in state:
                state["progress"] = 0.0
            if "predictions_note" in state and not self._table_has():
                state["predictions_note"] = self._offline_note()
        return state

    def _offline_note(self) -> str:
        if self._model is None:
            return self.predictions_note
        if self._readout is None:
            return "no class read-out (CLIP without prompts=): no predictions"
        n = len(self.layer_indices) * int(np.prod(self._cell_shape()))
        return (f"predictions were precomputed only for the cell selected when saving "
                f"({n} cells exceed max_precomputed_cells={self._max_cells})")

    def save_html(self, path: str | pathlib.Path, title: str | None = None, compress: bool = True) -> pathlib.Path:
        """Write the widget to one self-contained HTML file (see :meth:`PrismaWidget.save_html`).

        Every cell's patched predictions go in when there are at most ``max_precomputed_cells`` of them (an
        exact sweep computes them if the shown result is an attribution estimate); otherwise only the
        selected cell's, and the page says so. The controls that need the kernel are disabled there.
        """
        self._ensure_tables()
        self._saving = True
        try:
            return super().save_html(path, title=title, compress=compress)
        finally:
            self._saving = False

    # ------------------------------------------------------------------------------------------
    # reading back
    def values_array(self) -> np.ndarray:
        """The effects ``[layer, *cells]`` as the view reads them (the result's values, float32)."""
        v = decode_array(self.values)
        return np.zeros((0,), np.float32) if v is None else v

    @property
    def result(self) -> Any:
        """The :class:`~prisma_widgets.analysis.PatchingResult` shown now (None if built from arrays only)."""
        return self._result

    def cell_predictions(self, selected: dict[str, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
        """What the side panel lists for a cell (default: ``selected``): ``{"clean", "corrupted", "patched"}``,
        each a list of ``{"index", "label", "prob"}``. ``patched`` is empty when nothing holds that cell."""
        lp, cell = self._cell_of(dict(selected or self.selected))
        names = self.class_names

        def rows(top: dict[str, Any]) -> list[dict[str, Any]]:
            return [{"index": int(i), "label": names[int(i)] if int(i) < len(names) else f"class {int(i)}",
                     "prob": float(p)} for i, p in zip(top.get("indices", []), top.get("probs", []))]

        patched: dict[str, Any] = {}
        if self._table_has():
            idx, probs = decode_array(self.cell_top_indices), decode_array(self.cell_top_probs)
            patched = {"indices": idx[lp, cell].tolist(), "probs": probs[lp, cell].tolist()}
        elif self.selected_top.get("layer") == lp and self.selected_top.get("cell") == cell:
            patched = self.selected_top
        elif self._model is not None and self._readout is not None:
            patched = self._predict_cell(lp, cell)
        return {"clean": rows(self.clean_top), "corrupted": rows(self.corrupted_top), "patched": rows(patched)}
