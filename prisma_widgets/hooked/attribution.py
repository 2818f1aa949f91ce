"""The residual stream in parts, TransformerLens-style: what :class:`ActivationCache`'s ``decompose_resid``,
``stack_head_results`` and ``apply_ln_to_stack`` compute.

The cache holds activations; the model's adapter knows what they mean (each head's slice of the output
projection and layer scale, the norms' modules). Nothing here asks which family a model is.

Two differences from TransformerLens, both because the wrapped model runs as built (no weights folded):

* ``"embed"`` is the whole residual stream entering block 0 (patch embedding, position embedding, prefix
  tokens, and a pre-norm such as ``norm_pre`` / ``ln_pre`` where the model has one), not two parts;
* ``apply_ln_to_stack`` applies the norm's weight after centring and dividing by the frozen scale
  (TransformerLens folds that weight into the next layer). So a stack that sums to the residual stream
  becomes, after ``apply_ln_to_stack``, a stack that sums to ``norm(resid) - norm.bias``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch
from torch import nn

from .config import HookedViTConfig
from .hook_points import HookNameError

if TYPE_CHECKING:
    from .adapters.base import Adapter

#: a position (or batch) selection, as TransformerLens' ``Slice`` takes it: ``None`` (all), an int (that one,
#: the axis dropped), a ``slice``, a tuple (``slice(*tuple)``), or a list / array / tensor of indices
SliceInput = Union[None, int, slice, tuple, Sequence[int], np.ndarray, torch.Tensor]

Stack = Union[torch.Tensor, tuple[torch.Tensor, list[str]]]


def take(x: torch.Tensor, selection: SliceInput, dim: int) -> torch.Tensor:
    """``x`` with ``selection`` applied along ``dim`` (TransformerLens ``Slice.apply`` semantics).

    Example:
        >>> x = torch.arange(12).reshape(3, 4)
        >>> take(x, -1, dim=-1).tolist(), take(x, (1, 3), dim=-1).shape, take(x, [0, 2], dim=0).shape
        ([3, 7, 11], torch.Size([3, 2]), torch.Size([2, 4]))
    """
    if selection is None:
        return x
    if isinstance(selection, (int, np.integer)):
        return x.select(dim, int(selection))
    if isinstance(selection, tuple):
        selection = slice(*selection)
    if isinstance(selection, slice):
        index: Any = [slice(None)] * x.ndim
        index[dim] = selection
        return x[tuple(index)]
    indices = torch.as_tensor(np.asarray(selection) if not isinstance(selection, torch.Tensor) else selection)
    return x.index_select(dim, indices.to(device=x.device, dtype=torch.long).reshape(-1))


def _final_layer(layer: int | None, n_layers: int) -> int:
    """TransformerLens' convention: ``None``, ``-1`` and ``n_layers`` all mean "after the last block"."""
    if layer is None or layer == -1:
        return n_layers
    layer = int(layer)
    if not 0 <= layer <= n_layers:
        raise ValueError(f"layer must be in 0..{n_layers} (or -1 / None for the final residual stream); got {layer}")
    return layer


def _need(cache: Mapping[str, torch.Tensor], names: list[str], what: str) -> None:
    missing = [n for n in names if n not in cache]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise HookNameError(
            f"{what} needs {missing[0]!r}{more} in the cache: run model.run_with_cache(images) with no "
            f"names_filter, or with names_filter={missing[:3]!r}..."
        )


def _need_adapter(adapter: Adapter | None, what: str) -> Adapter:
    if adapter is None:
        raise ValueError(
            f"{what} needs the model's adapter (which weights make each head's write, which norm comes where); "
            "this cache has none. Make the cache with model.run_with_cache(...), which attaches it."
        )
    return adapter


def _check_mlp_input(adapter: Adapter, layer: int) -> None:
    if not adapter.mlp_reads_resid_mid(layer):
        raise ValueError(
            f"block {layer} is a parallel block: its MLP reads the block's input (hook_resid_pre) through the same "
            "norm as its attention, not the stream after its attention; use mlp_input=False for what both read")


