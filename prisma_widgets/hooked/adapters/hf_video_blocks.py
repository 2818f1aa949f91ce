"""Hugging Face video encoder layers stepped through with hooks: VideoMAE, TimeSformer (ViViT's layers are
ViT-style and live in :mod:`.hf_blocks`).

VideoMAE and TimeSformer keep the older BERT-style layout: ``attention.attention`` (``query`` / ``key`` /
``value``, or one fused ``qkv``), ``attention.output.dense``, ``intermediate`` (``dense`` + activation) and
``output.dense`` (VideoMAE adds the residual inside ``output``). The fused path calls the model's own attention
(VideoMAE: ``config._attn_implementation``, SDPA by default; TimeSformer: its explicit softmax, which is also
ours), so q/k/v/z hooks change nothing numerically.

TimeSformer's *divided space-time* block runs two attentions: a temporal one (each patch attends to itself in
every frame) whose output goes through ``temporal_dense`` into the patch tokens, then a spatial one (each frame's
patches with a copy of CLS; the CLS outputs are averaged over frames). Its hooks (``docs/hook_names.md``):
``ln_time.hook_normalized``, ``attn_time.hook_q/k/v/attn_scores/pattern/z``, ``hook_attn_time_out``,
``hook_resid_mid_time``, then the usual spatial ``ln1`` / ``attn.*`` / ``hook_attn_out`` / ``hook_resid_mid``
and the MLP.
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from ..hook_points import ATTN_INNER, BLOCK_EDGES, EXPLICIT_ATTN, MLP_INNER, ActiveHooks
from .base import explicit_attention

#: the temporal hooks of a divided block, after ``blocks.{l}.``, in execution order
TIME_POINTS: tuple[tuple[str, str], ...] = (
    ("ln_time", "ln_time.hook_normalized"),
    ("q", "attn_time.hook_q"), ("k", "attn_time.hook_k"), ("v", "attn_time.hook_v"),
    ("attn_scores", "attn_time.hook_attn_scores"), ("pattern", "attn_time.hook_pattern"), ("z", "attn_time.hook_z"),
    ("attn_time_out", "hook_attn_time_out"), ("resid_mid_time", "hook_resid_mid_time"),
)


def self_attention(blk: nn.Module) -> nn.Module:
    return blk.attention.attention


def heads(attn: nn.Module, d_model: int) -> tuple[int, int]:
    n = int(getattr(attn, "num_attention_heads", None) or attn.num_heads)
    return n, d_model // n


def _qkv(attn: nn.Module, x: torch.Tensor, H: int, D: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, keys, values ``[batch, pos, head, d_head]`` as the module computes them."""
    B, N, _ = x.shape
    if hasattr(attn, "qkv"):  # TimeSformer: one fused projection
        qkv = attn.qkv(x).reshape(B, N, 3, H, D)
        return qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    return attn.query(x).view(B, N, H, D), attn.key(x).view(B, N, H, D), attn.value(x).view(B, N, H, D)


def attention_heads(
    attn: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks, explicit: bool
) -> torch.Tensor:
    """One BERT-style self-attention stepped through ``hook_q/k/v`` (``[batch, pos, head, d_head]``), scores and
    pattern (``[batch, head, q, k]``) and ``hook_z``; returns the heads concatenated, before the output dense."""
    B, N, d = x.shape
    H, D = heads(attn, d)
    q, k, v = _qkv(attn, x, H, D)
    q, k, v = (hooks(names[n], t).transpose(1, 2) for n, t in (("q", q), ("k", k), ("v", v)))
    scale = getattr(attn, "scale", None) or attn.scaling
    if explicit or hasattr(attn, "qkv"):
        if hasattr(attn, "qkv"):  # TimeSformer's own order: (q @ k^T) * scale
            scores = hooks(names["attn_scores"], (q @ k.transpose(-2, -1)) * scale)
            z = hooks(names["pattern"], scores.softmax(dim=-1)) @ v
        else:
            z = explicit_attention(q, k, v, scale, names, hooks, nn.Identity())
        z = z.transpose(1, 2)
    else:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        eager = sys.modules[type(attn).__module__].eager_attention_forward
        fn = ALL_ATTENTION_FUNCTIONS.get_interface(attn.config._attn_implementation, eager)
        z = fn(attn, q, k, v, None, is_causal=False, scaling=scale, dropout=0.0)[0]
    return hooks(names["z"], z).reshape(B, N, H * D)


