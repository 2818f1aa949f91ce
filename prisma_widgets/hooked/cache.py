"""The in-memory activation cache returned by ``run_with_cache``."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Union, overload

import torch

from . import attribution
from .attribution import SliceInput
from .config import HookedViTConfig
from .hook_points import HookNameError, act_name, nearest_names, split_name

if TYPE_CHECKING:
    from .adapters.base import Adapter

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

    def __init__(
        self,
        activations: dict[str, torch.Tensor],
        cfg: HookedViTConfig,
        valid_names: Sequence[str],
        adapter: Adapter | None = None,
    ) -> None:
        self._data = activations
        self.cfg = cfg
        self._valid = list(valid_names)
        #: the model's adapter (``run_with_cache`` attaches it): what the activations mean, for the
        #: attribution methods (each head's write, the norms); ``None`` for a cache built by hand
        self.adapter = adapter

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
        return ActivationCache(moved, self.cfg, self._valid, self.adapter)

    def remove_batch_dim(self) -> ActivationCache:
        """For a batch of one: drop the leading batch axis everywhere."""
        for name, t in self._data.items():
            if t.shape[0] != 1:
                raise ValueError(f"remove_batch_dim needs a batch of 1; {name!r} has batch {t.shape[0]}")
        return ActivationCache({k: v[0] for k, v in self._data.items()}, self.cfg, self._valid, self.adapter)

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

    # ----- attribution (TransformerLens names and arguments; see hooked/attribution.py) -----
    def decompose_resid(
        self, layer: int | None = None, mlp_input: bool = False, mode: str = "all", apply_ln: bool = False,
        pos_slice: SliceInput = None, incl_embeds: bool = True, return_labels: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, list[str]]:
        """The residual stream entering block ``layer`` (``None``: after the last block) split into what wrote it:
        ``[component, batch, pos, d_model]``, labels ``"embed"``, ``"{l}_attn_out"``, ``"{l}_mlp_out"``.

        ``"embed"`` is the whole stream entering block 0 (patches, positions, prefix tokens, any pre-norm).
        ``mode``: ``"all"``, ``"attn"`` or ``"mlp"``; ``mlp_input`` adds block ``layer``'s attention;
        ``apply_ln`` passes the stack through :meth:`apply_ln_to_stack`; ``pos_slice`` as in TransformerLens.

        Example:
            >>> import prisma_widgets as pw
            >>> model = pw.load("mouse-vit")
            >>> _, cache = model.run_with_cache(pw.zoo.shapes(2)[0])
            >>> stack, labels = cache.decompose_resid(return_labels=True)
            >>> labels[:3], torch.allclose(stack.sum(0), cache["resid_post", 3], atol=1e-4)
            (['embed', '0_attn_out', '0_mlp_out'], True)
        """
        return attribution.decompose_resid(self, self.cfg, self.adapter, layer, mlp_input, mode, apply_ln,
                                           pos_slice, incl_embeds, return_labels)

    def stack_head_results(
        self, layer: int | None = -1, return_labels: bool = False, incl_remainder: bool = False,
        pos_slice: SliceInput = None, apply_ln: bool = False, *, incl_bias: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, list[str]]:
        """Each head's own write into the residual stream, for the blocks before ``layer`` (``-1``: all):
        ``[layer * head, batch, pos, d_model]``, labels ``"L{l}H{h}"``.

        A head's write is its ``hook_z`` through its slice of the output projection and the block's layer
        scale (the adapter's ``head_writes``; models whose heads share a norm or gate refuse). The output
        bias belongs to no head: ``incl_bias=True`` adds it as one more component, ``"bias"``;
        ``incl_remainder`` adds the rest of the stream as ``"remainder"``; ``apply_ln`` and ``pos_slice`` as in
        :meth:`decompose_resid`. Heads and bias sum to each block's ``hook_attn_out``.

        Example:
            >>> import prisma_widgets as pw
            >>> model = pw.load("mouse-vit")
            >>> _, cache = model.run_with_cache(pw.zoo.shapes(2)[0])
            >>> heads, labels = cache.stack_head_results(layer=1, return_labels=True, incl_bias=True)
            >>> labels, torch.allclose(heads.sum(0), cache["attn_out", 0], atol=1e-5)
            (['L0H0', 'L0H1', 'L0H2', 'L0H3', 'bias'], True)
        """
        return attribution.stack_head_results(self, self.cfg, self.adapter, layer, return_labels, incl_remainder,
                                              pos_slice, apply_ln, incl_bias)

    def apply_ln_to_stack(
        self, residual_stack: torch.Tensor, layer: int | None = None, mlp_input: bool = False,
        pos_slice: SliceInput = None, batch_slice: SliceInput = None, has_batch_dim: bool = True,
        recompute_ln: bool = False,
    ) -> torch.Tensor:
        """A stack of residual-stream parts through the norm entering ``layer`` (``None`` / ``-1``: the final
        norm; ``mlp_input``: the block's ``ln2``) with its scale frozen from this run, per image and position.

        Centred (LayerNorm), divided by the scale the actual stream had, times the norm's weight, no bias
        (TransformerLens folds the weight away; these models run as built). So the parts of a stream sum,
        after this, to ``norm(stream) - norm.bias``: what each part writes into that norm's output.
        ``pos_slice``: the positions the stack already holds (the scales are taken alike); ``batch_slice``:
        the images to keep, taken of the stack and the scales (TransformerLens' convention for both).

        Example:
            >>> import prisma_widgets as pw
            >>> model = pw.load("mouse-vit")
            >>> _, cache = model.run_with_cache(pw.zoo.shapes(2)[0])
            >>> parts = cache.apply_ln_to_stack(cache.decompose_resid(pos_slice=0), pos_slice=0)
            >>> normed = model.adapter.final_norm()(cache["resid_post", 3][:, 0])
            >>> torch.allclose(parts.sum(0) + model.adapter.final_norm().bias, normed, atol=1e-4)
            True
        """
        return attribution.apply_ln_to_stack(self, self.cfg, self.adapter, residual_stack, layer, mlp_input,
                                             pos_slice, batch_slice, has_batch_dim, recompute_ln)

    def __repr__(self) -> str:
        return f"ActivationCache({len(self._data)} activations, {_human_bytes(self.nbytes)})"
