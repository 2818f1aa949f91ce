"""A patching session: one clean / corrupted pair, its readout, and every sweep run on it.

:class:`PatchingSession` is what an interactive patching view needs beyond :func:`~.patching.patch`: the
pixels of the pair, the class read-out of the patched runs (top-k predictions), the sweeps already run
(cached by setting, so switching back is instant), and one patched run on demand for a clicked cell. It holds
no widget state: :class:`~prisma_widgets.PatchingHeatmap` keeps traits and observers, and swaps in a new
session when the user paints a new corruption (the old one stays if the new sweep fails).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..validate import check_int, check_strings
from .patching import BY, GROUPS, SITES, PatchingResult, patch, run_patched
from .readout import Readout, needs_prompts

if TYPE_CHECKING:
    from ..hooked.model import HookedViT

#: (site, by, method, direction): one sweep's setting
SweepKey = tuple[str, str, str, str]


def allowed_by(site: str) -> list[str]:
    """The ``by`` values that apply to a site (``head`` needs a per-head site: ``z`` or ``pattern``; ``frame``
    and ``tube``, position sets, a site with positions)."""
    layout = SITES[site][1]
    return [b for b, axes in BY.items() if set(axes) <= set(layout)] + (list(GROUPS) if "position" in layout else [])


def top_k_rows(probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Descending top-k along the last axis (ties: the lower index first).

    >>> top_k_rows(np.array([[0.1, 0.5, 0.4]]), 2)
    (array([[1, 2]]), array([[0.5, 0.4]]))
    """
    order = np.argsort(-probs, axis=-1, kind="stable")[..., :k]
    return order, np.take_along_axis(probs, order, -1)


@dataclass
class Sweep:
    """One sweep's result, and every cell's patched top-k predictions when they were kept."""

    result: PatchingResult
    cell_top_indices: np.ndarray | None = None  # [layers, cells, k]
    cell_top_probs: np.ndarray | None = None  # [layers, cells, k]