# --------------------------------------------------------------------------------------------------
def decompose_resid(
    cache: Mapping[str, torch.Tensor],
    cfg: HookedViTConfig,
    adapter: Adapter | None,
    layer: int | None = None,
    mlp_input: bool = False,
    mode: str = "all",
    apply_ln: bool = False,
    pos_slice: SliceInput = None,
    incl_embeds: bool = True,
    return_labels: bool = False,
) -> Stack:
    """The residual stream entering block ``layer`` as a stack ``[component, ..., pos, d_model]``: ``"embed"``,
    then ``"{l}_attn_out"`` and ``"{l}_mlp_out"`` for each block before it (``mode``: ``"all"``, ``"attn"``,
    ``"mlp"``); ``mlp_input`` adds block ``layer``'s attention (the stream entering its MLP)."""
    if mode not in ("all", "attn", "mlp"):
        raise ValueError(f"mode must be 'all', 'attn' or 'mlp'; got {mode!r}")
    layer = _final_layer(layer, cfg.n_layers)
    if mlp_input and layer == cfg.n_layers:
        raise ValueError("mlp_input=True needs a block: layer must be below n_layers")
    if mlp_input and adapter is not None:
        _check_mlp_input(adapter, layer)
    names: list[str] = []
    labels: list[str] = []
    if incl_embeds:
        names.append("blocks.0.hook_resid_pre")
        labels.append("embed")
    for l in range(layer + (1 if mlp_input else 0)):
        if mode != "mlp":
            for extra in adapter.extra_writes(l) if adapter is not None else ():  # TimeSformer's temporal attention
                names.append(f"blocks.{l}.{extra}")
                labels.append(f"{l}_{extra.removeprefix('hook_')}")
            names.append(f"blocks.{l}.hook_attn_out")
            labels.append(f"{l}_attn_out")
        if mode != "attn" and l < layer:
            names.append(f"blocks.{l}.hook_mlp_out")
            labels.append(f"{l}_mlp_out")
    _need(cache, names, "decompose_resid")
    if not names:
        raise ValueError("decompose_resid: nothing to stack (incl_embeds=False and no blocks before this layer)")
    stack = torch.stack([take(cache[n], pos_slice, -2) for n in names])
    if apply_ln:
        stack = apply_ln_to_stack(cache, cfg, adapter, stack, layer, mlp_input=mlp_input, pos_slice=pos_slice)
    return (stack, labels) if return_labels else stack


