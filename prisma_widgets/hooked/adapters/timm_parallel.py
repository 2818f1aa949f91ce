"""timm's parallel ViT blocks, stepped through with the standard hook names.

``ParallelScalingBlock`` (ViT-22B style) and ``DiffParallelScalingBlock`` run attention and MLP side by side
on one normalised input (``in_norm``) through one fused in-projection; ``ParallelThingsBlock`` runs several
attention branches, then several MLP branches, each with its own norm. The hooks keep their meaning:

* ``ln1.hook_normalized`` is what attention reads and ``ln2.hook_normalized`` what the MLP reads: in a
  parallel-scaling block both are ``in_norm(resid_pre)`` (edit one and only that branch sees it); in a
  parallel-things block they are ``[batch, pos, branch, d_model]``, one normalised input per branch.
* ``hook_attn_out`` and ``hook_mlp_out`` are each branch's write into the residual stream (layer scale included),
  ``hook_resid_mid = hook_resid_pre + hook_attn_out`` is bookkeeping (the MLP does not read it) and
  ``hook_resid_post = hook_resid_mid + hook_mlp_out``.
* Parallel-things branches' heads and MLP neurons are concatenated: ``hook_q`` ``[batch, pos, branch * head, d_head]``,
  ``mlp.hook_post`` ``[batch, pos, branch * d_mlp]``.

Without hooks inside the block, the block's own ``forward`` runs (bit-identical).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..hook_points import ATTN_INNER, BLOCK_EDGES, EXPLICIT_ATTN, MLP_INNER, ActiveHooks
from .base import explicit_attention
from .timm_parts import diff_heads, mlp_out_weight, mlp_width

PARALLEL_BLOCKS = ("ParallelScalingBlock", "DiffParallelScalingBlock", "ParallelThingsBlock")


def is_parallel(blk: nn.Module) -> bool:
    return type(blk).__name__ in PARALLEL_BLOCKS


def shape(blk: nn.Module) -> tuple[int, int, int]:
    """``(n_heads, d_head, d_mlp)`` as the hooks see them."""
    kind = type(blk).__name__
    if kind == "ParallelThingsBlock":
        attn = blk.attns[0].attn
        return blk.num_parallel * int(attn.num_heads), int(attn.head_dim), blk.num_parallel * mlp_width(blk.ffns[0].mlp)
    d_mlp = int(blk.in_split[0])
    if kind == "DiffParallelScalingBlock":
        return int(blk.num_heads), 2 * int(blk.head_dim), d_mlp
    return int(blk.num_heads), int(blk.head_dim), d_mlp


def _split_out_proj(blk: nn.Module) -> tuple[tuple[torch.Tensor, torch.Tensor | None], torch.Tensor]:
    """``((W_attn, b), W_mlp)``: the output projection(s) split into the attention part (which takes the one
    bias of a fused projection) and the MLP part."""
    if blk.out_proj is None:
        return (blk.attn_out_proj.weight, blk.attn_out_proj.bias), blk.mlp_out_proj.weight
    d = blk.in_split[1]
    w = blk.out_proj.weight
    return (w[:, :d], blk.out_proj.bias), w[:, d:]


def out_projection(blk: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(W_O, b_O)`` from the heads' ``hook_z`` to the attention write, before the layer scale."""
    kind = type(blk).__name__
    if kind == "ParallelThingsBlock":
        # each branch's layer scale folds into its columns; the block's attn_branch is then the identity
        weights, bias = [], None
        for branch in blk.attns:
            gamma = branch.ls.gamma if hasattr(branch.ls, "gamma") else None
            w, b = branch.attn.proj.weight, branch.attn.proj.bias
            weights.append(w * gamma[:, None] if gamma is not None else w)
            if b is not None:
                b = b * gamma if gamma is not None else b
                bias = b if bias is None else bias + b
        return torch.cat(weights, dim=1), bias
    return _split_out_proj(blk)[0]


def out_weight(blk: nn.Module) -> torch.Tensor | None:
    """The map from ``mlp.hook_post`` to ``hook_mlp_out`` (layer scale folded in) when it is linear, else ``None``."""
    if type(blk).__name__ == "ParallelThingsBlock":
        weights = []
        for f in blk.ffns:
            w = mlp_out_weight(f.mlp)
            if w is None:
                return None
            weights.append(w * f.ls.gamma[:, None] if hasattr(f.ls, "gamma") else w)
        return torch.cat(weights, dim=1)
    w = _split_out_proj(blk)[1]
    return w * blk.ls.gamma[:, None] if hasattr(blk.ls, "gamma") else w


def branch_scale(blk: nn.Module, a: torch.Tensor) -> torch.Tensor:
    """What joins the residual from a branch's projected output: the layer scale and drop path (identity for
    parallel-things blocks, whose branch scales live in :func:`out_projection`)."""
    if type(blk).__name__ == "ParallelThingsBlock":
        return a
    return blk.drop_path(blk.ls(a))


