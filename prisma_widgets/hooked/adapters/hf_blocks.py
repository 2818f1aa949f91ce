"""Hugging Face encoder layers stepped through with hooks: CLIP / SigLIP (image and text), ViT, DINOv2.

The attention's fused path calls the model's own attention function (``config._attn_implementation``: SDPA,
eager, flash ...), so q/k/v/z hooks change nothing numerically; the pattern and scores use the explicit
softmax. ``hook_q`` / ``hook_k`` / ``hook_v`` are the projections in ``[batch, pos, head, d_head]``; DINOv2's
SwiGLU MLP has ``mlp.hook_pre`` (the gate), ``mlp.hook_pre_linear`` (the up projection) and ``mlp.hook_post``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..hook_points import ActiveHooks
from .base import UnsupportedModelError, explicit_attention

# per layer class: (norm before attention, attention, its output projection, norm before MLP,
#                   what follows attention, what follows the MLP)
LAYOUTS: dict[str, tuple[str, str, str, str, tuple[str, ...], tuple[str, ...]]] = {
    "CLIPEncoderLayer": ("layer_norm1", "self_attn", "out_proj", "layer_norm2", (), ()),
    "SiglipEncoderLayer": ("layer_norm1", "self_attn", "out_proj", "layer_norm2", (), ()),
    "ViTLayer": ("layernorm_before", "attention", "o_proj", "layernorm_after", ("dropout",), ("dropout",)),
    "Dinov2Layer": ("norm1", "attention", "o_proj", "norm2", ("layer_scale1", "drop_path"), ("layer_scale2", "drop_path")),
    "Dinov2WithRegistersLayer": ("norm1", "attention", "o_proj", "norm2", ("layer_scale1", "drop_path"),
                                 ("layer_scale2", "drop_path")),
}


def layout(blk: nn.Module) -> tuple[str, str, str, str, tuple[str, ...], tuple[str, ...]]:
    kind = type(blk).__name__
    if kind not in LAYOUTS:
        raise UnsupportedModelError(f"Hugging Face layer {kind} has no hooks yet ({', '.join(LAYOUTS)} do)")
    return LAYOUTS[kind]


def attn_of(blk: nn.Module) -> nn.Module:
    return getattr(blk, layout(blk)[1])


def heads_of(attn: nn.Module) -> tuple[int, int]:
    """``(n_heads, d_head)`` of an HF attention module."""
    n = getattr(attn, "num_heads", None) or getattr(attn, "num_attention_heads")
    return int(n), int(attn.head_dim)


def mlp_gated(mlp: nn.Module) -> bool:
    return hasattr(mlp, "gate_proj")


def mlp_width(mlp: nn.Module) -> int:
    return int(mlp.gate_proj.out_features if mlp_gated(mlp) else mlp.fc1.out_features)


def _scale_gamma(blk: nn.Module, names: tuple[str, ...]) -> torch.Tensor | None:
    for name in names:
        module = getattr(blk, name)
        if hasattr(module, "lambda1"):
            return module.lambda1
    return None


def block_mlp_out_weight(blk: nn.Module) -> torch.Tensor:
    mlp = blk.mlp
    w = mlp.down_proj.weight if mlp_gated(mlp) else mlp.fc2.weight
    gamma = _scale_gamma(blk, layout(blk)[5])
    return w * gamma[:, None] if gamma is not None else w


def block_out_projection(blk: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    out = getattr(attn_of(blk), layout(blk)[2])
    return out.weight, out.bias


def _additive(mask: torch.Tensor | None, causal: bool, q: torch.Tensor) -> torch.Tensor | None:
    """The mask as added to the scores: ``-inf`` where a query may not look."""
    if mask is not None:
        if mask.dtype == torch.bool:
            return torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill_(~mask, float("-inf"))
        return mask.to(q.dtype)
    if causal:
        n = q.shape[-2]
        return torch.full((n, n), float("-inf"), dtype=q.dtype, device=q.device).triu_(1)
    return None


class HFBlocks:
    """Block parts for HF encoder layers; ``attn_mask`` / ``attn_kwargs`` are what the model passes its layers."""

    attn_mask: torch.Tensor | None = None
    attn_kwargs: dict[str, Any] = {}

    def plain_block(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk(x, self.attn_mask, **self.attn_kwargs)

    def ln1(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return getattr(blk, layout(blk)[0])(x)

    def ln2(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return getattr(blk, layout(blk)[3])(x)

    def fused(self, blk: nn.Module) -> bool:
        return True

    def attention(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return attn_of(blk)(x, attention_mask=self.attn_mask, **self.attn_kwargs)[0]

    def hooked_attention(
        self, blk: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks, explicit: bool
    ) -> torch.Tensor:
        attn = attn_of(blk)
        B, N, _ = x.shape
        H, D = heads_of(attn)
        scale = getattr(attn, "scale", None) or attn.scaling
        q = hooks(names["q"], attn.q_proj(x).view(B, N, H, D)).transpose(1, 2)
        k = hooks(names["k"], attn.k_proj(x).view(B, N, H, D)).transpose(1, 2)
        v = hooks(names["v"], attn.v_proj(x).view(B, N, H, D)).transpose(1, 2)
        if explicit:
            causal = bool(self.attn_kwargs.get("is_causal", getattr(attn, "is_causal", False)))
            mask = _additive(self.attn_mask, causal, q)
            z = explicit_attention(q, k, v, scale, names, hooks, nn.Identity(), mask=mask).transpose(1, 2)
        else:
            z = self._attention_function(attn)(attn, q, k, v, self.attn_mask, dropout=0.0, scaling=scale,
                                                **self._interface_kwargs(attn))[0]
        z = hooks(names["z"], z)
        return getattr(attn, layout(blk)[2])(z.reshape(B, N, H * D))

    def _interface_kwargs(self, attn: nn.Module) -> dict[str, Any]:
        kwargs = dict(self.attn_kwargs)
        if type(attn).__name__ == "SiglipAttention":  # SigLIP passes its own flag
            kwargs.setdefault("is_causal", attn.is_causal)
        return kwargs

    @staticmethod
    def _attention_function(attn: nn.Module) -> Any:
        import sys

        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        eager = sys.modules[type(attn).__module__].eager_attention_forward
        return ALL_ATTENTION_FUNCTIONS.get_interface(attn.config._attn_implementation, eager)

    def attn_branch(self, blk: nn.Module, a: torch.Tensor) -> torch.Tensor:
        for name in layout(blk)[4]:
            a = getattr(blk, name)(a)
        return a

    def mlp(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk.mlp(x)

    def hooked_mlp(self, blk: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks) -> torch.Tensor:
        mlp = blk.mlp
        if mlp_gated(mlp):
            gate = hooks(names["mlp_pre"], mlp.gate_proj(x))
            up = hooks(names["mlp_pre_linear"], mlp.up_proj(x))
            return mlp.down_proj(hooks(names["mlp_post"], mlp.act_fn(gate) * up))
        h = hooks(names["mlp_pre"], mlp.fc1(x))
        return mlp.fc2(hooks(names["mlp_post"], mlp.activation_fn(h)))

    def mlp_branch(self, blk: nn.Module, m: torch.Tensor) -> torch.Tensor:
        for name in layout(blk)[5]:
            m = getattr(blk, name)(m)
        return m