def head_results(adapter: Adapter, layer: int, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``adapter.head_writes`` for ``z`` of any leading shape ``[..., head, d_head]`` (a batch, positions, both
    or neither): ``([..., head, d_model], bias [d_model] or None)``. Each row's write depends on that row only."""
    lead = z.shape[:-2]
    per_head, shared = adapter.head_writes(layer, z.reshape(-1, 1, *z.shape[-2:]))
    return per_head.reshape(*lead, *per_head.shape[-2:]), shared


def stack_head_results(
    cache: Mapping[str, torch.Tensor],
    cfg: HookedViTConfig,
    adapter: Adapter | None,
    layer: int | None = -1,
    return_labels: bool = False,
    incl_remainder: bool = False,
    pos_slice: SliceInput = None,
    apply_ln: bool = False,
    incl_bias: bool = False,
) -> Stack:
    """Each head's write into the residual stream, for the blocks before ``layer``: ``[layer * head, ..., pos,
    d_model]``, labels ``L{l}H{h}``; ``incl_bias`` adds the output biases (no head owns them) as ``"bias"``,
    ``incl_remainder`` the rest of the stream entering ``layer`` as ``"remainder"``."""
    what = "stack_head_results"
    adapter = _need_adapter(adapter, what)
    layer = _final_layer(layer, cfg.n_layers)
    names = [f"blocks.{l}.attn.hook_z" for l in range(layer)]
    _need(cache, names, what)
    parts: list[torch.Tensor] = []
    labels: list[str] = []
    bias: torch.Tensor | None = None
    for l, name in enumerate(names):
        per_head, shared = head_results(adapter, l, take(cache[name], pos_slice, -3))
        parts.append(per_head.movedim(-2, 0))  # [head, ..., pos, d_model]
        labels += [f"L{l}H{h}" for h in range(per_head.shape[-2])]
        if shared is not None:
            bias = shared if bias is None else bias + shared
    if parts:
        like = parts[0][0]  # [..., pos, d_model]
    else:
        _need(cache, ["blocks.0.hook_resid_pre"], what)
        like = take(cache["blocks.0.hook_resid_pre"], pos_slice, -2)
    stack = torch.cat(parts) if parts else like.new_zeros((0, *like.shape))
    if incl_bias:
        shared_bias = bias.to(like) if bias is not None else like.new_zeros(like.shape[-1])
        stack = torch.cat([stack, shared_bias.expand(like.shape)[None]])
        labels.append("bias")
    if incl_remainder:
        entering = f"blocks.{layer - 1}.hook_resid_post" if layer else "blocks.0.hook_resid_pre"
        _need(cache, [entering], what)
        stack = torch.cat([stack, (take(cache[entering], pos_slice, -2) - stack.sum(0))[None]])
        labels.append("remainder")
    if apply_ln:
        stack = apply_ln_to_stack(cache, cfg, adapter, stack, layer, pos_slice=pos_slice)
    return (stack, labels) if return_labels else stack


# --------------------------------------------------------------------------------------------------
def apply_ln_to_stack(
    cache: Mapping[str, torch.Tensor],
    cfg: HookedViTConfig,
    adapter: Adapter | None,
    residual_stack: torch.Tensor,
    layer: int | None = None,
    mlp_input: bool = False,
    pos_slice: SliceInput = None,
    batch_slice: SliceInput = None,
    has_batch_dim: bool = True,
    recompute_ln: bool = False,
) -> torch.Tensor:
    """The stack ``[component, ..., pos, d_model]`` through the norm entering ``layer`` (the final norm for
    ``None`` / ``-1`` / ``n_layers``; ``ln2`` with ``mlp_input``), its scale frozen at the value the actual
    residual stream had at each position: centred (LayerNorm), divided by that scale, times the weight; no bias.

    ``pos_slice``: the positions the stack already holds (the scales are taken alike); ``batch_slice``: the
    images to keep, of the stack (axis 1) and the scales. ``recompute_ln`` (final norm only): each component through the real norm instead.
    """
    from ..analysis.readout import frozen_norm, norm_scale

    what = "apply_ln_to_stack"
    adapter = _need_adapter(adapter, what)
    layer = _final_layer(layer, cfg.n_layers)
    if layer == cfg.n_layers:
        if mlp_input:
            raise ValueError("mlp_input=True names a block's ln2; the final norm has no MLP after it")
        if adapter.norm_after_pool:
            raise ValueError(
                "this model normalises the pooled vector (final_ln_after_pool), not each token: there is no "
                "per-position scale to freeze. pw.analysis.direct_logit_attribution pools first and freezes it."
            )
        norm, source = adapter.final_norm(), f"blocks.{cfg.n_layers - 1}.hook_resid_post"
        if recompute_ln:
            return norm(residual_stack)
    else:
        if mlp_input:
            _check_mlp_input(adapter, layer)
        norm = adapter.block_norms(layer)[1 if mlp_input else 0]
        source = f"blocks.{layer}.hook_resid_mid" if mlp_input else f"blocks.{layer}.hook_resid_pre"
    if isinstance(norm, nn.Identity):
        return residual_stack
    _need(cache, [source], what)
    resid = take(cache[source], pos_slice, -2)
    if has_batch_dim:
        resid = take(resid, batch_slice, 0)
        residual_stack = take(residual_stack, batch_slice, 1)
    scale = norm_scale(norm, resid.float()).to(residual_stack)
    return frozen_norm(norm, residual_stack, 1.0) / scale[..., None]