def parallel_block(
    blk: nn.Module, names: dict[str, str], keys: frozenset[str], x: torch.Tensor, hooks: ActiveHooks
) -> torch.Tensor:
    """One parallel block with whatever hooks are active in it (see the module docstring)."""
    if not keys:
        return blk(x)
    if keys <= BLOCK_EDGES:
        return hooks(names["resid_post"], blk(hooks(names["resid_pre"], x)))
    x = hooks(names["resid_pre"], x)
    if type(blk).__name__ == "ParallelThingsBlock":
        return _things(blk, names, keys, x, hooks)
    explicit = bool(keys & EXPLICIT_ATTN) or not blk.fused_attn
    (w_attn, b_attn), w_mlp = _split_out_proj(blk)
    B, N, C = x.shape
    d_mlp = blk.in_split[0]

    h = hooks(names["ln1"], blk.in_norm(x))
    _, q, k, v = torch.split(blk.in_proj(h), blk.in_split, dim=-1)
    if type(blk).__name__ == "DiffParallelScalingBlock":
        H, d = blk.num_heads, blk.head_dim
        q = q.reshape(B, N, 2 * H, d).transpose(1, 2)
        k = k.reshape(B, N, 2 * H, d).transpose(1, 2)
        v = v.reshape(B, N, H, 2 * d).transpose(1, 2)
        z = diff_heads(blk, q, k, v, names, hooks, explicit).transpose(1, 2).reshape(B, N, C)
    else:
        q = blk.q_norm(q.view(B, N, blk.num_heads, blk.head_dim))
        k = blk.k_norm(k.view(B, N, blk.num_heads, blk.head_dim))
        q = hooks(names["q"], q).transpose(1, 2)
        k = hooks(names["k"], k).transpose(1, 2)
        v = hooks(names["v"], v.view(B, N, blk.num_heads, blk.head_dim)).transpose(1, 2)
        if explicit:
            z = explicit_attention(q, k, v, blk.scale, names, hooks, blk.attn_drop)
        else:
            z = F.scaled_dot_product_attention(q, k, v, dropout_p=blk.attn_drop.p if blk.training else 0.0)
        z = hooks(names["z"], z.transpose(1, 2)).reshape(B, N, C)
    a = hooks(names["attn_out"], blk.drop_path(blk.ls(F.linear(z, w_attn, b_attn))))
    mid = hooks(names["resid_mid"], x + a)

    h = hooks(names["ln2"], blk.in_norm(x))  # the MLP reads the block's input, side by side with attention
    bias = blk.in_proj.bias[:d_mlp] if blk.in_proj.bias is not None else None
    m = F.linear(h, blk.in_proj.weight[:d_mlp], bias)
    if blk.mlp_bias is not None:
        m = m + blk.mlp_bias
    m = hooks(names["mlp_pre"], m)
    m = hooks(names["mlp_post"], blk.mlp_act(m))
    m = hooks(names["mlp_out"], blk.drop_path(blk.ls(F.linear(blk.mlp_drop(m), w_mlp))))
    return hooks(names["resid_post"], mid + m)


def _things(blk: nn.Module, names: dict[str, str], keys: frozenset[str], x: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
    attns, ffns = list(blk.attns), list(blk.ffns)
    h = hooks(names["ln1"], torch.stack([b.norm(x) for b in attns], dim=2))  # [batch, pos, branch, d]
    if keys & ATTN_INNER:
        a = _things_attention(attns, h, names, hooks, bool(keys & EXPLICIT_ATTN))
    else:
        a = torch.stack([b.drop_path(b.ls(b.attn(h[:, :, i]))) for i, b in enumerate(attns)]).sum(dim=0)
    a = hooks(names["attn_out"], a)
    x = hooks(names["resid_mid"], x + a)
    h = hooks(names["ln2"], torch.stack([f.norm(x) for f in ffns], dim=2))
    if keys & MLP_INNER:
        pre = hooks(names["mlp_pre"], torch.cat([f.mlp.fc1(h[:, :, i]) for i, f in enumerate(ffns)], dim=-1))
        post = torch.cat([f.mlp.act(p) for f, p in zip(ffns, pre.chunk(len(ffns), dim=-1))], dim=-1)
        post = hooks(names["mlp_post"], post).chunk(len(ffns), dim=-1)
        m = torch.stack([f.drop_path(f.ls(f.mlp.drop2(f.mlp.fc2(f.mlp.norm(f.mlp.drop1(p))))))
                         for f, p in zip(ffns, post)]).sum(dim=0)
    else:
        m = torch.stack([f.drop_path(f.ls(f.mlp(h[:, :, i]))) for i, f in enumerate(ffns)]).sum(dim=0)
    m = hooks(names["mlp_out"], m)
    return hooks(names["resid_post"], x + m)


def _things_attention(
    attns: list[nn.Module], h: torch.Tensor, names: dict[str, str], hooks: ActiveHooks, explicit: bool
) -> torch.Tensor:
    """Every branch's heads side by side, so each hook fires once with ``[batch, pos, branch * head, d_head]``."""
    B, N, _, _ = h.shape
    first = attns[0].attn
    qs, ks, vs = [], [], []
    for i, b in enumerate(attns):
        attn = b.attn
        q, k, v = attn.qkv(h[:, :, i]).reshape(B, N, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        qs.append(attn.q_norm(q))
        ks.append(attn.k_norm(k))
        vs.append(v)
    q = hooks.view(names["q"], torch.cat(qs, dim=1), (1, 2))
    k = hooks.view(names["k"], torch.cat(ks, dim=1), (1, 2))
    v = hooks.view(names["v"], torch.cat(vs, dim=1), (1, 2))
    if explicit or not first.fused_attn:
        z = explicit_attention(q, k, v, first.scale, names, hooks, first.attn_drop)
    else:
        z = F.scaled_dot_product_attention(q, k, v, dropout_p=first.attn_drop.p if first.training else 0.0)
    z = hooks.view(names["z"], z, (1, 2))
    outs = []
    for b, zi in zip(attns, z.chunk(len(attns), dim=1)):
        attn = b.attn
        out = attn.proj_drop(attn.proj(attn.norm(zi.transpose(1, 2).reshape(B, N, -1))))
        outs.append(b.drop_path(b.ls(out)))
    return torch.stack(outs).sum(dim=0)