class PatchingSession:
    """The pair, the readout and the sweeps of one interactive patching view.

    Args:
        model: a :class:`~prisma_widgets.HookedViT`.
        clean, corrupted: the two runs' pixels, ``[1, 3, H, W]`` each (``model.to_pixels``).
        metric: as for :func:`~.patching.patch` (default: clean-top minus corrupted-top logit).
        layers: model layer indices to sweep (default all).
        labels: display names of the classes (default: the model's labels, or the prompts).
        prompts: image-text models only: the texts the patched runs are read out against (without them
            there are no predictions, only effects).
        top_k: predictions kept per run; ``max_precomputed_cells``: exact sweeps over at most this many
            (layer, cell) pairs keep every cell's predictions (they come free with the patched outputs).

    Example:
        >>> import prisma_widgets as pw
        >>> model = pw.load("mouse-vit")
        >>> (clean, other), _ = pw.zoo.shapes(2, seed=1)
        >>> session = PatchingSession(model, model.to_pixels(clean), model.to_pixels(other))
        >>> sweep = session.sweep(("resid_pre", "position", "exact", "denoise"))
        >>> sweep.result.values.shape, sweep.cell_top_indices.shape     # [layer, position], [layer, cell, k]
        (torch.Size([4, 65]), (4, 65, 5))
    """

    def __init__(
        self,
        model: HookedViT,
        clean: torch.Tensor,
        corrupted: torch.Tensor,
        *,
        metric: Callable[[torch.Tensor], torch.Tensor] | None = None,
        layers: Sequence[int] | None = None,
        labels: Sequence[str] | None = None,
        prompts: Sequence[str] | None = None,
        top_k: int = 5,
        max_precomputed_cells: int = 4096,
    ) -> None:
        self.model = model
        self.clean, self.corrupted = clean, corrupted
        self.metric = metric
        self.layers = None if layers is None else list(layers)
        top_k = check_int(top_k, "top_k", at_least=1, example=5)
        self.max_cells = check_int(max_precomputed_cells, "max_precomputed_cells", at_least=0, example=4096)
        self.labels = None if labels is None else [str(x) for x in labels]
        self.prompts = None if prompts is None else check_strings(prompts, "prompts")
        self.readout, self.names = self._make_readout()
        # no more predictions than there are classes (or prompts) to predict
        self.top_k = min(top_k, len(self.names)) if self.names else top_k
        self._sweeps: dict[SweepKey, Sweep] = {}

    def _make_readout(self) -> tuple[Readout | None, list[str]]:
        model, labels, prompts = self.model, self.labels, self.prompts
        if needs_prompts(model) or model.cfg.readout == "none":
            if not prompts:
                return None, []
            readout = Readout(model, prompts)
            names = list(labels) if labels is not None else list(readout.names)
            if len(names) != readout.n_classes:
                raise ValueError(f"{len(names)} labels for {readout.n_classes} prompts; pass one label per prompt")
            return readout, names
        readout = Readout(model, prompts)  # refuses prompts for a classifier
        names = labels if labels is not None else readout.names
        if len(names) != readout.n_classes:
            raise ValueError(f"{len(names)} labels for {readout.n_classes} classes; pass one label per class "
                             "(or labels=None for the model's own)")
        return readout, [str(n) for n in names]

    def with_pair(self, clean: torch.Tensor, corrupted: torch.Tensor) -> PatchingSession:
        """A session over a new pair, with the same settings and readout (and no sweeps yet)."""
        other = PatchingSession.__new__(PatchingSession)
        other.__dict__.update(self.__dict__)
        other.clean, other.corrupted = clean, corrupted
        other._sweeps = {}
        return other

    # ----- predictions -----
    def probabilities(self, outputs: torch.Tensor) -> np.ndarray:
        """Class (or prompt) probabilities ``[n, classes]`` of model outputs ``[n, d_output]``."""
        if self.readout is None:
            raise ValueError("no class read-out: an image-text model needs prompts=[...] for predictions")
        return self.readout.scores(outputs.float()).softmax(-1).double().cpu().numpy()

    def run_predictions(self) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
        """Top-k of the clean and of the corrupted run (``{}`` each without a readout)."""
        if self.readout is None:
            return {}, {}
        with torch.no_grad():
            probs = self.probabilities(self.model(torch.cat([self.clean, self.corrupted])))
        idx, p = top_k_rows(probs, self.top_k)
        return ({"indices": idx[0].tolist(), "probs": p[0].tolist()},
                {"indices": idx[1].tolist(), "probs": p[1].tolist()})

    def predict_cell(self, site: str, by: str, direction: str, layer: int, cell: int) -> tuple[list[int], list[float]]:
        """Top-k of ONE patched run (one full forward with one hook): ``(indices, probabilities)``."""
        out = run_patched(self.model, self.clean, self.corrupted, site, by, layer=layer, cell=cell, direction=direction)
        idx, p = top_k_rows(self.probabilities(out), self.top_k)
        return idx[0].tolist(), p[0].tolist()

    def explain_failure(self, err: Exception) -> str:
        """What a view says when a sweep on this pair fails: what happened and what to do, in the view's terms.

        The engine's advice names ``pw.corrupt(...)``; in a view the fix is a mode or more painted patches.
        """
        if isinstance(err, ValueError) and "same top class" in str(err):
            clean_top, _ = self.run_predictions()
            label = ""
            if clean_top.get("indices"):
                label = f" ({self.names[clean_top['indices'][0]]!r})"
            return (f"Not run: the corrupted image gets the clean image's top class{label}, so there is no effect to "
                    "patch back. Paint all of the object's patches, or corrupt by 'swap' (the painted patches of the "
                    "corrupted image). The result shown is the previous one.")
        return f"Could not run the sweep: {err}. The result shown is the previous one."

    # ----- sweeps -----
    def n_cells(self, by: str) -> int:
        cfg = self.model.cfg
        return {"position": cfg.n_tokens, "head": cfg.n_heads, "head_position": cfg.n_tokens * cfg.n_heads,
                "layer": 1, "frame": cfg.frames, "tube": cfg.grid[0] * cfg.grid[1]}[by]

    def n_layers(self) -> int:
        return self.model.cfg.n_layers if self.layers is None else len(self.layers)

    def keeps_predictions(self, by: str) -> bool:
        """Whether an exact sweep ``by`` keeps every cell's predictions (small enough, and a readout)."""
        return self.readout is not None and self.n_layers() * self.n_cells(by) <= self.max_cells

    def sweep(self, key: SweepKey, on_progress: Callable[[int, int], None] | None = None) -> Sweep:
        """Run (or recall) the sweep ``key = (site, by, method, direction)`` on the pair."""
        if key in self._sweeps:
            return self._sweeps[key]
        site, by, method, direction = key
        keep = method == "exact" and self.keeps_predictions(by)
        tables: dict[str, np.ndarray] = {}
        if keep:
            shape = (self.n_layers(), self.n_cells(by), self.top_k)
            tables["indices"], tables["probs"] = np.zeros(shape, np.int64), np.zeros(shape, np.float64)

        def collect(position: int, lo: int, out: torch.Tensor) -> None:
            idx, p = top_k_rows(self.probabilities(out[:, 0]), self.top_k)
            tables["indices"][position, lo : lo + len(idx)] = idx
            tables["probs"][position, lo : lo + len(idx)] = p

        result = patch(self.model, self.clean, self.corrupted, metric=self.metric, site=site, by=by,
                       direction=direction, method=method, layers=self.layers, progress=False,
                       on_progress=on_progress, on_chunk=collect if keep else None)
        sweep = Sweep(result, tables.get("indices"), tables.get("probs"))
        self._sweeps[key] = sweep
        return sweep
