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

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from ..analysis.corrupt import patch_mask
from ..analysis.patching_session import PatchingSession, Sweep, SweepKey, allowed_by
from ..hooked.config import layer_index
from ._base import COLORMAPS, ArrayTrait, PrismaWidget, bundle_css, bundle_esm, decode_array, encode_array
from .frames import FrameTraits
from .patching_frames import corrupt_input, pair_pixels, pair_state
from .patching_state import (
    BYS,
    CELL_AXES,
    CORRUPTION_MODES,
    DEFAULT_MAX_PRECOMPUTED,
    DIRECTIONS,
    METHODS,
    NORMALIZATIONS,
    SAVED_NOTE,
    SELECTION_KEYS,
    SITES,
    display_state,
    result_state,
    tables_state,
)

if TYPE_CHECKING:
    from ..analysis.patching import PatchingResult
    from ..hooked.model import HookedViT

class PatchingHeatmap(FrameTraits, PrismaWidget):
    """Activation patching as a heatmap you can steer: which layer, token or head carries the clean answer.

    Args:
        model: a :class:`prisma_widgets.HookedViT`.
        clean: the clean image (PIL, array HWC/CHW, path, or a ``[1, 3, H, W]`` preprocessed tensor); for a
            video model a clip (``[T, H, W, 3]``, a list of frames, a file): then ``frames``, a two-way ``frame``
            and ``frame_pixels`` show it a token frame at a time (see ``widgets/patching_frames.py``).
        corrupted: the same image (or clip) with some patches changed (see :func:`prisma_widgets.corrupt`).
        site: ``"resid_pre"`` (default), ``"resid_mid"``, ``"attn_out"``, ``"mlp_out"``, ``"z"`` or
            ``"pattern"``.
        by: ``"position"`` (default), ``"head"`` (sites ``z``, ``pattern``), ``"head_position"``, ``"layer"``, or
            for a clip ``"frame"`` (a whole token frame) and ``"tube"`` (one patch through every frame).
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
        ``{"layer", "position", "head"}``, ``{"layer"}``, ``{"layer", "frame"}`` or ``{"layer", "tube"}``; ``layer``
        is the model's layer index. A clip's painted corruption changes those patches in every frame.
        ``site``, ``by``, ``method``, ``direction``: changing them (from Python or the view) recomputes when a
        model is attached. ``status`` and ``progress`` (0..1) report a running sweep.
        ``corruption_patches`` (flat patch indices) and ``corruption_mode`` (``mask``, ``blur``, ``noise``, or
        ``swap``: those patches of the corrupted image given here): the painted corruption, run by
        :meth:`run_corruption` or the view's Run button. ``error``: why the last Run or recompute did not run
        (the view shows it over the heatmap and marks the result shown as the previous one); ``""`` after one runs.
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
    #: the head selection, for prisma_widgets.link (see widgets/link.py): a cell is a head in by="head"/"head_position"
    _head_link = {"fields": {"layer": "selected.layer", "head": "selected.head"}, "among": {"layer": "layer_indices"},
                  "count": {"head": "head_labels"}, "when": {"by": ["head", "head_position"]}}

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
    site = traitlets.Enum(SITES, default_value="resid_pre").tag(sync=True)
    by = traitlets.Enum(BYS, default_value="position").tag(sync=True)
    method = traitlets.Enum(METHODS, default_value="exact").tag(sync=True)
    direction = traitlets.Enum(DIRECTIONS, default_value="denoise").tag(sync=True)
    selected = traitlets.Dict().tag(sync=True)
    normalization = traitlets.Enum(NORMALIZATIONS, default_value="global").tag(sync=True)
    # the patch editor and the kernel round trip
    corruption_patches = traitlets.List(traitlets.Int()).tag(sync=True)
    corruption_mode = traitlets.Enum(CORRUPTION_MODES, default_value="mask").tag(sync=True)
    run_count = traitlets.Int(0).tag(sync=True)
    interactive = traitlets.Bool(False).tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    progress = traitlets.Float(0.0).tag(sync=True)
    # look
    colormap = traitlets.CaselessStrEnum(COLORMAPS, default_value="rdbu").tag(sync=True)
    size = traitlets.Int(560, min=64, max=4096).tag(sync=True)
    map_size = traitlets.Int(120, min=32, max=1024).tag(sync=True)

    def __init__(
        self,
        model: HookedViT,
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
        result: PatchingResult | None = None,
        **traits: Any,
    ) -> None:
        self._init_private()
        if clean is None or corrupted is None:
            raise ValueError("pass the clean image and the corrupted image: PatchingHeatmap(model, clean, corrupted)")
        for name, value, choices in (("site", site, SITES), ("by", by, BYS), ("method", method, METHODS),
                                     ("direction", direction, DIRECTIONS)):
            if value not in choices:
                raise ValueError(f"{name} must be one of {choices}; got {value!r}")
        if by not in allowed_by(site):
            raise ValueError(f"by={by!r} does not apply to site={site!r}; choose one of {allowed_by(site)}")
        cfg = model.cfg
        clean_px, corrupted_px = pair_pixels(model, clean, corrupted)
        chosen = None if layers is None else sorted({layer_index(x, cfg.n_layers) for x in layers})
        session = PatchingSession(model, clean_px, corrupted_px, metric=metric, layers=chosen, labels=labels,
                                  prompts=prompts, top_k=top_k, max_precomputed_cells=max_precomputed_cells)
        self._session = session
        images, self._swap_source = pair_state(model, clean_px, corrupted_px)  # swap takes patches from there
        self._clean_shown = model.display_images(clean_px)[0]
        state: dict[str, Any] = {
            **images,
            "class_names": session.names,
            "interactive": True,
            "note": "",
            "model_name": str(model.name or ""),
            **self._predictions_state(),
        }
        sweep = Sweep(result) if result is not None else session.sweep((site, by, method, direction))
        state.update(self._sweep_state(sweep))
        self._init_traits(state)
        self._select_largest()
        self._update_selected_top()
        self._apply_options(dict(traits))

    def _init_private(self) -> None:
        self._session: PatchingSession | None = None
        self._result: PatchingResult | None = None
        self._swap_source: np.ndarray | None = None
        self._clean_shown: np.ndarray | None = None  # the clean image (or clip) as displayed: Run corrupts it

    # ------------------------------------------------------------------------------------------
    # state from the session
    def _layout_state(self) -> dict[str, Any]:
        if self._session is None:
            return {}
        model = self._session.model
        cfg = model.cfg
        return {"grid": [int(cfg.grid[0]), int(cfg.grid[1])], "n_prefix_tokens": int(cfg.n_prefix_tokens),
                "token_labels": list(model.token_labels()), "head_labels": [f"H{h}" for h in range(cfg.n_heads)]}

    def _sweep_state(self, sweep: Sweep) -> dict[str, Any]:
        self._result = sweep.result
        n_classes = len(self._session.names) if self._session is not None else 0
        return {**self._layout_state(), **result_state(sweep.result),
                **tables_state(sweep.cell_top_indices, sweep.cell_top_probs, n_classes)}

    def _predictions_state(self) -> dict[str, Any]:
        clean_top, corrupted_top = self._session.run_predictions() if self._session is not None else ({}, {})
        return {"clean_top": clean_top, "corrupted_top": corrupted_top}

    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_result(
        cls,
        result: PatchingResult,
        clean_image: Any = None,
        corrupted_image: Any = None,
        *,
        model: HookedViT | None = None,
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
        if not (hasattr(result, "values") and hasattr(result, "axes") and hasattr(result, "by")):
            raise TypeError(f"result must be a PatchingResult (from pw.analysis.patch(...)); got {type(result).__name__}")
        if model is not None:
            if clean_image is None or corrupted_image is None:
                raise ValueError("with model=..., pass clean_image and corrupted_image too (the widget recomputes)")
            return cls(model, clean_image, corrupted_image, site=result.site, by=result.by, method=result.method,
                       direction=result.direction, result=result, **traits)
        state = display_state(result, clean_image, corrupted_image, grid=grid, n_prefix_tokens=n_prefix_tokens,
                              class_names=class_names, clean_top=clean_top, corrupted_top=corrupted_top)
        widget = cls._from_state(state, _result=result)
        widget._select_largest()
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
        if not value or not self.values or not self.axes:
            return value
        self._cell_of(value)
        return {k: int(value[k]) for k in SELECTION_KEYS[self.by]}

    def _select_largest(self) -> None:
        """Select the cell with the largest |effect| (the first one on ties), quietly."""
        v = self.values_array()
        flat = int(np.argmax(np.abs(v).reshape(v.shape[0], -1)).item()) if v.size else 0
        lp, cell = divmod(flat, max(1, int(np.prod(v.shape[1:]))))
        coords = np.unravel_index(cell, v.shape[1:]) if v.ndim > 1 else ()
        sel = {"layer": self.layer_indices[lp] if self.layer_indices else lp}
        sel.update({a: int(c) for a, c in zip(CELL_AXES[self.by], coords)})
        self._set_quietly({"selected": sel})

    @traitlets.observe("selected")
    def _on_selected(self, change: Any) -> None:
        if not self._is_quiet:
            self._update_selected_top()

    def _update_selected_top(self) -> None:
        """The selected cell's patched predictions, computed in the kernel when the tables do not hold them."""
        session = self._session
        if session is None or session.readout is None or not self.selected or self._table_has():
            return
        lp, cell = self._cell_of(self.selected)
        self.selected_top = self._predict_cell(lp, cell)

    def _table_has(self) -> bool:
        idx = decode_array(self.cell_top_indices)
        return idx is not None and idx.shape[:2] == (len(self.layer_indices), int(np.prod(self._cell_shape())))

    def _predict_cell(self, lp: int, cell: int) -> dict[str, Any]:
        assert self._session is not None
        idx, p = self._session.predict_cell(self.site, self.by, self.direction, self.layer_indices[lp], cell)
        return {"layer": lp, "cell": cell, "indices": idx, "probs": p}

    # ------------------------------------------------------------------------------------------
    # recomputing
    @traitlets.observe("site", "by", "method", "direction")
    def _on_sweep_change(self, change: Any) -> None:
        if self._is_quiet:
            return
        old = {k: getattr(self, k) for k in ("site", "by", "method", "direction")}
        old[change["name"]] = change["old"]
        if self._session is None:
            self._set_quietly({**old, "status": "site, by, method and direction need a model to recompute: "
                                                "PatchingHeatmap(model, clean, corrupted) or from_result(..., model=model)"})
            return
        site, by = self.site, self.by
        note = ""
        if by not in allowed_by(site):
            if change["name"] != "site":
                self._set_quietly({**old, "status": f"by={by!r} does not apply to site={site!r}; "
                                                    f"choose one of {allowed_by(site)}"})
                return
            note = f"by={by!r} does not apply to site={site!r}: showing by='position'"
            by = "position"
        self._recompute((site, by, self.method, self.direction), old, note)

    def _progress_reporter(self, key: SweepKey) -> Callable[[int, int], None]:
        """Progress into ``progress`` and ``status``: a message per ~2% of the sweep, not per chunk."""
        site, by, method, direction = key
        running = f"{method} sweep, {site} by {by} ({direction})"
        last = [-1.0]

        def report(done: int, total: int) -> None:
            fraction = done / total if total else 1.0
            if fraction - last[0] < 0.02 and done < total:
                return
            last[0] = fraction
            self.progress = fraction
            self.status = f"{running}: {done}/{total} variants"

        return report

    def _recompute(self, key: SweepKey, old: dict[str, str], note: str = "") -> bool:
        """Run the sweep ``key`` and show it; on failure put ``old`` back and say why in ``status``."""
        assert self._session is not None
        with self._quiet():
            self.progress = 0.0
            self.status = f"running {key[2]} sweep ({key[0]} by {key[1]})…"
        try:
            sweep = self._session.sweep(key, on_progress=self._progress_reporter(key))
        except Exception as err:  # noqa: BLE001  (shown over the heatmap; the old result stays, marked as such)
            message = self._session.explain_failure(err)
            self._set_quietly({**old, "status": message, "error": message, "progress": 0.0})
            return False
        self._set_quietly({**self._sweep_state(sweep), "selected_top": {}, "progress": 1.0, "status": note,
                           "error": ""})
        self._select_largest()
        self._update_selected_top()
        return True

    @traitlets.observe("run_count")
    def _on_run_count(self, change: Any) -> None:
        if not self._is_quiet and change["new"] != change["old"]:
            self.run_corruption()

    def run_corruption(self, patches: Sequence[int] | Any = None, mode: str | None = None) -> bool:
        """Corrupt the clean image at ``patches`` with ``mode`` and run a new sweep (what Run does in the view).

        ``patches``: flat patch indices (row-major), ``(row, col)`` pairs or a boolean ``[rows, cols]`` grid;
        default ``corruption_patches``. ``mode``: ``mask``, ``blur``, ``noise`` or ``swap`` (the patches of the
        corrupted image given to the widget); default ``corruption_mode``.
        Returns whether the new sweep ran (otherwise ``error`` and ``status`` say why and the old result stays).
        """
        session = self._session
        if session is None:
            self.status = "painting a corruption needs a model: PatchingHeatmap(model, clean, corrupted)"
            return False
        if mode is not None and mode not in CORRUPTION_MODES:
            raise ValueError(f"mode must be one of {CORRUPTION_MODES}; got {mode!r}")
        mode = self.corruption_mode if mode is None else mode
        grid = tuple(session.model.cfg.grid)
        chosen = self.corruption_patches if patches is None else patches
        try:
            mask = patch_mask(list(chosen) if not isinstance(chosen, np.ndarray) else chosen, grid)
        except ValueError as err:
            return self._refuse(f"could not corrupt: {err}")
        if not mask.any():
            return self._refuse("paint at least one patch on the clean image, then press Run")
        shown = self._clean_shown if self._clean_shown is not None else decode_array(self.image_pixels)
        corrupted_img = corrupt_input(session.model, shown, mask, mode, self._swap_source)
        # the displayed clean input, so untouched patches match exactly
        self._session = session.with_pair(session.model.to_pixels(shown), session.model.to_pixels(corrupted_img))
        key = (self.site, self.by, self.method, self.direction)
        if not self._recompute(key, dict(zip(("site", "by", "method", "direction"), key))):
            self._session = session
            return False
        self._set_quietly({"corrupted_pixels": encode_array(corrupted_img if corrupted_img.ndim == 3 else corrupted_img[0]),
                           "corruption_patches": [int(i) for i in np.flatnonzero(mask)],
                           "corruption_mode": mode, **self._predictions_state()})
        return True

    def _refuse(self, message: str) -> bool:
        self._set_quietly({"status": message, "error": message})
        return False

    # ------------------------------------------------------------------------------------------
    # saving
    def _prepare_save(self) -> None:
        """Every cell's predictions for the page, when an exact sweep of this size is allowed."""
        session = self._session
        if session is None or session.readout is None or self._table_has() or not session.keeps_predictions(self.by):
            return
        sweep = session.sweep((self.site, self.by, "exact", self.direction))
        self._set_quietly({**tables_state(sweep.cell_top_indices, sweep.cell_top_probs, len(session.names)),
                           "status": "", "progress": 0.0})

    def _saved_state(self, state: dict[str, Any]) -> dict[str, Any]:
        state = dict(state, interactive=False, note=SAVED_NOTE, status="", error="", progress=0.0)
        if not self._table_has():
            state["predictions_note"] = self._offline_note()
        return state

    def _offline_note(self) -> str:
        session = self._session
        if session is None:
            return self.predictions_note
        if session.readout is None:
            return "no class read-out (CLIP without prompts=): no predictions"
        n = len(self.layer_indices) * int(np.prod(self._cell_shape()))
        return (f"predictions were precomputed only for the cell selected when saving "
                f"({n} cells exceed max_precomputed_cells={session.max_cells})")

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
        elif self._session is not None and self._session.readout is not None:
            patched = self._predict_cell(lp, cell)
        return {"clean": rows(self.clean_top), "corrupted": rows(self.corrupted_top), "patched": rows(patched)}
