"""timm ``VisionTransformer`` and its subclasses: plain, post-norm and parallel blocks, plain and differential
attention, plain and gated MLPs, CLS / distillation / register tokens or none, token / average / attention pools.

Hooks inside blocks follow :mod:`.timm_parts` and :mod:`.timm_parallel`. Post-norm blocks (``ResPostBlock``)
normalise each branch's output instead of its input, so there ``ln1`` / ``ln2.hook_normalized`` equal the
stream they read (no norm) and the norm is part of ``hook_attn_out`` / ``hook_mlp_out``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config import HookedViTConfig
from ..hook_points import ActiveHooks
from . import timm_parallel as parallel
from . import timm_parts as parts
from .base import SUPPORTED_FAMILIES, Adapter, UnsupportedModelError

_POST_NORM = ("ResPostBlock", "EvaBlockPostNorm")


def is_timm_vit(module: nn.Module) -> bool:
    from timm.models.vision_transformer import VisionTransformer

    return isinstance(module, VisionTransformer)


def hooked_pos_embed(m: nn.Module, x: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
    """timm's ``_pos_embed`` (ViT, DeiT distilled, Eva) with ``hook_pos_embed`` on the embedding as added,
    batch-expanded: ``[batch, patches, d]`` when prefix tokens get none (``no_embed_class``), else ``[batch, pos, d]``."""
    from timm.layers import resample_abs_pos_embed

    to_cat = [t.expand(x.shape[0], -1, -1) for t in (m.cls_token, getattr(m, "dist_token", None), m.reg_token)
              if t is not None]
    if m.dynamic_img_size:
        B, H, W, C = x.shape
        pos_embed = resample_abs_pos_embed(
            m.pos_embed, new_size=(H, W), old_size=m.patch_embed.grid_size,
            num_prefix_tokens=0 if m.no_embed_class else m.num_prefix_tokens,
        )
        x = x.view(B, -1, C)
    else:
        pos_embed = m.pos_embed
    if m.no_embed_class:
        x = x + hooks("hook_pos_embed", pos_embed.expand(x.shape[0], -1, -1))
        if to_cat:
            x = torch.cat(to_cat + [x], dim=1)
    else:
        if to_cat:
            x = torch.cat(to_cat + [x], dim=1)
        x = x + hooks("hook_pos_embed", pos_embed.expand(x.shape[0], -1, -1))
    return m.pos_drop(x)


def hooked_patch_embed(m: nn.Module, pixels: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
    """``patch_embed`` with ``hook_embed`` ``[batch, patch, d_model]`` (dynamic-size models emit NHWC)."""
    x = m.patch_embed(pixels)
    if hooks.active("hook_embed"):
        flat = x.reshape(x.shape[0], -1, x.shape[-1])
        x = hooks("hook_embed", flat).reshape(x.shape)
    return x


class TimmViTAdapter(Adapter):
    family = "timm"
    #: the block classes this adapter steps through (parallel blocks have their own walk)
    block_types: tuple[str, ...] = ("Block", "ResPostBlock") + parallel.PARALLEL_BLOCKS

    def __init__(self, model: nn.Module, model_name: str | None = None) -> None:
        self.tower = model
        self.blocks = model.blocks
        self.distilled = getattr(model, "dist_token", None) is not None
        kinds = [self.check_block(i, blk) for i, blk in enumerate(model.blocks)]
        self.gated_mlp = any(k in ("glu", "swiglu", "geglu") for k in kinds)
        self.has_pos_embed = getattr(model, "pos_embed", None) is not None
        n_heads, d_head, d_mlp = self.block_shape(model.blocks[0])
        pe = model.patch_embed
        grid, image = parts.pair(pe.grid_size), parts.pair(pe.img_size)
        n_classes = int(getattr(model, "num_classes", 0) or 0)
        pooling = "map" if getattr(model, "attn_pool", None) is not None else str(model.global_pool or "none")
        n_reg = int(getattr(model, "num_reg_tokens", 0) or (model.reg_token.shape[1] if model.reg_token is not None else 0))
        self.cfg = HookedViTConfig(
            family="timm",
            model_name=model_name or (getattr(model, "pretrained_cfg", None) or {}).get("architecture"),
            n_layers=len(model.blocks),
            n_heads=n_heads,
            d_model=int(model.embed_dim),
            d_head=d_head,
            d_mlp=d_mlp,
            patch_size=(image[0] // grid[0], image[1] // grid[1]),
            image_size=image,
            grid=grid,
            n_prefix_tokens=int(model.num_prefix_tokens),
            has_cls=model.cls_token is not None,
            n_registers=n_reg,
            n_classes=n_classes or None,
            d_output=n_classes or int(model.num_features),
            pooling="cls+distill" if self.distilled else pooling,
            readout="classes" if n_classes else "none",
            prefix_labels=("CLS", "DIST") if self.distilled else None,
        )
        super().__init__()

    # ----- what a block is made of -----
    def check_block(self, i: int, blk: nn.Module) -> str:
        """Refuse a block this adapter cannot step through; return its MLP kind."""
        kind = type(blk).__name__
        if kind not in self.block_types:
            raise UnsupportedModelError(
                f"block {i} of this timm model is {kind}; supported: {SUPPORTED_FAMILIES}.")
        if parallel.is_parallel(blk):
            if kind == "ParallelThingsBlock":
                for branch in blk.attns:
                    if parts.attention_kind(branch.attn) != "plain" or parts.out_projection(branch.attn) is None:
                        raise UnsupportedModelError(f"block {i}: parallel branches with {type(branch.attn).__name__}")
                return parts.mlp_kind(blk.ffns[0].mlp)
            return "plain"
        parts.attention_kind(blk.attn)
        return parts.mlp_kind(blk.mlp)

    def block_shape(self, blk: nn.Module) -> tuple[int, int, int]:
        """``(n_heads, d_head, d_mlp)`` as the hooks see them."""
        if parallel.is_parallel(blk):
            return parallel.shape(blk)
        n_heads, d_head = parts.attention_shape(blk.attn)
        return n_heads, d_head, parts.mlp_width(blk.mlp)

    @property
    def output_hook(self) -> str:
        return "hook_logits" if self.cfg.n_classes else "hook_pooled"

    # ----- forward parts -----
    def plain_forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.tower(pixels)

    def embed(self, pixels: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        m = self.tower
        x = hooked_patch_embed(m, pixels, hooks)
        x = hooked_pos_embed(m, x, hooks) if hooks.active("hook_pos_embed") else m._pos_embed(x)
        x = m.patch_drop(x)
        return m.norm_pre(x)

    def block(self, layer: int, x: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        blk = self.blocks[layer]
        if parallel.is_parallel(blk):
            keys = hooks.block_keys[layer] if hooks else frozenset()
            return parallel.parallel_block(blk, self.names[layer], keys, x, hooks)
        return super().block(layer, x, hooks)

    def head(self, resid: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        m = self.tower
        x = hooks("ln_final.hook_normalized", m.norm(resid))
        return hooks(self.output_hook, m.forward_head(x))

    # ----- the readout in parts -----
    def final_norm(self) -> nn.Module:
        return self.tower.norm

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.distilled:  # the CLS and distillation tokens, side by side for their two heads
            return torch.cat([x[:, 0], x[:, 1]], dim=-1)
        return self.tower.pool(x)

    def pool_each(self, x: torch.Tensor) -> torch.Tensor:
        return parts.pool_each(getattr(self.tower, "attn_pool", None), x)

    def pool_weights(self) -> torch.Tensor | None:
        m = self.tower
        n = self.cfg.n_tokens
        if getattr(m, "attn_pool", None) is not None or self.distilled:
            return None
        w = torch.zeros(n)
        if m.global_pool == "token":
            w[0] = 1.0
        elif m.global_pool == "avg":
            first = 0 if getattr(m, "pool_include_prefix", False) else self.cfg.n_prefix_tokens
            w[first:] = 1.0 / (n - first)
        else:  # max, avgmax, or no pooling at all: not a weighted sum of tokens
            return None
        return w

    def pool_slot_weights(self) -> torch.Tensor | None:
        if not self.distilled:
            return super().pool_slot_weights()
        w = torch.zeros(2, self.cfg.n_tokens)
        w[0, 0] = w[1, 1] = 1.0  # the CLS token for the head, the distillation token for head_dist
        return w

    def pooled_projection(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        m = self.tower
        if not self.distilled:
            return self.projection()
        if not (isinstance(m.head, nn.Linear) and isinstance(m.head_dist, nn.Linear)):
            return None, None
        # the model averages its two heads' logits
        return torch.cat([m.head.weight, m.head_dist.weight], dim=1) / 2, (m.head.bias + m.head_dist.bias) / 2

    def head_norm(self) -> nn.Module:
        # the distilled head reads its two tokens as they are (timm's forward_head there has no fc_norm)
        return nn.Identity() if self.distilled else self.tower.fc_norm

    def projection(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        m = self.tower
        if self.distilled and isinstance(m.head, nn.Linear):
            # a token read in both slots: the mean of the two heads
            return (m.head.weight + m.head_dist.weight) / 2, (m.head.bias + m.head_dist.bias) / 2
        if isinstance(m.head, nn.Linear):
            return m.head.weight, m.head.bias
        return None, None

    def project(self, x: torch.Tensor) -> torch.Tensor:
        m = self.tower
        if not self.distilled:
            return m.head(m.head_drop(x))
        d = self.cfg.d_model
        cls, dist = (x[..., :d], x[..., d:]) if x.shape[-1] == 2 * d else (x, x)
        return (m.head(m.head_drop(cls)) + m.head_dist(m.head_drop(dist))) / 2

    def no_text_reason(self) -> str:
        return "text encoding needs a whole open_clip CLIP model; this wraps a timm classifier, which has no text tower"

    def mlp_out_weight(self, layer: int) -> torch.Tensor | None:
        blk = self.blocks[layer]
        if parallel.is_parallel(blk):
            return parallel.out_weight(blk)
        if type(blk).__name__ in _POST_NORM:
            return None
        w = parts.mlp_out_weight(blk.mlp)
        return w * blk.ls2.gamma[:, None] if w is not None and hasattr(blk.ls2, "gamma") else w

    def attn_out_projection(self, layer: int) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        blk = self.blocks[layer]
        if parallel.is_parallel(blk):
            return parallel.out_projection(blk)
        if type(blk).__name__ in _POST_NORM:
            return None
        return parts.out_projection(blk.attn)

    def block_norms(self, layer: int) -> tuple[nn.Module, nn.Module]:
        blk = self.blocks[layer]
        kind = type(blk).__name__
        if kind in _POST_NORM:  # attention and MLP read the stream itself; their norms act on what they write
            return nn.Identity(), nn.Identity()
        if kind == "ParallelThingsBlock":
            raise UnsupportedModelError(
                f"block {layer} runs {blk.num_parallel} attention branches and {blk.num_parallel} MLPs side by side, "
                "each behind its own norm: there is no one norm before its attention or its MLP to apply")
        if parallel.is_parallel(blk):  # one norm feeds attention and MLP alike
            return blk.in_norm, blk.in_norm
        return blk.norm1, blk.norm2

    def mlp_reads_resid_mid(self, layer: int) -> bool:
        blk = self.blocks[layer]
        return not parallel.is_parallel(blk) or type(blk).__name__ == "ParallelThingsBlock"

    def heads_split_by_source(self, layer: int) -> bool:
        blk = self.blocks[layer]
        if parallel.is_parallel(blk):
            return type(blk).__name__ != "DiffParallelScalingBlock"
        return parts.attention_kind(blk.attn) != "diff"

    # ----- block parts -----
    def ln1(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return x if type(blk).__name__ in _POST_NORM else blk.norm1(x)

    def ln2(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return x if type(blk).__name__ in _POST_NORM else blk.norm2(x)

    def attention(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk.attn(x)

    def fused(self, blk: nn.Module) -> bool:
        return bool(blk.attn.fused_attn)

    def hooked_attention(
        self, blk: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks, explicit: bool
    ) -> torch.Tensor:
        return parts.hooked_attention(blk.attn, x, names, hooks, explicit)

    def attn_branch(self, blk: nn.Module, a: torch.Tensor) -> torch.Tensor:
        if parallel.is_parallel(blk):
            return parallel.branch_scale(blk, a)
        if type(blk).__name__ in _POST_NORM:
            return blk.drop_path1(blk.norm1(a))
        return blk.drop_path1(blk.ls1(a))

    def mlp(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk.mlp(x)

    def hooked_mlp(self, blk: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks) -> torch.Tensor:
        return parts.hooked_mlp(blk.mlp, x, names, hooks)

    def mlp_branch(self, blk: nn.Module, m: torch.Tensor) -> torch.Tensor:
        if type(blk).__name__ in _POST_NORM:
            return blk.drop_path2(blk.norm2(m))
        return blk.drop_path2(blk.ls2(m))

    # ----- images and labels -----
    def data_config(self) -> dict[str, Any]:
        return parts.timm_transform(self.tower, self.cfg.image_size)[1]

    def image_transform(self) -> Callable[[Any], torch.Tensor]:
        return parts.timm_transform(self.tower, self.cfg.image_size)[0]

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        config = self.data_config()
        return tuple(config["mean"]), tuple(config["std"])

    def labels(self) -> list[str] | None:
        return parts.imagenet_labels(self.tower, self.cfg.n_classes)


def with_config(cfg: HookedViTConfig, **changes: Any) -> HookedViTConfig:
    """``cfg`` with some fields replaced (the config is frozen)."""
    return dataclasses.replace(cfg, **changes)
