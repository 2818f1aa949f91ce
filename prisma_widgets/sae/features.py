"""Feature statistics of a sparse autoencoder over a set of images, in one batched pass.

``pw.feature_stats(model, sae, images, hook)`` runs the images through the model (stopping after the
hooked block), encodes the hook's activations with the SAE and keeps, per feature:

* ``frequency``: the fraction of token rows where it fires (activation > 0);
* ``mean_activation``: its mean activation over the rows where it fires; ``max_activation``;
* the top-activating images (each image counted once, ranked by its largest activation over its tokens),
  the token where that maximum sits (the (image, patch) pair), and the feature's activation on every
  token of those images (``top_maps``, the patch activation maps);
* ``sample_*``: a uniform random sample (priority sampling, seeded) of the images where it fires, with
  their maxima and maps; sorted by activation and cut into equal groups they are the quantile samples;
* ``class_effects`` ``[d_sae, classes]``: the direct effect of one unit of the feature (its decoder row)
  on the class logits through the readout, with the final norm linearised: its scale frozen at the mean
  over the hooked token rows and its centring applied (direct logit attribution). For a hook on the
  residual stream of the last block with token pooling this is the exact first-order effect up to the
  norm's radial term. For CLIP the same linearised path leads through ``ln_post`` and ``proj`` to the
  cosine with each prompt's text embedding (times ``logit_scale``), the image-embedding norm frozen
  at its mean over the hooked rows.

Memory is ``O(d_sae x (top_k + n_samples) x tokens)``, independent of the number of images.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TYPE_CHECKING

import numpy as np
import torch

from ..analysis.readout import Readout, can_read_out, needs_prompts
from ..files import (atomic_save_safetensors, atomic_write_json, check_writable, read_json, read_safetensors,
                     remove_stale_temps)
from ..hooked.capture import capture, check_token_mode, hook_width, stop_layer, token_rows
from ..validate import check_int, check_seed, check_strings
from .checks import STATS_FIX, check_sae_fits_hook, check_sae_like, check_stats_arrays, check_stats_meta
from .source import as_image_source

if TYPE_CHECKING:
    from ..hooked.model import HookedViT

FORMAT = "prisma_widgets.feature_stats"
_RESID_SUFFIXES = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out")
_NO_IMAGE = -1


@dataclass
class FeatureStats:
    """What :func:`feature_stats` measured; arrays are numpy, one row per SAE feature.

    ``top_images[f, j]`` is an image index (``-1``: fewer than ``top_k`` images made the feature fire),
    ``top_tokens[f, j]`` the token of its maximum (a row index within the token mode: with
    ``tokens="patches"`` token ``p`` is patch ``p``, else prefix tokens come first), ``top_values[f, j]``
    that maximum and ``top_maps[f, j, t]`` the activation at every token. ``sample_*`` hold the random
    sample the same way; :meth:`quantile_groups` sorts it into groups.
    """

    hook: str
    model: str | None
    tokens: str
    n_images: int
    grid: tuple[int, int]
    n_prefix_tokens: int  # prefix tokens among the rows of one image (0 for tokens="patches")
    frequency: np.ndarray  # [F] float32
    mean_activation: np.ndarray  # [F] float32, over the rows where the feature fires
    max_activation: np.ndarray  # [F] float32
    top_images: np.ndarray  # [F, K] int64
    top_tokens: np.ndarray  # [F, K] int64
    top_values: np.ndarray  # [F, K] float32
    top_maps: np.ndarray  # [F, K, T] float16
    sample_images: np.ndarray  # [F, S] int64
    sample_values: np.ndarray  # [F, S] float32
    sample_maps: np.ndarray  # [F, S, T] float16
    class_effects: np.ndarray | None = None  # [F, C] float32
    class_names: list[str] | None = None
    readout_note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def d_sae(self) -> int:
        return int(self.frequency.shape[0])

    @property
    def tokens_per_image(self) -> int:
        return int(self.top_maps.shape[-1])

    def top_pairs(self, feature: int) -> list[tuple[int, int, float]]:
        """``(image, token, activation)`` of the feature's top images, strongest first."""
        keep = self.top_images[feature] >= 0
        return [
            (int(i), int(t), float(v))
            for i, t, v in zip(self.top_images[feature][keep], self.top_tokens[feature][keep], self.top_values[feature][keep])
        ]

    def quantile_groups(self, feature: int, n_groups: int = 4) -> list[dict[str, Any]]:
        """The sampled images where ``feature`` fires, weakest to strongest, in ``n_groups`` equal groups.

        Each group: ``{"images": [...], "values": [...], "maps": [n, T], "low": v, "high": v}``.
        """
        n_groups = check_int(n_groups, "n_groups", at_least=1, example=4)
        keep = np.flatnonzero(self.sample_images[feature] >= 0)
        order = keep[np.argsort(self.sample_values[feature][keep], kind="stable")]
        groups = []
        for part in np.array_split(order, max(1, min(int(n_groups), len(order)))) if len(order) else []:
            vals = self.sample_values[feature][part]
            groups.append({
                "images": self.sample_images[feature][part].tolist(),
                "values": vals.tolist(),
                "maps": self.sample_maps[feature][part].astype(np.float32),
                "low": float(vals.min()),
                "high": float(vals.max()),
            })
        return groups

    def class_effect_extremes(self, feature: int, k: int = 5) -> tuple[list[int], list[float], list[int], list[float]]:
        """``(top classes, their effects, bottom classes, their effects)``; empty without class effects.

        The two lists never share a class: with fewer than ``2 k`` classes the top takes the larger half
        (``ceil(C / 2)``, at most ``k``) and the bottom the rest, both cut from one ordering (ties included).
        """
        k = check_int(k, "k", at_least=1, example=5)
        if self.class_effects is None:
            return [], [], [], []
        e = self.class_effects[feature]
        order = np.argsort(-e, kind="stable")
        n_top = min(int(k), (len(order) + 1) // 2)
        n_bottom = min(int(k), len(order) - n_top)
        top, bottom = order[:n_top], order[::-1][:n_bottom]
        return top.tolist(), e[top].tolist(), bottom.tolist(), e[bottom].tolist()

    # ----- files -----
    _ARRAYS = ("frequency", "mean_activation", "max_activation", "top_images", "top_tokens", "top_values",
               "top_maps", "sample_images", "sample_values", "sample_maps", "class_effects")

    def save(self, path: str | os.PathLike) -> str:
        """Write ``stats.safetensors`` + ``stats.json`` into the folder ``path``; returns the folder."""
        folder = check_writable(os.fspath(path), "feature statistics")
        remove_stale_temps(folder, names=("stats.safetensors", "stats.json"))
        arrays = {k: np.ascontiguousarray(getattr(self, k)) for k in self._ARRAYS if getattr(self, k) is not None}
        atomic_save_safetensors(arrays, os.path.join(folder, "stats.safetensors"), what="feature statistics",
                                framework="numpy")
        meta = {
            "format": FORMAT, "version": 1, "hook": self.hook, "model": self.model, "tokens": self.tokens,
            "n_images": self.n_images, "grid": list(self.grid), "n_prefix_tokens": self.n_prefix_tokens,
            "class_names": self.class_names, "readout_note": self.readout_note, "extra": self.extra,
        }
        atomic_write_json(os.path.join(folder, "stats.json"), meta, what="feature statistics")
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStats:
        """Read a folder written by :meth:`save`."""
        folder = os.fspath(path)
        meta_path, arrays_path = os.path.join(folder, "stats.json"), os.path.join(folder, "stats.safetensors")
        for p in (meta_path, arrays_path):
            if not os.path.exists(p):
                raise FileNotFoundError(f"no {os.path.basename(p)} in {folder!r}: feature statistics are a folder "
                                        "written by FeatureStats.save (pw.feature_stats(model, sae, images).save(...))")
        meta = read_json(meta_path, "feature statistics", STATS_FIX)
        check_stats_meta(meta, meta_path, FORMAT)
        arrays, _ = read_safetensors(arrays_path, "feature statistics", STATS_FIX, framework="numpy")
        check_stats_arrays(arrays, meta, arrays_path)
        return cls(
            hook=meta["hook"], model=meta["model"], tokens=meta["tokens"], n_images=int(meta["n_images"]),
            grid=tuple(meta["grid"]), n_prefix_tokens=int(meta["n_prefix_tokens"]),
            class_names=meta.get("class_names"), readout_note=meta.get("readout_note", ""),
            extra=meta.get("extra") or {},
            **{k: arrays.get(k) for k in cls._ARRAYS},
        )


# --------------------------------------------------------------------------------------------------
# the readout, linearised
# --------------------------------------------------------------------------------------------------
class _Readout:
    """Linear map from a decoder direction at the hook to class scores, the readout's norm scales frozen at
    their means over the hooked rows (:meth:`~prisma_widgets.analysis.readout.Readout.linear_effects`)."""

    def __init__(self, model: HookedViT, hook: str, prompts: Sequence[str] | None) -> None:
        from ..hooked.hook_points import split_name

        self.note = ""
        self.names: list[str] | None = None
        self.readout: Readout | None = None
        self.to_resid: torch.Tensor | None = None  # [d_hook, d_model] for hooks off the residual stream
        self.sums = torch.zeros(4, dtype=torch.float64)  # rows, then the sum of each of the three scales
        layer, rest = split_name(hook)
        on_stream = any(hook.endswith(s) for s in _RESID_SUFFIXES)
        if not on_stream and rest == "mlp.hook_post" and layer is not None:
            weight = model.adapter.mlp_out_weight(layer)
            self.to_resid = weight.detach().float().T if weight is not None else None
            on_stream = weight is not None
        if not on_stream:
            self.note = f"no direct class effect for {hook}: it is not on the residual stream"
            return
        if needs_prompts(model):
            if not prompts:
                labels = model.labels
                if not labels:
                    self.note = "CLIP: pass prompts=[...] to rank prompts by the feature's effect"
                    return
                prompts = [f"a photo of a {c}" for c in labels]
            self.readout = Readout(model, prompts)
            self.note = ("effect on the logit of each prompt: final norm (scale frozen), projection, cosine with the "
                         "text embedding (image-embedding norm frozen) x logit_scale")
        elif can_read_out(model):
            self.readout = Readout(model)
            self.note = ("direct effect on each class logit: final norm (scale frozen, centred), head norm, "
                         "projection (no bias)")
        else:
            self.note = "this model has no classifier head: no class effects"
            return
        self.names = list(self.readout.names)

    @property
    def ok(self) -> bool:
        return self.readout is not None

    def observe(self, rows: torch.Tensor) -> None:
        """Accumulate the norm scales on hooked rows ``[n, d_hook]`` (mapped to the residual stream)."""
        if self.readout is None:
            return
        x = rows.float()
        if self.to_resid is not None:
            x = x @ self.to_resid.to(x.device)
        scales = self.readout.norm_scales(x).double().sum(0).cpu()
        self.sums += torch.cat([torch.tensor([float(x.shape[0])], dtype=torch.float64), scales])

    def scales(self) -> tuple[float, float, float]:
        n = max(float(self.sums[0]), 1.0)
        s1, s2, s3 = (float(v) / n for v in self.sums[1:])
        return s1, s2, s3

    def effects(self, directions: torch.Tensor) -> np.ndarray | None:
        """Class effects ``[F, C]`` of decoder rows ``[F, d_hook]``."""
        if self.readout is None or self.sums[0] == 0:
            return None
        d = directions.detach().float().cpu()
        if self.to_resid is not None:
            d = d @ self.to_resid.cpu()
        return self.readout.linear_effects(d, self.scales()).cpu().numpy().astype(np.float32)


# --------------------------------------------------------------------------------------------------
# the pass
# --------------------------------------------------------------------------------------------------
def _merge_top(
    keys: torch.Tensor, vals: torch.Tensor, imgs: torch.Tensor, toks: torch.Tensor, maps: torch.Tensor,
    new_keys: torch.Tensor, new_vals: torch.Tensor, new_imgs: torch.Tensor, new_toks: torch.Tensor,
    new_maps: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """Keep, per feature, the ``K`` entries with the largest keys among the kept and the new ones.

    Kept: ``[F, K]`` (+ maps ``[F, K, T]``); new: ``[F, B]`` (+ maps ``[F, B, T]``).
    """
    k = keys.shape[1]
    all_keys = torch.cat([keys, new_keys], 1)
    best = all_keys.topk(k, dim=1).indices  # [F, K]

    def pick(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, b], 1).gather(1, best)

    all_maps = torch.cat([maps, new_maps], 1)
    return (
        all_keys.gather(1, best), pick(vals, new_vals), pick(imgs, new_imgs), pick(toks, new_toks),
        all_maps.gather(1, best[..., None].expand(-1, -1, all_maps.shape[-1])),
    )


def _empty_top(n_features: int, k: int, n_tokens: int) -> tuple[torch.Tensor, ...]:
    """Kept entries before any image: keys below every real key, no image."""
    return (
        torch.full((n_features, k), -2.0), torch.zeros(n_features, k),
        torch.full((n_features, k), _NO_IMAGE, dtype=torch.long), torch.zeros(n_features, k, dtype=torch.long),
        torch.zeros(n_features, k, n_tokens, dtype=torch.float16),
    )


@torch.no_grad()
def feature_stats(
    model: HookedViT,
    sae: Any,
    images: Any,
    hook: str | None = None,
    *,
    tokens: str = "patches",
    top_k: int = 8,
    n_samples: int = 16,
    prompts: Sequence[str] | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> FeatureStats:
    """Statistics of every SAE feature over ``images``, in one batched pass (see the module docstring).

    Args:
        model: a :class:`prisma_widgets.HookedViT`.
        sae: a :class:`prisma_widgets.SAE` trained on ``hook``'s activations.
        images: a list of images, an array ``[n, H, W, 3]``, a folder, a torch / Hugging Face dataset.
        hook: the hook the SAE reads (default: the one in the SAE's config).
        tokens: ``"patches"`` (default), ``"all"`` (prefix tokens too) or ``"cls"``.
        top_k: how many top images to keep per feature; ``n_samples``: how many random firing images.
        prompts: CLIP only: the texts whose logits the features' effects are measured on (default:
            ``"a photo of a {label}"`` for the model's labels, e.g. the bundled mouse-clip's shapes).
        batch_size: images per forward pass; ``seed``: the sampling seed.

    Example:
        >>> import prisma_widgets as pw
        >>> from prisma_widgets import zoo
        >>> model = pw.load("mouse-vit")
        >>> images, labels = zoo.shapes(16, seed=0)
        >>> sae = pw.SAE(d_in=128, d_sae=64, k=4, hook="blocks.3.hook_resid_post")
        >>> stats = pw.feature_stats(model, sae, images)
        >>> stats.top_maps.shape          # [features, top_k, patches]
        (64, 8, 64)
        >>> stats.class_effects.shape     # [features, classes]
        (64, 8)
    """
    check_token_mode(tokens)
    check_sae_like(sae)
    K, S = check_int(top_k, "top_k", at_least=1, example=8), check_int(n_samples, "n_samples", at_least=1, example=16)
    batch_size, seed = check_int(batch_size, "batch_size", at_least=1, example=64), check_seed(seed)
    prompts = None if prompts is None else check_strings(prompts, "prompts")
    hook = hook or getattr(sae.cfg, "hook", None)
    if not hook:
        raise ValueError("pass hook=...: the SAE's config does not name the hook it was trained on")
    stop_layer(model, hook)  # an unknown hook fails here, with suggestions
    check_sae_fits_hook(sae.d_in, model, hook, hook_width(model, hook))  # before any batch runs
    cfg = model.cfg
    source = as_image_source(images)
    n = len(source)
    device = sae.W_enc.device
    F_ = sae.d_sae
    readout = _Readout(model, hook, prompts)
    gen = torch.Generator().manual_seed(int(seed))
    count = torch.zeros(F_, dtype=torch.float64)
    total = torch.zeros(F_, dtype=torch.float64)
    peak = torch.zeros(F_)
    rows_seen = 0
    state_top: tuple[torch.Tensor, ...] | None = None
    state_smp: tuple[torch.Tensor, ...] | None = None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="feature stats", unit="img")
    try:
        for start in range(0, n, batch_size):
            stop_i = min(n, start + batch_size)
            pixels = source.pixels(model, start, stop_i)
            x = token_rows(model, capture(model, pixels, hook), hook, tokens).float()  # [B, T, d]
            B, T, _ = x.shape
            readout.observe(x.reshape(B * T, -1))
            f = sae.encode(x.to(device, sae.W_enc.dtype)).float().cpu()  # [B, T, F]
            count += (f > 0).sum((0, 1)).double()
            total += f.sum((0, 1)).double()
            peak = torch.maximum(peak, f.amax((0, 1)))
            rows_seen += B * T
            img_max, img_tok = f.max(1)  # [B, F]
            vals = img_max.T.contiguous()  # [F, B]
            toks = img_tok.T.contiguous()
            imgs = torch.arange(start, stop_i).expand(F_, B)
            maps = f.permute(2, 0, 1).half()  # [F, B, T]
            fires = vals > 0
            # top images: key = value; the sample: a random key per firing (image, feature), the largest kept
            top_keys = torch.where(fires, vals, torch.full_like(vals, -1.0))
            smp_keys = torch.where(fires, torch.rand(vals.shape, generator=gen), torch.full_like(vals, -1.0))
            if state_top is None:
                state_top, state_smp = _empty_top(F_, K, T), _empty_top(F_, S, T)
            state_top = _merge_top(*state_top, top_keys, vals, imgs, toks, maps)
            state_smp = _merge_top(*state_smp, smp_keys, vals, imgs, toks, maps)
            if bar is not None:
                bar.update(B)
    finally:
        if bar is not None:
            bar.close()
    assert state_top is not None and state_smp is not None

    def finish(state: tuple[torch.Tensor, ...]) -> tuple[np.ndarray, ...]:
        keys, vals, imgs, toks, maps = state
        valid = keys >= 0
        imgs = torch.where(valid, imgs, torch.full_like(imgs, _NO_IMAGE))
        vals = torch.where(valid, vals, torch.zeros_like(vals))
        # strongest first, ties by image index; empty slots last
        sort_key = torch.where(valid, -vals, torch.full_like(vals, float("inf")))
        order = np.lexsort((imgs.numpy(), sort_key.numpy()), axis=-1)
        o = torch.from_numpy(order)
        maps = maps.gather(1, o[..., None].expand(-1, -1, maps.shape[-1]))
        maps = torch.where(valid.gather(1, o)[..., None], maps, torch.zeros_like(maps))
        return (imgs.gather(1, o).numpy(), toks.gather(1, o).numpy(), vals.gather(1, o).numpy().astype(np.float32),
                maps.numpy())

    top_images, top_tokens, top_values, top_maps = finish(state_top)
    sample_images, _, sample_values, sample_maps = finish(state_smp)
    top_tokens = np.where(top_images >= 0, top_tokens, 0)
    freq = (count / max(rows_seen, 1)).float().numpy()
    mean = torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total)).float().numpy()
    prefix = cfg.n_prefix_tokens if tokens == "all" else (1 if tokens == "cls" else 0)
    grid = tuple(cfg.grid) if tokens != "cls" else (0, 0)
    return FeatureStats(
        hook=hook, model=getattr(model, "name", None) or cfg.model_name, tokens=tokens, n_images=n,
        grid=(int(grid[0]), int(grid[1])), n_prefix_tokens=int(prefix),
        frequency=freq, mean_activation=mean.astype(np.float32), max_activation=peak.numpy().astype(np.float32),
        top_images=top_images, top_tokens=top_tokens, top_values=top_values, top_maps=top_maps,
        sample_images=sample_images, sample_values=sample_values, sample_maps=sample_maps,
        class_effects=readout.effects(sae.W_dec), class_names=readout.names, readout_note=readout.note,
        extra={"rows": rows_seen, "d_sae": F_, "norm_scales": list(readout.scales()) if readout.ok else None},
    )
