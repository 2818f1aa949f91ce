"""The synced state of a :class:`~prisma_widgets.PatchingHeatmap`: choices, axes, and encoders.

Python computes every number; these functions pack a :class:`~prisma_widgets.analysis.PatchingResult`, the
patched runs' predictions and the two images into the traits the view reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._base import encode_array, to_numpy
from ._layout import as_uint8_image, changed_patches, default_token_labels, infer_layout

if TYPE_CHECKING:
    from ..analysis.patching import PatchingResult

SITES = ("resid_pre", "resid_mid", "attn_out", "mlp_out", "z", "pattern")
BYS = ("position", "head", "head_position", "layer", "frame", "tube")
METHODS = ("exact", "attribution")
DIRECTIONS = ("denoise", "noise")
NORMALIZATIONS = ("global", "unit")
CORRUPTION_MODES = ("mask", "blur", "noise", "swap")

#: the cell axes of each ``by`` (after the layer axis), as :mod:`prisma_widgets.analysis.patching` orders them
#: (``frame``: every patch of one token frame; ``tube``: one patch through every frame; see position_groups)
CELL_AXES = {"position": ("position",), "head": ("head",), "head_position": ("position", "head"), "layer": (),
             "frame": ("frame",), "tube": ("tube",)}
#: keys of ``selected`` for each ``by``
SELECTION_KEYS = {"position": ("layer", "position"), "head": ("layer", "head"),
                  "head_position": ("layer", "position", "head"), "layer": ("layer",),
                  "frame": ("layer", "frame"), "tube": ("layer", "tube")}

#: at most this many (layer, cell) pairs get precomputed predictions (for a saved page)
DEFAULT_MAX_PRECOMPUTED = 4096

SAVED_NOTE = ("saved page, no kernel: site, by, method, direction and Run need the kernel; "
              "clicking cells, colours and PNG export work")


def _index_dtype(n: int) -> str:
    return "uint8" if n <= 256 else "uint16" if n <= 65536 else "uint32"


def result_state(result: PatchingResult) -> dict[str, Any]:
    """The traits of a :class:`~prisma_widgets.analysis.PatchingResult` (its values exactly)."""
    values = np.asarray(to_numpy(result.values), dtype=np.float32)
    axes = tuple(result.axes)
    by = result.by
    if axes != ("layer", *CELL_AXES[by]):
        raise ValueError(f"a by={by!r} result must have axes {('layer', *CELL_AXES[by])}; got {axes}")
    labels = result.labels
    state: dict[str, Any] = {
        "values": encode_array(values, "float32"),
        "axes": list(axes),
        "layer_indices": [int(x) for x in labels.get("layer", range(values.shape[0]))],
        "site": result.site,
        "by": by,
        "method": result.method,
        "direction": result.direction,
        "clean_metric": float(result.clean_metric),
        "corrupted_metric": float(result.corrupted_metric),
    }
    if "position" in labels:
        state["token_labels"] = [str(t) for t in labels["position"]]
    if "head" in labels:
        state["head_labels"] = [str(h) for h in labels["head"]]
    return state


def tables_state(indices: np.ndarray | None, probs: np.ndarray | None, n_classes: int) -> dict[str, Any]:
    """Every cell's patched top-k, as the view reads them (``{}`` when the sweep did not keep them)."""
    if indices is None or probs is None:
        return {"cell_top_indices": {}, "cell_top_probs": {}}
    n = n_classes or int(indices.max(initial=0)) + 1
    return {"cell_top_indices": encode_array(indices, _index_dtype(n)), "cell_top_probs": encode_array(probs, "float32")}


def display_state(
    result: PatchingResult,
    clean_image: Any,
    corrupted_image: Any,
    *,
    grid: Sequence[int] | None,
    n_prefix_tokens: int | None,
    class_names: Sequence[str] | None,
    clean_top: dict[str, list[float]] | None,
    corrupted_top: dict[str, list[float]] | None,
) -> dict[str, Any]:
    """The state of a heatmap that only displays a result (no model: nothing recomputes)."""
    state = result_state(result)
    if "position" in result.axes:
        g, prefix = infer_layout(len(state["token_labels"]), grid, n_prefix_tokens)
        state["grid"], state["n_prefix_tokens"] = [g[0], g[1]], prefix
    elif grid is not None:
        state["grid"], state["n_prefix_tokens"] = [int(grid[0]), int(grid[1])], int(n_prefix_tokens or 0)
    elif result.by == "tube":  # the tubes are the grid's patches, named "r{r}c{c}" row by row
        last = str(result.labels.get("tube", ["r0c0"])[-1])
        rows, cols = (int(x) + 1 for x in last[1:].split("c"))
        state["grid"] = [rows, cols]
    if result.by == "frame":  # one column per token frame
        state["frames"] = int(np.asarray(to_numpy(result.values)).shape[1])
    if "position" in result.axes and not state.get("token_labels"):
        state["token_labels"] = default_token_labels(tuple(state["grid"]), state["n_prefix_tokens"])
    clean = as_uint8_image(clean_image)
    corrupted = as_uint8_image(corrupted_image)
    state["image_pixels"] = encode_array(clean) if clean is not None else {}
    state["corrupted_pixels"] = encode_array(corrupted) if corrupted is not None else {}
    if clean is not None and corrupted is not None:
        state["corruption_patches"] = changed_patches(clean, corrupted, state.get("grid", [1, 1]))
    state["class_names"] = [str(c) for c in class_names] if class_names is not None else []
    state["clean_top"] = dict(clean_top or {})
    state["corrupted_top"] = dict(corrupted_top or {})
    state["interactive"] = False
    state["note"] = "built from a result without a model: the controls that recompute need model=..."
    state["predictions_note"] = "no model: patched predictions are not available"
    return state
