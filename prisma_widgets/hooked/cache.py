"""The in-memory activation cache returned by ``run_with_cache``."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from typing import Union, overload

import torch

from .config import HookedViTConfig
from .hook_points import HookNameError, act_name, nearest_names, split_name

CacheKey = Union[str, tuple[str, int]]


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


class ActivationCache(Mapping[str, torch.Tensor]):
    """Activations by hook name, in the order the forward pass produced them.

    Look-ups take full names or TransformerLens-style short keys::

        logits, cache = model.run_with_cache(images)
        cache["blocks.3.attn.hook_pattern"]   # [batch, head, query, key]
        cache["pattern", 3]                   # the same tensor
        cache.accumulated_resid().shape        # [n_layers + 1, batch, pos, d_model]
    """

    def __init__(self, activations: dict[str, torch.Tensor], cfg: HookedViTConfig, valid_names: Sequence[str]) -> None:
        self._data = activations
        self.cfg = cfg
        self._valid = list(valid_names)

    # ----- mapping -----
    def _resolve(self, key: CacheKey) -> str:
        if isinstance(key, tuple):
            kind, layer = key
            return act_name(kind, layer)
        return key

    def __getitem__(self, key: CacheKey) -> torch.Tensor:
        name = self._resolve(key)
        try:
            return self._data[name]
        except KeyError:
            pass
        if name in self._valid:
            raise HookNameError(
                f"{name!r} is a valid hook but was not cached; include it in names_filter, "
                f"e.g. model.run_with_cache(images, names_filter=[{name!r}])."
            )
        suggestions = nearest_names(name, self._data) or nearest_names(name, self._valid)
        hint = f" Did you mean: {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        raise HookNameError(f"unknown hook name {name!r}.{hint}")

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, (str, tuple)):
            try:
                return self._resolve(key) in self._data  # type: ignore[arg-type]
            except ValueError:
                return False
        return False

    # ----- whole-cache operations -----
    @property
    def nbytes(self) -> int:
        """Memory held by the cached tensors, in bytes."""
        return sum(t.numel() * t.element_size() for t in self._data.values())

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> ActivationCache:
        """A cache with every tensor moved (and optionally cast)."""
        moved = {k: v.to(device=device, dtype=dtype) if dtype is not None and v.is_floating_point() else v.to(device)
                 for k, v in self._data.items()}
        return ActivationCache(moved, self.cfg, self._valid)

    def remove_batch_dim(self) -> ActivationCache:
        """For a batch of one: drop the leading batch axis everywhere."""
        for name, t in self._data.items():
            if t.shape[0] != 1:
                raise ValueError(f"remove_batch_dim needs a batch of 1; {name!r} has batch {t.shape[0]}")
        return ActivationCache({k: v[0] for k, v in self._data.items()}, self.cfg, self._valid)

    def stack(self, pattern: str) -> torch.Tensor:
        """Stack the cached tensors whose names match, in layer order.

        ``pattern`` is a glob (``"blocks.*.attn.hook_pattern"``) or a name suffix (``"hook_pattern"``).

        >>> import prisma_widgets as pw
        >>> model = pw.load("mouse-vit")
        >>> _, cache = model.run_with_cache(pw.zoo.shapes(2)[0])
        >>> cache.stack("hook_resid_post").shape   # [layer, batch, pos, d_model]
        torch.Size([4, 2, 65, 128])
        """
        if any(ch in pattern for ch in "*?["):
            names = fnmatch.filter(self._data, pattern)
        else:
            names = [n for n in self._data if n == pattern or n.endswith("." + pattern) or n.endswith(pattern)]
        if not names:
            raise HookNameError(
                f"no cached activation matches {pattern!r}; cached: {', '.join(list(self._data)[:6])}"
                + (" ..." if len(self._data) > 6 else "")
            )
        names.sort(key=lambda n: (split_name(n)[0] if split_name(n)[0] is not None else -1))
        return torch.stack([self._data[n] for n in names])

    @overload
    def accumulated_resid(self, layer: int | None = ..., incl_mid: bool = ..., *, return_labels: bool = False) -> torch.Tensor: ...
    @overload
    def accumulated_resid(self, layer: int | None = ..., incl_mid: bool = ..., *, return_labels: bool) -> tuple[torch.Tensor, list[str]]: ...

    def accumulated_resid(
        self, layer: int | None = None, incl_mid: bool = False, *, return_labels: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[str]]:
        """The residual stream before each of the first ``layer`` blocks, stacked.

        ``layer=None`` means all blocks plus the final stream (``blocks.{L-1}.hook_resid_post``):
        shape ``[n_components, batch, pos, d_model]``. ``incl_mid`` adds each block's ``hook_resid_mid``.
        """
        n_layers = self.cfg.n_layers
        layer = n_layers if layer is None else layer
        if not 0 <= layer <= n_layers:
            raise ValueError(f"layer must be in 0..{n_layers}; got {layer}")
        names: list[str] = []
        labels: list[str] = []
        for l in range(layer):
            names.append(f"blocks.{l}.hook_resid_pre")
            labels.append(f"{l}_pre")
            if incl_mid:
                names.append(f"blocks.{l}.hook_resid_mid")
                labels.append(f"{l}_mid")
        if layer == n_layers:
            names.append(f"blocks.{n_layers - 1}.hook_resid_post")
            labels.append("final_post")
        else:
            names.append(f"blocks.{layer}.hook_resid_pre")
            labels.append(f"{layer}_pre")
        missing = [n for n in names if n not in self._data]
        if missing:
            raise HookNameError(
                f"accumulated_resid needs {missing[0]!r} (and {len(missing) - 1} more) in the cache; "
                "run_with_cache(images, names_filter=lambda n: 'resid' in n) caches them."
            )
        stacked = torch.stack([self._data[n] for n in names])
        return (stacked, labels) if return_labels else stacked

    def __repr__(self) -> str:
        return f"ActivationCache({len(self._data)} activations, {_human_bytes(self.nbytes)})"
