"""Activation patching, batched: many patched variants per forward pass, each starting at its own layer.

For the variants patched at layer ``l`` the base run's residual stream entering block ``l`` is reused, so
only blocks ``l .. L-1`` run. Variants are stacked along the batch axis in chunks sized to a memory budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..hooked.config import layer_index, layer_list
from ..validate import check_int

if TYPE_CHECKING:
    from ..hooked.model import HookedViT

SITES = {
    # site: (hook suffix, activation layout after the batch axis)
    "resid_pre": ("hook_resid_pre", ("position", "d_model")),
    "resid_mid": ("hook_resid_mid", ("position", "d_model")),
    "attn_out": ("hook_attn_out", ("position", "d_model")),
    "mlp_out": ("hook_mlp_out", ("position", "d_model")),
    "z": ("attn.hook_z", ("position", "head", "d_head")),
    "pattern": ("attn.hook_pattern", ("head", "position", "key")),
}
# by -> the named activation axes patched one cell at a time, in the result's axis order
BY = {"position": ("position",), "head": ("head",), "head_position": ("position", "head"), "layer": ()}
#: position sets of a clip, patched a set at a time: every patch of one token frame, or one patch through
#: every frame (a tube); an image is one frame, so its "frame" is every patch and its tubes single patches
GROUPS = {"frame": "frame", "tube": "tube"}

Metric = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class PatchingResult:
    """Normalised patching effects with named axes: 0 is the corrupted run, 1 the clean run.

    ``values`` has axes ``axes`` (for example ``("layer", "position")``); ``labels[axis]`` names the ticks.
    """

    values: torch.Tensor
    axes: tuple[str, ...]
    labels: dict[str, list[str]]
    site: str
    by: str
    direction: str
    method: str
    clean_metric: float
    corrupted_metric: float
    extras: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        shape = " x ".join(f"{a}={n}" for a, n in zip(self.axes, self.values.shape))
        return f"PatchingResult({self.method} {self.direction}, site={self.site!r}, by={self.by!r}: {shape})"


def _patched_dims(layout: tuple[str, ...], by: str) -> tuple[int, ...]:
    """Indices (into the activation's axes after batch) that ``by`` patches one cell at a time."""
    return tuple(layout.index(axis) for axis in BY.get(by, ("position",)))


def position_groups(cfg: Any, by: str) -> list[list[int]] | None:
    """The token positions each variant of ``by="frame"`` / ``"tube"`` patches (``None`` for the other ``by``).

    Example:
        >>> import prisma_widgets as pw
        >>> cfg = pw.load("mouse-video").cfg            # 4 token frames of 4 x 4 patches
        >>> position_groups(cfg, "frame")[1][:3], position_groups(cfg, "tube")[5]
        ([16, 17, 18], [5, 21, 37, 53])
    """
    if by == "frame":
        return [cfg.frame_tokens(t) for t in range(cfg.frames)]
    if by == "tube":
        rows, cols = cfg.grid
        return [cfg.tube_tokens(r, c) for r in range(rows) for c in range(cols)]
    return None


def _variant_masks(shape: tuple[int, ...], dims: tuple[int, ...], lo: int, hi: int,
                   groups: list[list[int]] | None = None) -> torch.Tensor:
    """Boolean masks ``[hi - lo, *shape]``: what variants ``lo .. hi-1`` patch (built per chunk, never all at once).
    With ``groups``, variant ``v`` patches the positions ``groups[v]`` along the one axis in ``dims``."""
    n = hi - lo
    mask = torch.zeros(n, *shape, dtype=torch.bool)
    if groups is not None:
        for j in range(n):
            index: list[Any] = [j] + [slice(None)] * len(shape)
            index[1 + dims[0]] = torch.as_tensor(groups[lo + j])
            mask[tuple(index)] = True
        return mask
    if not dims:
        mask[:] = True
        return mask
    coords = torch.unravel_index(torch.arange(lo, hi), tuple(shape[d] for d in dims))
    index: list[Any] = [torch.arange(n)] + [slice(None)] * len(shape)
    for d, c in zip(dims, coords):
        index[1 + d] = c
    mask[tuple(index)] = True
    return mask


def default_metric(model: HookedViT, clean_out: torch.Tensor, corrupted_out: torch.Tensor) -> Metric:
    """Logit difference between the clean and the corrupted top class; for models whose output is an embedding
    (CLIP, headless), the cosine to the clean run's output minus the cosine to the corrupted run's."""
    if model.cfg.n_classes is None:
        clean_dir = torch.nn.functional.normalize(clean_out, dim=-1)
        corrupted_dir = torch.nn.functional.normalize(corrupted_out, dim=-1)

        def cosine_difference(out: torch.Tensor) -> torch.Tensor:
            out = torch.nn.functional.normalize(out, dim=-1)
            return ((out * clean_dir).sum(-1) - (out * corrupted_dir).sum(-1)).mean()

        return cosine_difference
    clean_top = clean_out.argmax(-1, keepdim=True)
    corrupted_top = corrupted_out.argmax(-1, keepdim=True)
    if torch.equal(clean_top, corrupted_top):
        raise ValueError(
            "the clean and corrupted images get the same top class, so the default logit-difference metric is 0 "
            "for both: corrupt more (pw.corrupt(image, patches, mode='swap', other=...)) or pass metric=..."
        )

    def logit_difference(out: torch.Tensor) -> torch.Tensor:
        return (out.gather(-1, clean_top) - out.gather(-1, corrupted_top)).mean()

    return logit_difference


def _axis_labels(model: HookedViT, axes: tuple[str, ...], layers: list[int]) -> dict[str, list[str]]:
    labels: dict[str, list[str]] = {"layer": [str(l) for l in layers]}
    if "position" in axes:
        labels["position"] = model.token_labels()
    if "head" in axes:
        labels["head"] = [f"H{h}" for h in range(model.cfg.n_heads)]
    if "frame" in axes:
        labels["frame"] = [f"t{t}" for t in range(model.cfg.frames)]
    if "tube" in axes:
        labels["tube"] = [f"r{r}c{c}" for r in range(model.cfg.grid[0]) for c in range(model.cfg.grid[1])]
    return labels


def patch(
    model: HookedViT,
    clean: Any,
    corrupted: Any,
    metric: Metric | None = None,
    site: str = "resid_pre",
    by: str = "position",
    direction: str = "denoise",
    method: str = "exact",
    layers: Sequence[int] | None = None,
    memory_budget: int | None = None,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
    on_chunk: Callable[[int, int, torch.Tensor], None] | None = None,
) -> PatchingResult:
    """Patch activations between a clean and a corrupted run; return the normalised effect per cell.

    ``direction="denoise"`` puts clean activations into the corrupted run, ``"noise"`` the reverse. The metric
    (default: clean-top minus corrupted-top logit) is normalised so 0 is the corrupted run and 1 the clean run.
    ``method="attribution"`` estimates the same cells from one forward and one backward pass.
    ``by`` picks the cells: ``"position"``, ``"head"``, ``"head_position"``, ``"layer"``, or a clip's position sets
    ``"frame"`` (every patch of one token frame) and ``"tube"`` (one patch through every frame; see
    :func:`position_groups`).
    ``memory_budget`` (bytes) sizes the chunks of variants run in one forward: half the free GPU memory by
    default, 128 MB on CPU (where smaller chunks run faster).
    ``on_progress(done, total)`` is called after every chunk of variants (and once at the end); with
    ``method="exact"``, ``on_chunk(layer_position, first_variant, outputs)`` receives each chunk's patched
    outputs ``[variants, batch, ...]`` (variant ``v`` of layer position ``i`` is the flat cell ``v`` of
    ``values[i]``).

    Example:
        >>> import prisma_widgets as pw
        >>> model = pw.load("mouse-vit")
        >>> images, labels = pw.zoo.shapes(2, seed=0)
        >>> corrupted = pw.corrupt(images[0], [(r, c) for r in range(8) for c in range(8)], mode="mask", model=model)
        >>> result = pw.analysis.patch(model, images[0], corrupted, site="z", by="head", progress=False)
        >>> result.values.shape    # [layer, head]
        torch.Size([4, 4])
    """
    if site not in SITES:
        raise ValueError(f"site must be one of {sorted(SITES)}; got {site!r}")
    suffix, layout = SITES[site]
    allowed = [b for b, axes in BY.items() if set(axes) <= set(layout)]
    allowed += list(GROUPS) if "position" in layout else []
    if by not in allowed:
        raise ValueError(f"by={by!r} does not apply to site={site!r}; choose one of {allowed}")
    if direction not in ("denoise", "noise"):
        raise ValueError(f"direction must be 'denoise' or 'noise'; got {direction!r}")
    if method not in ("exact", "attribution"):
        raise ValueError(f"method must be 'exact' or 'attribution'; got {method!r}")
    cfg = model.cfg
    layers = layer_list(layers, cfg.n_layers) or list(range(cfg.n_layers))
    memory_budget = check_int(memory_budget, "memory_budget", at_least=1, example=128 << 20, none_ok=True)
    clean_px, corrupted_px = model.to_pixels(clean), model.to_pixels(corrupted)
    if clean_px.shape != corrupted_px.shape:
        raise ValueError(f"clean and corrupted batches differ in shape: {list(clean_px.shape)} vs {list(corrupted_px.shape)}")
    base_px, source_px = (corrupted_px, clean_px) if direction == "denoise" else (clean_px, corrupted_px)
    names = [f"blocks.{l}.{suffix}" for l in layers]

    with torch.no_grad():
        source_out, source_cache = model.run_with_cache(source_px, names_filter=names)
        base_out, base_cache = model.run_with_cache(base_px, names_filter=[f"blocks.{l}.hook_resid_pre" for l in layers])
    clean_out, corrupted_out = (source_out, base_out) if direction == "denoise" else (base_out, source_out)
    metric = metric or default_metric(model, clean_out, corrupted_out)
    with torch.no_grad():
        clean_m, corrupted_m = float(metric(clean_out)), float(metric(corrupted_out))
    if not (math.isfinite(clean_m) and math.isfinite(corrupted_m)):
        raise ValueError(f"the metric is not finite (clean {clean_m}, corrupted {corrupted_m}); pass a metric that "
                         "returns a finite number for both runs")
    if abs(clean_m - corrupted_m) < 1e-12:
        raise ValueError("the metric is the same on the clean and the corrupted run: nothing to normalise against")

    def normalise(m: torch.Tensor) -> torch.Tensor:
        return (m - corrupted_m) / (clean_m - corrupted_m)

    act_shape = tuple(source_cache[names[0]].shape[1:])
    dims = _patched_dims(layout, by)
    groups = position_groups(cfg, by)
    cell_axes = BY.get(by, (by,))
    n_variants = (len(groups) if groups is not None
                  else int(torch.tensor([act_shape[d] for d in dims]).prod()) if dims else 1)
    axes = ("layer", *cell_axes)
    labels = _axis_labels(model, axes, layers)
    common = dict(axes=axes, labels=labels, site=site, by=by, direction=direction,
                  clean_metric=clean_m, corrupted_metric=corrupted_m)

    if method == "attribution":
        change = _attribution(model, base_px, source_cache, names, dims, metric, groups)
        base_m = corrupted_m if direction == "denoise" else clean_m
        values = normalise(base_m + change).float()  # first order: patched metric = base metric + change
        if on_progress is not None:
            on_progress(len(layers) * n_variants, len(layers) * n_variants)
        return PatchingResult(values=values.reshape(len(layers), *_cell_shape(cell_axes, cfg)), method=method, **common)

    batch = clean_px.shape[0]
    chunk = _chunk_size(model, batch, act_shape, memory_budget, n_variants)
    rows: list[list[float]] = []
    bar = _progress(len(layers) * n_variants, progress, f"patching {site} by {by}")
    done = 0
    try:
        for position, (layer, name) in enumerate(zip(layers, names)):
            start = base_cache[f"blocks.{layer}.hook_resid_pre"]
            source = source_cache[name]
            row: list[float] = []
            for lo in range(0, n_variants, chunk):
                mask = _variant_masks(act_shape, dims, lo, min(lo + chunk, n_variants), groups).to(source.device)
                n = mask.shape[0]

                def put_source(act: torch.Tensor, hook: Any, mask: torch.Tensor = mask, n: int = n) -> torch.Tensor:
                    act = act.view(n, batch, *act.shape[1:])
                    return torch.where(mask.unsqueeze(1), source.unsqueeze(0), act).view(n * batch, *act.shape[2:])

                with torch.no_grad():
                    repeated = start.repeat(n, *([1] * (start.ndim - 1)))
                    out = model.run_with_hooks(repeated, fwd_hooks=[(name, put_source)], start_at_layer=layer)
                    out = out.view(n, batch, *out.shape[1:])
                    # one host transfer per chunk, not one per variant
                    row += torch.stack([metric(out[v]) for v in range(n)]).double().cpu().tolist()
                    if on_chunk is not None:
                        on_chunk(position, lo, out)
                bar.update(n)
                done += n
                if on_progress is not None:
                    on_progress(done, len(layers) * n_variants)
            rows.append(row)
    finally:
        bar.close()
    values = normalise(torch.tensor(rows, dtype=torch.float64))
    return PatchingResult(values=values.reshape(len(layers), *_cell_shape(cell_axes, cfg)).float(), method=method, **common)


def run_patched(
    model: HookedViT,
    clean: Any,
    corrupted: Any,
    site: str,
    by: str,
    layer: int,
    cell: int = 0,
    direction: str = "denoise",
) -> torch.Tensor:
    """The output of ONE patched run, by a plain full forward with one hook (no batching, no prefix reuse).

    ``cell`` is the flat index of the patched cell within a layer, as in ``patch(...).values[layer]``
    flattened (for ``by="head_position"``: ``position * n_heads + head``; for ``by="layer"``: 0).

    Example:
        >>> import prisma_widgets as pw
        >>> model = pw.load("mouse-vit")
        >>> (clean, other), _ = pw.zoo.shapes(2, seed=0)
        >>> out = run_patched(model, clean, other, "resid_pre", "position", layer=2, cell=5)
        >>> out.shape              # the patched run's output: [1, classes]
        torch.Size([1, 8])
    """
    if site not in SITES:
        raise ValueError(f"site must be one of {sorted(SITES)}; got {site!r}")
    suffix, layout = SITES[site]
    if not (by in BY and set(BY[by]) <= set(layout)) and not (by in GROUPS and "position" in layout):
        raise ValueError(f"by={by!r} does not apply to site={site!r}")
    if direction not in ("denoise", "noise"):
        raise ValueError(f"direction must be 'denoise' or 'noise'; got {direction!r}")
    cell = check_int(cell, "cell", at_least=0, example=0)
    clean_px, corrupted_px = model.to_pixels(clean), model.to_pixels(corrupted)
    base_px, source_px = (corrupted_px, clean_px) if direction == "denoise" else (clean_px, corrupted_px)
    name = f"blocks.{layer_index(layer, model.cfg.n_layers)}.{suffix}"
    with torch.no_grad():
        _, cache = model.run_with_cache(source_px, names_filter=[name])
        source = cache[name]
        dims = _patched_dims(layout, by)
        groups = position_groups(model.cfg, by)
        n_cells = (len(groups) if groups is not None
                   else int(torch.tensor([source.shape[1 + d] for d in dims]).prod()) if dims else 1)
        if not 0 <= int(cell) < n_cells:
            raise ValueError(f"cell must be in [0, {n_cells}) for by={by!r}; got {cell}")
        mask = _variant_masks(tuple(source.shape[1:]), dims, int(cell), int(cell) + 1, groups)[0].to(source.device)

        def put_source(act: torch.Tensor, hook: Any) -> torch.Tensor:
            return torch.where(mask, source, act)

        return model.run_with_hooks(base_px, fwd_hooks=[(name, put_source)])


def _cell_shape(cell_axes: tuple[str, ...], cfg: Any) -> tuple[int, ...]:
    sizes = {"position": cfg.n_tokens, "head": cfg.n_heads, "frame": cfg.frames, "tube": cfg.grid[0] * cfg.grid[1]}
    return tuple(sizes[a] for a in cell_axes)


def _chunk_size(model: HookedViT, batch: int, act_shape: tuple[int, ...], memory_budget: int | None, n_variants: int) -> int:
    """Variants per forward: what fits the budget, counting the widest activations of one block."""
    cfg = model.cfg
    if memory_budget is None:
        if model.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(model.device)
            memory_budget = int(free * 0.5)
        else:
            # CPU: smaller chunks stay closer to the caches; 128 MB (about 40 ViT-Ti/16 variants) swept a
            # 12 x 197 grid in 21 s against 25 s with 1 GB (benchmarks/patching.py, 2 cores)
            memory_budget = 1 << 27
    bytes_per = torch.finfo(model.dtype).bits // 8
    per_variant = batch * bytes_per * cfg.n_tokens * (4 * (cfg.d_mlp or 4 * cfg.d_model) + 2 * cfg.n_heads * cfg.n_tokens)
    per_variant += int(torch.tensor(act_shape).prod())  # the variant's mask
    return max(1, min(n_variants, memory_budget // max(per_variant, 1)))


def _progress(total: int, enabled: bool, description: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, disable=not enabled, unit="variant")


def _attribution(
    model: HookedViT, base_px: torch.Tensor, source_cache: Any, names: list[str], dims: tuple[int, ...], metric: Metric,
    groups: list[list[int]] | None = None,
) -> torch.Tensor:
    """Gradient times activation difference, summed over the cells each variant would patch: ``[layer, variant]``."""
    kept: dict[str, torch.Tensor] = {}

    def keep(act: torch.Tensor, hook: Any) -> torch.Tensor:
        # returned as a new tensor, so it is the one the rest of the pass uses: a hook on a transposed
        # view (hook_z) that returns nothing leaves the view out of the graph, and its grad would be None
        act = act.clone()
        act.retain_grad()
        kept[hook.name] = act
        return act

    with torch.enable_grad():
        pixels = base_px.detach().clone().requires_grad_(True)  # a graph even when parameters are frozen
        out = model.run_with_hooks(pixels, fwd_hooks=[(names, keep)])
        metric(out).backward()
    rows = []
    for name in names:
        act = kept[name]
        contribution = ((source_cache[name] - act.detach()) * act.grad).sum(0)  # over the batch, as the metric is
        others = [d for d in range(contribution.ndim) if d not in dims]
        summed = contribution.sum(dim=others) if others else contribution
        if dims:  # summed keeps the patched axes in ascending order; put them in the result's order
            order = sorted(dims)
            summed = summed.permute([order.index(d) for d in dims])
        if groups is not None:  # a position set's estimate: the sum over its positions
            summed = torch.stack([summed[g].sum() for g in groups])
        rows.append(summed.reshape(-1))
    return torch.stack(rows).double().cpu()
