"""open_clip ``CLIP`` models whose image tower is open_clip's ``VisionTransformer`` (plain or custom blocks,
CLS or average pooling, CoCa's attentional pool), or that tower alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import HookedViTConfig
from ..hook_points import ActiveHooks
from .base import SUPPORTED_FAMILIES, Adapter, UnsupportedModelError
from .open_clip_blocks import OpenClipBlocks, block_mlp_out_weight, block_out_projection, check_blocks, mlp_width
from .open_clip_text import OpenClipText
from .timm_parts import pair


def vision_tower(module: nn.Module) -> nn.Module | None:
    """The open_clip ``VisionTransformer`` of a CLIP model, or the module itself if it is one."""
    from open_clip.transformer import VisionTransformer

    if isinstance(module, VisionTransformer):
        return module
    visual = getattr(module, "visual", None)
    if isinstance(visual, VisionTransformer):
        return visual
    return None


def is_open_clip(module: nn.Module) -> bool:
    try:
        import open_clip  # noqa: F401
    except ImportError:
        return False
    return vision_tower(module) is not None or type(module).__module__.startswith("open_clip")


class OpenClipViTAdapter(OpenClipText, OpenClipBlocks, Adapter):
    family = "open_clip"

    def __init__(self, model: nn.Module, model_name: str | None = None) -> None:
        visual = vision_tower(model)
        if visual is None:
            kind = type(getattr(model, "visual", model)).__name__
            cnn = " (a convolutional network: no tokens and attention heads to hook)" if "ResNet" in kind else ""
            raise UnsupportedModelError(
                f"this open_clip model's image tower is {kind}{cnn}; supported: {SUPPORTED_FAMILIES}."
            )
        if visual.attn_pool is not None and (visual.attn_pool_contrastive is not None or visual.pool_type != "tok"):
            raise UnsupportedModelError(
                "open_clip towers with 'parallel' / 'cascade' attentional pooling are open_clip work in progress "
                "(its own code calls them untested); the CoCa pool (one pooler, first query) is supported."
            )
        if not getattr(visual.transformer, "batch_first", True):
            raise UnsupportedModelError(
                "this open_clip tower runs its transformer sequence-first (an old open_clip); "
                "upgrade open_clip (pip install -U open_clip_torch) to get batch-first blocks."
            )
        check_blocks(visual.transformer.resblocks, "image")
        self.clip = model if model is not visual else None
        self.tower = visual
        self.blocks = visual.transformer.resblocks
        first = self.blocks[0]
        width = int(visual.transformer.width)
        heads = int(first.attn.num_heads)
        proj = visual.proj
        pooled_width = int(visual.ln_post.normalized_shape[0])
        self.cfg = HookedViTConfig(
            family="open_clip",
            model_name=model_name,
            n_layers=len(self.blocks),
            n_heads=heads,
            d_model=width,
            d_head=width // heads,
            d_mlp=mlp_width(first),
            patch_size=pair(visual.patch_size),
            image_size=pair(visual.image_size),
            grid=pair(visual.grid_size),
            n_prefix_tokens=1,
            has_cls=True,
            n_registers=0,
            n_classes=None,
            d_output=int(proj.shape[1]) if proj is not None else pooled_width,
            pooling="attention" if visual.attn_pool is not None else {"tok": "token"}.get(visual.pool_type, visual.pool_type),
            readout="text" if self.clip is not None else "none",
        )
        # CoCa normalises the pooled queries; final_ln_after_pool towers the pooled vector
        self.norm_after_pool = bool(visual.final_ln_after_pool) or visual.attn_pool is not None
        super().__init__()

    @property
    def output_hook(self) -> str:
        return "hook_image_embed"

    # ----- forward parts -----
    def plain_forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.tower(pixels)
        return out[0] if isinstance(out, tuple) else out  # output_tokens=True towers: the embedding

    def embed(self, pixels: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        v = self.tower
        x = v.conv1(pixels)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [batch, patch, width]
        x = hooks("hook_embed", x)
        cls = v.class_embedding.view(1, 1, -1).expand(x.shape[0], -1, -1).to(x.dtype)
        x = torch.cat([cls, x], dim=1)
        pos = v.positional_embedding.to(x.dtype)
        if hooks.active("hook_pos_embed"):
            pos = hooks("hook_pos_embed", pos.expand(x.shape[0], -1, -1))
        x = x + pos
        x = v.patch_dropout(x)
        return v.ln_pre(x)

    def head(self, resid: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        v = self.tower
        if v.attn_pool is not None:
            pooled, _ = v._global_pool(hooks("ln_final.hook_normalized", v.ln_post(v.attn_pool(resid))))
        elif v.final_ln_after_pool:
            pooled, _ = v._global_pool(resid)
            pooled = hooks("ln_final.hook_normalized", v.ln_post(pooled))
        else:
            x = hooks("ln_final.hook_normalized", v.ln_post(resid))
            pooled, _ = v._global_pool(x)
        if v.proj is not None:
            pooled = pooled @ v.proj
        return hooks("hook_image_embed", pooled)

    # ----- the readout in parts -----
    def final_norm(self) -> nn.Module:
        return self.tower.ln_post

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        v = self.tower
        pooled, _ = v._global_pool(v.attn_pool(x) if v.attn_pool is not None else x)
        return pooled

    def pool_each(self, x: torch.Tensor) -> torch.Tensor:
        """CoCa's attentional pooler with one key: every query reads that token's value (``ln_k``, ``v``, ``out``)."""
        pool = self.tower.attn_pool
        if pool is None:
            return x
        mha = pool.attn
        e = mha.embed_dim
        w_v = mha.in_proj_weight[2 * e:] if mha._qkv_same_embed_dim else mha.v_proj_weight
        b_v = mha.in_proj_bias[2 * e:] if mha.in_proj_bias is not None else None
        return mha.out_proj(F.linear(pool.ln_k(x), w_v, b_v))

    def pool_weights(self) -> torch.Tensor | None:
        if self.tower.attn_pool is not None:
            return None
        n = self.cfg.n_tokens
        w = torch.zeros(n)
        if self.tower.pool_type == "tok":
            w[0] = 1.0
        elif self.tower.pool_type == "avg":
            w[1:] = 1.0 / (n - 1)
        else:
            return None
        return w

    def projection(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        proj = self.tower.proj
        return (proj.T, None) if proj is not None else (None, None)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        proj = self.tower.proj
        return x @ proj if proj is not None else x

    def mlp_out_weight(self, layer: int) -> torch.Tensor | None:
        return block_mlp_out_weight(self.blocks[layer])

    def attn_out_projection(self, layer: int) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        return block_out_projection(self.blocks[layer])

    def block_norms(self, layer: int) -> tuple[nn.Module, nn.Module]:
        blk = self.blocks[layer]
        return blk.ln_1, blk.ln_2

    # ----- images -----
    def image_transform(self) -> Callable[[Any], torch.Tensor]:
        return open_clip_transform(self.clip if self.clip is not None else self.tower, self.cfg.image_size)

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        cfg = preprocess_cfg(self.clip if self.clip is not None else self.tower, self.cfg.image_size)
        return tuple(cfg["mean"]), tuple(cfg["std"])


def preprocess_cfg(model: nn.Module, size: tuple[int, int]) -> dict[str, Any]:
    """open_clip's preprocessing config of ``model`` (CLIP mean and std when it has none) at ``size``."""
    from open_clip.model import get_model_preprocess_cfg

    cfg = dict(get_model_preprocess_cfg(model))
    cfg["size"] = size
    cfg.setdefault("mean", (0.48145466, 0.4578275, 0.40821073))
    cfg.setdefault("std", (0.26862954, 0.26130258, 0.27577711))
    return cfg


def open_clip_transform(model: nn.Module, size: tuple[int, int]) -> Callable[[Any], torch.Tensor]:
    """open_clip's eval transform for ``model`` at ``size``."""
    from open_clip.transform import image_transform

    cfg = preprocess_cfg(model, size)
    kwargs = {k: cfg[k] for k in ("resize_mode", "interpolation", "fill_color") if k in cfg}
    return image_transform(cfg["size"], is_train=False, mean=cfg["mean"], std=cfg["std"], **kwargs)
