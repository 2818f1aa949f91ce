"""open_clip ``CLIP`` models whose image tower is open_clip's ``VisionTransformer``."""

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


class OpenClipViTAdapter(Adapter):
    family = "open_clip"

    def __init__(self, model: nn.Module, model_name: str | None = None) -> None:
        from open_clip.transformer import ResidualAttentionBlock

        visual = vision_tower(model)
        if visual is None:
            raise UnsupportedModelError(
                f"this open_clip model's image tower is {type(getattr(model, 'visual', model)).__name__}; "
                f"supported: {SUPPORTED_FAMILIES}."
            )
        if visual.attn_pool is not None:
            raise UnsupportedModelError(
                "open_clip towers with attentional pooling (CoCa) are not supported yet; "
                f"supported: {SUPPORTED_FAMILIES}."
            )
        if not getattr(visual.transformer, "batch_first", True):
            raise UnsupportedModelError(
                "this open_clip tower runs its transformer sequence-first (an old open_clip); "
                "upgrade open_clip (pip install -U open_clip_torch) to get batch-first blocks."
            )
        for i, blk in enumerate(visual.transformer.resblocks):
            if not isinstance(blk, ResidualAttentionBlock) or not isinstance(blk.attn, nn.MultiheadAttention):
                raise UnsupportedModelError(
                    f"block {i} of this open_clip tower is {type(blk).__name__}; supported: {SUPPORTED_FAMILIES}."
                )
            if not blk.attn._qkv_same_embed_dim or blk.attn.in_proj_bias is None:
                raise UnsupportedModelError(f"block {i}: attention without a packed, biased in-projection")
        self.clip = model if model is not visual else None
        self.tower = visual
        self.blocks = visual.transformer.resblocks
        self.has_mlp_hooks = all(hasattr(b.mlp, "c_fc") and hasattr(b.mlp, "gelu") for b in self.blocks)
        first = self.blocks[0]
        width = int(visual.transformer.width)
        heads = int(first.attn.num_heads)
        proj = visual.proj
        self.cfg = HookedViTConfig(
            family="open_clip",
            model_name=model_name,
            n_layers=len(self.blocks),
            n_heads=heads,
            d_model=width,
            d_head=width // heads,
            d_mlp=int(first.mlp.c_fc.out_features) if hasattr(first.mlp, "c_fc") else None,
            patch_size=_pair(visual.patch_size),
            image_size=_pair(visual.image_size),
            grid=_pair(visual.grid_size),
            n_prefix_tokens=1,
            has_cls=True,
            n_registers=0,
            n_classes=None,
            d_output=int(proj.shape[1]) if proj is not None else width,
            pooling={"tok": "token"}.get(visual.pool_type, visual.pool_type),
            readout="text",
        )
        self.norm_after_pool = bool(visual.final_ln_after_pool)
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
        if v.final_ln_after_pool:
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
        pooled, _ = self.tower._global_pool(x)
        return pooled

    def pool_weights(self) -> torch.Tensor | None:
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

    # ----- text -----
    def no_text_reason(self) -> str:
        return ("text encoding needs a whole open_clip CLIP model; this wraps an image tower alone: "
                "wrap the CLIP model, not model.visual")

    def _text_model(self) -> nn.Module:
        if self.clip is None:
            raise TypeError(self.no_text_reason())
        return self.clip

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        return self._text_model().encode_text(tokens, normalize=normalize)

    def logit_scale(self) -> float:
        return float(self._text_model().logit_scale.detach().exp())

    def default_tokenizer(self) -> Callable[[list[str]], torch.Tensor]:
        clip = self._text_model()
        if getattr(clip, "vocab_size", None) != 49408:
            raise ValueError(
                "this CLIP's text tower does not use the OpenAI BPE vocabulary: pass "
                "pw.HookedViT(clip, tokenizer=open_clip.get_tokenizer(<model name>))"
            )
        from open_clip.tokenizer import SimpleTokenizer

        return SimpleTokenizer(context_length=int(clip.context_length))

    def mlp_out_weight(self, layer: int) -> torch.Tensor | None:
        out = getattr(self.blocks[layer].mlp, "c_proj", None)
        return out.weight if out is not None else None

    def attn_out_projection(self, layer: int) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        out = self.blocks[layer].attn.out_proj
        return out.weight, out.bias

    def block_norms(self, layer: int) -> tuple[nn.Module, nn.Module]:
        blk = self.blocks[layer]
        return blk.ln_1, blk.ln_2

    # ----- block parts -----
    def ln1(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk.ln_1(x)

    def ln2(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk.ln_2(x)

    def attention(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk.attention(q_x=x)

    def hooked_attention(
        self, blk: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks, explicit: bool
    ) -> torch.Tensor:
        mha: nn.MultiheadAttention = blk.attn
        B, N, C = x.shape
        H = mha.num_heads
        D = C // H
        # The packed in-projection of nn.MultiheadAttention, then [batch, pos, head, d_head] directly.
        q, k, v = F.linear(x, mha.in_proj_weight, mha.in_proj_bias).view(B, N, 3, H, D).unbind(2)
        q = hooks(names["q"], q).transpose(1, 2)
        k = hooks(names["k"], k).transpose(1, 2)
        v = hooks(names["v"], v).transpose(1, 2)
        if explicit:
            z = explicit_attention(q, k, v, D**-0.5, names, hooks, nn.Dropout(mha.dropout if mha.training else 0.0))
        else:
            z = F.scaled_dot_product_attention(q, k, v, dropout_p=mha.dropout if mha.training else 0.0)
        z = hooks(names["z"], z.transpose(1, 2))
        return mha.out_proj(z.reshape(B, N, C))

    def attn_branch(self, blk: nn.Module, a: torch.Tensor) -> torch.Tensor:
        return blk.ls_1(a)

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

    # ----- images -----
    def preprocess_cfg(self) -> dict[str, Any]:
        from open_clip.model import get_model_preprocess_cfg

        cfg = dict(get_model_preprocess_cfg(self.clip if self.clip is not None else self.tower))
        cfg["size"] = self.cfg.image_size
        cfg.setdefault("mean", (0.48145466, 0.4578275, 0.40821073))
        cfg.setdefault("std", (0.26862954, 0.26130258, 0.27577711))
        return cfg

    def image_transform(self) -> Callable[[Any], torch.Tensor]:
        from open_clip.transform import image_transform

        cfg = self.preprocess_cfg()
        kwargs = {k: cfg[k] for k in ("resize_mode", "interpolation", "fill_color") if k in cfg}
        return image_transform(cfg["size"], is_train=False, mean=cfg["mean"], std=cfg["std"], **kwargs)

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        cfg = self.preprocess_cfg()
        return tuple(cfg["mean"]), tuple(cfg["std"])
