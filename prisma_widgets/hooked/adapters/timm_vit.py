"""timm ``VisionTransformer`` (and subclasses with its standard pre-norm ``Block``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import HookedViTConfig
from ..hook_points import ActiveHooks
from .base import SUPPORTED_FAMILIES, Adapter, UnsupportedModelError, explicit_attention


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    a, b = value
    return (int(a), int(b))


def is_timm_vit(module: nn.Module) -> bool:
    from timm.models.vision_transformer import VisionTransformer

    return isinstance(module, VisionTransformer)


class TimmViTAdapter(Adapter):
    family = "timm"

    def __init__(self, model: nn.Module, model_name: str | None = None) -> None:
        from timm.layers import Attention, Mlp
        from timm.models.vision_transformer import Block

        self.tower = model
        self.blocks = model.blocks
        for i, blk in enumerate(model.blocks):
            if not isinstance(blk, Block) or not isinstance(blk.attn, Attention):
                raise UnsupportedModelError(
                    f"block {i} of this timm model is {type(blk).__name__} with "
                    f"{type(getattr(blk, 'attn', None)).__name__} attention; supported: {SUPPORTED_FAMILIES}."
                )
        # MLP hooks need timm's plain Mlp (fc1 -> act -> fc2); gated MLPs get block-level hooks only.
        self.has_mlp_hooks = all(type(blk.mlp) is Mlp for blk in model.blocks)
        first = model.blocks[0]
        pe = model.patch_embed
        n_classes = int(getattr(model, "num_classes", 0) or 0)
        pooling = "map" if getattr(model, "attn_pool", None) is not None else str(model.global_pool or "none")
        self.cfg = HookedViTConfig(
            family="timm",
            model_name=model_name or (getattr(model, "pretrained_cfg", None) or {}).get("architecture"),
            n_layers=len(model.blocks),
            n_heads=int(first.attn.num_heads),
            d_model=int(model.embed_dim),
            d_head=int(first.attn.head_dim),
            d_mlp=int(first.mlp.fc1.out_features) if hasattr(first.mlp, "fc1") else None,
            patch_size=_pair(pe.patch_size),
            image_size=_pair(pe.img_size),
            grid=_pair(pe.grid_size),
            n_prefix_tokens=int(model.num_prefix_tokens),
            has_cls=model.cls_token is not None,
            n_registers=int(getattr(model, "num_reg_tokens", 0) or 0),
            n_classes=n_classes or None,
            d_output=n_classes or int(model.num_features),
            pooling=pooling,
            readout="classes" if n_classes else "none",
        )
        super().__init__()

    @property
    def output_hook(self) -> str:
        return "hook_logits" if self.cfg.n_classes else "hook_pooled"

    # ----- forward parts -----
    def plain_forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.tower(pixels)

    def embed(self, pixels: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        m = self.tower
        x = m.patch_embed(pixels)
        if hooks.active("hook_embed"):
            # dynamic_img_size models emit NHWC; hooks always see [batch, patch, d_model]
            flat = x.reshape(x.shape[0], -1, x.shape[-1])
            x = hooks("hook_embed", flat).reshape(x.shape)
        x = self._pos_embed(x, hooks) if hooks.active("hook_pos_embed") else m._pos_embed(x)
        x = m.patch_drop(x)
        return m.norm_pre(x)

    def _pos_embed(self, x: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        """timm's ``_pos_embed`` with ``hook_pos_embed`` on the embedding as added, batch-expanded."""
        from timm.layers import resample_abs_pos_embed

        m = self.tower
        to_cat = []
        if m.cls_token is not None:
            to_cat.append(m.cls_token.expand(x.shape[0], -1, -1))
        if m.reg_token is not None:
            to_cat.append(m.reg_token.expand(x.shape[0], -1, -1))
        if m.pos_embed is None:
            return torch.cat(to_cat + [x.view(x.shape[0], -1, x.shape[-1])], dim=1)
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

    def head(self, resid: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        m = self.tower
        x = hooks("ln_final.hook_normalized", m.norm(resid))
        return hooks(self.output_hook, m.forward_head(x))

    # ----- the readout in parts -----
    def final_norm(self) -> nn.Module:
        return self.tower.norm

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
            first = 0 if getattr(m, "pool_include_prefix", False) else self.cfg.n_prefix_tokens
            w[first:] = 1.0 / (n - first)
        else:  # max, avgmax, or no pooling at all: not a weighted sum of tokens
            return None
        return w

    def head_norm(self) -> nn.Module:
        return self.tower.fc_norm

    def projection(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        head = self.tower.head
        if isinstance(head, nn.Linear):
            return head.weight, head.bias
        return None, None

    def project(self, x: torch.Tensor) -> torch.Tensor:
        m = self.tower
        return m.head(m.head_drop(x))

    def no_text_reason(self) -> str:
        return "text encoding needs a whole open_clip CLIP model; this wraps a timm classifier, which has no text tower"

    def mlp_out_weight(self, layer: int) -> torch.Tensor | None:
        out = getattr(self.blocks[layer].mlp, "fc2", None)
        return out.weight if out is not None else None

    def attn_out_projection(self, layer: int) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        attn = self.blocks[layer].attn
        if not isinstance(attn.norm, nn.Identity) or getattr(attn, "gate", None) is not None:
            return None
        return attn.proj.weight, attn.proj.bias

    def block_norms(self, layer: int) -> tuple[nn.Module, nn.Module]:
        blk = self.blocks[layer]
        return blk.norm1, blk.norm2

    # ----- block parts -----
    def ln1(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk.norm1(x)

    def ln2(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk.norm2(x)

    def attention(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk.attn(x)

    def fused(self, blk: nn.Module) -> bool:
        return bool(blk.attn.fused_attn)

    def hooked_attention(
        self, blk: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks, explicit: bool
    ) -> torch.Tensor:
        attn = blk.attn
        B, N, _ = x.shape
        gate = attn.gate(x).sigmoid() if getattr(attn, "gate", None) is not None else None
        qkv = attn.qkv(x).reshape(B, N, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = attn.q_norm(q), attn.k_norm(k)
        # timm keeps [batch, head, pos, d_head]; hooks see TransformerLens' [batch, pos, head, d_head]
        q = hooks.view(names["q"], q, (1, 2))
        k = hooks.view(names["k"], k, (1, 2))
        v = hooks.view(names["v"], v, (1, 2))
        if explicit:
            z = explicit_attention(q, k, v, attn.scale, names, hooks, attn.attn_drop)
        else:
            z = F.scaled_dot_product_attention(q, k, v, dropout_p=attn.attn_drop.p if attn.training else 0.0)
        z = hooks.view(names["z"], z, (1, 2))
        out = z.transpose(1, 2).reshape(B, N, attn.num_heads * attn.head_dim)
        out = attn.norm(out)
        if gate is not None:
            out = out * gate
        return attn.proj_drop(attn.proj(out))

    def attn_branch(self, blk: nn.Module, a: torch.Tensor) -> torch.Tensor:
        return blk.drop_path1(blk.ls1(a))

    def mlp(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk.mlp(x)

    def hooked_mlp(self, blk: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks) -> torch.Tensor:
        mlp = blk.mlp
        h = hooks(names["mlp_pre"], mlp.fc1(x))
        h = hooks(names["mlp_post"], mlp.act(h))
        h = mlp.norm(mlp.drop1(h))
        return mlp.drop2(mlp.fc2(h))

    def mlp_branch(self, blk: nn.Module, m: torch.Tensor) -> torch.Tensor:
        return blk.drop_path2(blk.ls2(m))

    # ----- images and labels -----
    def data_config(self) -> dict[str, Any]:
        from timm.data import resolve_data_config

        config = resolve_data_config({}, model=self.tower)
        # The model's real input size wins over a pretrained config made for another size (img_size=...).
        config["input_size"] = (3, *self.cfg.image_size)
        return config

    def image_transform(self) -> Callable[[Any], torch.Tensor]:
        from timm.data import create_transform

        return create_transform(**self.data_config(), is_training=False)

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        config = self.data_config()
        return tuple(config["mean"]), tuple(config["std"])

    def labels(self) -> list[str] | None:
        n = self.cfg.n_classes
        if n not in (1000, 11821, 21841, 21843):
            return None
        try:
            from timm.data import ImageNetInfo, infer_imagenet_subset

            subset = infer_imagenet_subset(self.tower) or ("imagenet-1k" if n == 1000 else None)
            if subset is None:
                return None
            info = ImageNetInfo(subset)
            descriptions = info.label_descriptions()
        except Exception:  # label files are optional data in timm; no labels is a fine answer
            return None
        if len(descriptions) != n:
            return None
        # "tabby, tabby cat" -> "tabby"
        return [d.split(",")[0].strip() for d in descriptions]
