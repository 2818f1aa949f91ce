"""timm ``Eva``: EVA-02, the ``vit_*_rope_*`` ViTs, PE-Core, DINOv3 ViTs and their kin.

What differs from timm's ``VisionTransformer`` (everything else is inherited from :class:`TimmViTAdapter`):

* RoPE inside attention. The rotary embedding of the input's grid is computed once per forward (per block for
  timm's depth-dependent "mixed" RoPE) and passed to each block as Eva does. ``hook_q`` / ``hook_k`` are the
  rotated values (after q/k norm and RoPE, prefix tokens unrotated): what enters the dot product, so
  ``hook_pattern == softmax(q k^T / sqrt(d_head))`` and an edit of ``hook_q`` is an edit of the scores.
* Layer scale lives in ``gamma_1`` / ``gamma_2``; post-norm blocks (``EvaBlockPostNorm``) like ``ResPostBlock``.
* SwiGLU MLPs (packed ``GluMlp`` or split ``SwiGLU``, with EVA-02's norm inside): ``mlp.hook_pre`` is the gate,
  ``mlp.hook_pre_linear`` the value half, ``mlp.hook_post`` their product (before the MLP's norm).
* Attention with an inner norm (``scale_attn_inner``) or a gate has no per-head writes: ``attn_out_projection``
  is ``None`` there and ``head_writes`` says so.
"""

from __future__ import annotations

import torch
from torch import nn

from ..hook_points import ActiveHooks
from . import timm_parts as parts
from .base import SUPPORTED_FAMILIES, UnsupportedModelError
from .timm_vit import TimmViTAdapter, hooked_patch_embed, hooked_pos_embed


def is_timm_eva(module: nn.Module) -> bool:
    from timm.models.eva import Eva

    return isinstance(module, Eva)


class TimmEvaAdapter(TimmViTAdapter):
    block_types = ("EvaBlock", "EvaBlockPostNorm")

    def __init__(self, model: nn.Module, model_name: str | None = None) -> None:
        self._rope: torch.Tensor | None = None
        self._grids: dict[int, tuple[int, int]] = {}
        super().__init__(model, model_name)

    def check_block(self, i: int, blk: nn.Module) -> str:
        if type(blk).__name__ not in self.block_types:
            raise UnsupportedModelError(f"block {i} of this timm Eva is {type(blk).__name__}; supported: {SUPPORTED_FAMILIES}.")
        if parts.attention_kind(blk.attn) != "rope":
            raise UnsupportedModelError(f"block {i}: Eva attention {type(blk.attn).__name__} has no hooks yet")
        return parts.mlp_kind(blk.mlp)

    # ----- RoPE for the input's grid -----
    def rope(self, n_tokens: int, layer: int) -> torch.Tensor | None:
        """The rotary embedding a block gets for an input of ``n_tokens`` tokens (``None`` without RoPE)."""
        m = self.tower
        if m.rope is None:
            return None
        n_patches = n_tokens - self.cfg.n_prefix_tokens
        grid = self._grids.get(n_patches)
        if grid is None:
            if n_patches != self.cfg.n_patches:
                raise ValueError(f"{n_tokens} tokens do not fit this model's grid {self.cfg.grid}: start from images")
            grid = self.cfg.grid
        if m.dynamic_img_size:
            rope = m.rope.get_embed(shape=grid)
        elif hasattr(m.rope, "feat_shape"):
            rope = m.rope.get_embed()
        else:
            rope = m.rope.get_embed(shape=m.patch_embed.grid_size)
        return rope[layer] if getattr(m, "rope_mixed", False) else rope

    # ----- forward parts -----
    def embed(self, pixels: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        m = self.tower
        x = hooked_patch_embed(m, pixels, hooks)
        if x.ndim == 4:  # dynamic_img_size: NHWC; remember the grid for RoPE
            self._grids[x.shape[1] * x.shape[2]] = (int(x.shape[1]), int(x.shape[2]))
        if hooks.active("hook_pos_embed"):
            x = hooked_pos_embed(m, x, hooks)
            if m.patch_drop is not None:
                x, _ = m.patch_drop(x)
        else:
            x, _ = m._pos_embed(x)
        return m.norm_pre(x)

    def block(self, layer: int, x: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        self._rope = self.rope(x.shape[1], layer)
        try:
            return super().block(layer, x, hooks)
        finally:
            self._rope = None

    def plain_block(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk(x, rope=self._rope)

    # ----- the readout in parts -----
    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return self.tower.pool(x)

    def pool_weights(self) -> torch.Tensor | None:
        m = self.tower
        n = self.cfg.n_tokens
        if m.attn_pool is not None:
            return None
        w = torch.zeros(n)
        if m.global_pool == "token":
            w[0] = 1.0
        elif m.global_pool == "avg":
            w[self.cfg.n_prefix_tokens:] = 1.0 / self.cfg.n_patches
        else:
            return None
        return w

    def projection(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        head = self.tower.head
        return (head.weight, head.bias) if isinstance(head, nn.Linear) else (None, None)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        m = self.tower
        return m.head(m.head_drop(x))

    def mlp_out_weight(self, layer: int) -> torch.Tensor | None:
        blk = self.blocks[layer]
        if type(blk).__name__ == "EvaBlockPostNorm":
            return None
        w = parts.mlp_out_weight(blk.mlp)
        return w * blk.gamma_2[:, None] if w is not None and blk.gamma_2 is not None else w

    # ----- block parts -----
    def attention(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk.attn(x, rope=self._rope)

    def hooked_attention(
        self, blk: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks, explicit: bool
    ) -> torch.Tensor:
        return parts.hooked_attention(blk.attn, x, names, hooks, explicit, rope=self._rope)

    def attn_branch(self, blk: nn.Module, a: torch.Tensor) -> torch.Tensor:
        if type(blk).__name__ == "EvaBlockPostNorm":
            return blk.drop_path1(blk.norm1(a))
        return blk.drop_path1(blk.gamma_1 * a if blk.gamma_1 is not None else a)

    def mlp_branch(self, blk: nn.Module, m: torch.Tensor) -> torch.Tensor:
        if type(blk).__name__ == "EvaBlockPostNorm":
            return blk.drop_path2(blk.norm2(m))
        return blk.drop_path2(blk.gamma_2 * m if blk.gamma_2 is not None else m)