class BertStyleBlocks:
    """Block parts for VideoMAE and (space-only / joint) TimeSformer layers."""

    def plain_block(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        out = blk(x)
        return out[0] if isinstance(out, tuple) else out

    def ln1(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk.layernorm_before(x)

    def ln2(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk.layernorm_after(x)

    def fused(self, blk: nn.Module) -> bool:
        return not hasattr(self_attention(blk), "qkv")

    def attention(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        out = self_attention(blk)(x)
        return self.attn_output(blk.attention, out[0])

    def hooked_attention(
        self, blk: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks, explicit: bool
    ) -> torch.Tensor:
        return self.attn_output(blk.attention, attention_heads(self_attention(blk), x, names, hooks, explicit))

    @staticmethod
    def attn_output(attention: nn.Module, z: torch.Tensor) -> torch.Tensor:
        out = attention.output
        return out.dropout(out.dense(z))

    def attn_branch(self, blk: nn.Module, a: torch.Tensor) -> torch.Tensor:
        return blk.drop_path(a) if hasattr(blk, "drop_path") else a

    def mlp(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        out = blk.output
        return out.dropout(out.dense(blk.intermediate(x)))

    def hooked_mlp(self, blk: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks) -> torch.Tensor:
        inter, out = blk.intermediate, blk.output
        h = hooks(names["mlp_post"], inter.intermediate_act_fn(hooks(names["mlp_pre"], inter.dense(x))))
        if hasattr(inter, "dropout"):
            h = inter.dropout(h)
        return out.dropout(out.dense(h))

    def mlp_branch(self, blk: nn.Module, m: torch.Tensor) -> torch.Tensor:
        return blk.drop_path(m) if hasattr(blk, "drop_path") else m


def bert_out_projection(blk: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    dense = blk.attention.output.dense
    return dense.weight, dense.bias


def bert_mlp_out_weight(blk: nn.Module) -> torch.Tensor:
    return blk.output.dense.weight


def divided(blk: nn.Module) -> bool:
    """Whether a TimeSformer layer runs divided space-time attention (a temporal, then a spatial attention)."""
    return getattr(blk, "attention_type", None) == "divided_space_time"


def divided_block(
    parts: BertStyleBlocks, blk: nn.Module, names: dict[str, str], time_names: dict[str, str],
    keys: frozenset[str], x: torch.Tensor, hooks: ActiveHooks, frames: int, grid: tuple[int, int],
) -> torch.Tensor:
    """One TimeSformer divided space-time block with hooks, the order of operations the layer's own."""
    time_keys = frozenset(k for k, n in time_names.items() if hooks.active(n)) if hooks else frozenset()
    if not keys and not time_keys:
        return parts.plain_block(blk, x)
    if keys <= BLOCK_EDGES and not time_keys:
        return hooks(names["resid_post"], parts.plain_block(blk, hooks(names["resid_pre"], x)))
    x = hooks(names["resid_pre"], x)
    B, _, d = x.shape
    T, (rows, cols) = frames, grid
    P = rows * cols
    # temporal attention: each patch over its own frames (the tokens are (row, col, frame) ordered)
    h = hooks(time_names["ln_time"], blk.temporal_layernorm(x[:, 1:])).reshape(B * P, T, d)
    attn = blk.temporal_attention
    if time_keys & ATTN_INNER:  # TimeSformer's attention is explicit already: the same softmax either way
        z = attention_heads(attn.attention, h, time_names, Batched(hooks, B), True)
        a = parts.attn_output(attn, z)
    else:
        a = attn(h)[0]
    a = blk.temporal_dense(blk.drop_path(a).reshape(B, P * T, d))
    a = hooks(time_names["attn_time_out"], torch.cat([torch.zeros_like(x[:, :1]), a], dim=1))
    x = hooks(time_names["resid_mid_time"], x + a)
    # spatial attention: each frame's patches with its own copy of CLS
    cls = x[:, :1].repeat(1, T, 1).reshape(B * T, 1, d)
    patches = x[:, 1:].reshape(B, rows, cols, T, d).permute(0, 3, 1, 2, 4).reshape(B * T, P, d)
    s = torch.cat((cls, patches), 1)
    s = hooks(names["ln1"], parts.ln1(blk, s).reshape(B, T, 1 + P, d)).reshape(B * T, 1 + P, d)
    if keys & ATTN_INNER:
        z = attention_heads(self_attention(blk), s, names, Batched(hooks, B), bool(keys & EXPLICIT_ATTN))
        a = parts.attn_output(blk.attention, z)
    else:
        a = parts.attention(blk, s)
    a = blk.drop_path(a)
    cls_out = a[:, 0].reshape(B, T, d).mean(1, keepdim=True)
    a = a[:, 1:].reshape(B, T, rows, cols, d).permute(0, 2, 3, 1, 4).reshape(B, P * T, d)
    a = hooks(names["attn_out"], torch.cat((cls_out, a), 1))
    x = hooks(names["resid_mid"], x + a)
    h = hooks(names["ln2"], parts.ln2(blk, x))
    m = parts.hooked_mlp(blk, h, names, hooks) if keys & MLP_INNER else parts.mlp(blk, h)
    m = hooks(names["mlp_out"], parts.mlp_branch(blk, m))
    return hooks(names["resid_post"], x + m)


class Batched:
    """Hooks seen with the clip's batch axis first: a divided attention runs on ``[batch * group, ...]`` (group =
    patches for the temporal attention, frames for the spatial one); each hook sees ``[batch, group, ...]``."""

    def __init__(self, hooks: ActiveHooks, batch: int) -> None:
        self.hooks, self.batch = hooks, batch

    def __call__(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if not self.hooks.active(name):
            return x
        seen = x.reshape(self.batch, x.shape[0] // self.batch, *x.shape[1:])
        out = self.hooks(name, seen)
        return x if out is seen else out.reshape(x.shape)
