"""open_clip's transformer blocks stepped through with hooks, for the image and the text tower alike.

``ResidualAttentionBlock`` uses ``nn.MultiheadAttention``; ``CustomResidualAttentionBlock`` uses open_clip's
own ``Attention`` with q/k LayerNorm (``qk_norm``), scaled cosine attention, per-head scales, an inner norm
(``scale_attn_inner``), a norm after attention (``scale_attn``) and a norm inside the MLP (``scale_fc``).

* Scaled cosine attention: ``hook_q`` / ``hook_k`` are the unit-normalised q and k (what enters the dot product)
  and ``hook_attn_scores`` is their cosine times the head's learned scale.
* ``hook_z`` is each head's pattern-weighted values, before a per-head scale (which is folded into the
  output projection for ``head_writes``). A norm after the heads (``ln_inner``, ``ln_attn``) leaves the heads
  without separate writes: ``attn_out_projection`` is ``None`` there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..hook_points import ActiveHooks
from .base import UnsupportedModelError, explicit_attention


def check_blocks(blocks: nn.ModuleList, where: str) -> None:
    """Refuse a block we cannot step through, naming it."""
    from open_clip.transformer import CustomResidualAttentionBlock, ResidualAttentionBlock

    for i, blk in enumerate(blocks):
        if isinstance(blk, ResidualAttentionBlock) and isinstance(blk.attn, nn.MultiheadAttention):
            if not blk.attn._qkv_same_embed_dim or blk.attn.in_proj_bias is None:
                raise UnsupportedModelError(f"{where} block {i}: attention without a packed, biased in-projection")
            if hasattr(blk, "ln_1_kv"):
                raise UnsupportedModelError(f"{where} block {i} is a cross-attention block")
        elif not isinstance(blk, CustomResidualAttentionBlock):
            raise UnsupportedModelError(f"{where} block {i} is {type(blk).__name__}, not an open_clip residual block")


def _custom(blk: nn.Module) -> bool:
    return not isinstance(blk.attn, nn.MultiheadAttention)


def _additive(mask: torch.Tensor | None, batch: int, heads: int, like: torch.Tensor) -> torch.Tensor | None:
    """A mask as open_clip's attention adds it: float ``[L, L]`` or ``[batch, head, L, L]``."""
    if mask is None:
        return None
    if mask.ndim == 3:  # [batch * head, L, L]
        mask = mask.reshape(batch, heads, mask.shape[-2], mask.shape[-1])
    if mask.dtype == torch.bool:
        return torch.zeros_like(mask, dtype=like.dtype).masked_fill_(mask, float("-inf"))
    return mask.to(like.dtype)


class OpenClipBlocks:
    """Block parts for open_clip residual blocks; ``attn_mask`` is the text tower's causal / padding mask."""

    attn_mask: torch.Tensor | None = None

    def plain_block(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk(x, attn_mask=self.attn_mask)

    def ln1(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk.ln_1(x)

    def ln2(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk.ln_2(x)

    def fused(self, blk: nn.Module) -> bool:
        return not _custom(blk) or blk.attn.logit_scale is None

    def attention(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if _custom(blk):
            return blk.attn(x, attn_mask=self.attn_mask)
        return blk.attention(q_x=x, attn_mask=self.attn_mask)

    def hooked_attention(
        self, blk: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks, explicit: bool
    ) -> torch.Tensor:
        attn = blk.attn
        B, N, C = x.shape
        H = attn.num_heads
        D = C // H
        # the packed in-projection, then [batch, pos, head, d_head] directly
        q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).view(B, N, 3, H, D).unbind(2)
        mask = _additive(self.attn_mask, B, H, x)
        if not _custom(blk):
            scale, drop = D**-0.5, attn.dropout if attn.training else 0.0
        elif attn.logit_scale is not None:  # scaled cosine attention: unit q and k, a learned scale per head
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
            scale = torch.clamp(attn.logit_scale, max=attn.logit_scale_max).exp()
            drop = attn.attn_drop.p if attn.training else 0.0
        else:
            q, k = attn.ln_q(q), attn.ln_k(k)
            scale, drop = attn.scale, attn.attn_drop.p if attn.training else 0.0
        q = hooks(names["q"], q).transpose(1, 2)
        k = hooks(names["k"], k).transpose(1, 2)
        v = hooks(names["v"], v).transpose(1, 2)
        if explicit:
            z = explicit_attention(q, k, v, scale, names, hooks, nn.Dropout(drop), mask=mask)
        else:
            z = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        z = hooks(names["z"], z.transpose(1, 2))
        if not _custom(blk):
            return attn.out_proj(z.reshape(B, N, C))
        if attn.head_scale is not None:
            z = z * attn.head_scale.view(1, 1, H, 1)
        return attn.out_drop(attn.out_proj(attn.ln_inner(z.reshape(B, N, C))))

    def attn_branch(self, blk: nn.Module, a: torch.Tensor) -> torch.Tensor:
        return blk.ls_1(blk.ln_attn(a)) if _custom(blk) else blk.ls_1(a)

    def mlp(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk.mlp(x)

    def hooked_mlp(self, blk: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks) -> torch.Tensor:
        mlp = blk.mlp
        h = hooks(names["mlp_pre"], mlp.c_fc(x))
        h = hooks(names["mlp_post"], mlp.gelu(h))
        if hasattr(mlp, "ln"):
            h = mlp.ln(h)
        return mlp.c_proj(h)

    def mlp_branch(self, blk: nn.Module, m: torch.Tensor) -> torch.Tensor:
        return blk.ls_2(m)


def block_mlp_out_weight(blk: nn.Module) -> torch.Tensor | None:
    """``c_proj`` with the layer scale folded in, or ``None`` when a norm sits inside the MLP."""
    mlp = blk.mlp
    if not isinstance(getattr(mlp, "ln", nn.Identity()), nn.Identity):
        return None
    w = mlp.c_proj.weight
    return w * blk.ls_2.gamma[:, None] if hasattr(blk.ls_2, "gamma") else w


def block_out_projection(blk: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """``(W_O, b_O)`` from ``hook_z`` (heads concatenated) to the attention output, per-head scales folded in."""
    attn = blk.attn
    if not _custom(blk):
        return attn.out_proj.weight, attn.out_proj.bias
    if not isinstance(attn.ln_inner, nn.Identity) or not isinstance(blk.ln_attn, nn.Identity):
        return None
    w = attn.out_proj.weight
    if attn.head_scale is not None:
        H = attn.num_heads
        w = (w.view(w.shape[0], H, -1) * attn.head_scale.view(1, H, 1)).reshape(w.shape)
    return w, attn.out_proj.bias


def mlp_width(blk: nn.Module) -> int:
    return int(blk.mlp.c_fc.out_features)

