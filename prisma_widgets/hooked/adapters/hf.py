"""Hugging Face ``transformers`` vision transformers: CLIP, SigLIP, ViT, DINOv2 (with registers).

Wrapped classes: ``CLIPModel``, ``CLIPVisionModel``, ``CLIPVisionModelWithProjection``, ``SiglipModel``,
``SiglipVisionModel``, ``ViTModel``, ``ViTForImageClassification``, ``Dinov2Model``,
``Dinov2ForImageClassification``, ``Dinov2WithRegistersModel``, ``Dinov2WithRegistersForImageClassification``.

The output is what the model itself returns as its image output: CLIP / SigLIP image embeddings
(``get_image_features``; ``image_embeds`` of ``CLIPVisionModelWithProjection``), classifier logits, or a headless
model's ``pooler_output`` (ViT's ``pooler`` when it has one, else the normalised CLS token). DINOv2's classifier
reads the CLS token and the patch mean side by side: :meth:`pool` returns them concatenated. Labels come from
``config.id2label``; preprocessing from the model's own image processor (see :mod:`.hf_text` for prompts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config import HookedViTConfig
from ..hook_points import ActiveHooks
from .base import SUPPORTED_FAMILIES, Adapter, UnsupportedModelError
from .hf_blocks import (
    HFBlocks,
    attn_of,
    block_mlp_out_weight,
    block_out_projection,
    heads_of,
    layout,
    mlp_gated,
    mlp_width,
)
from .hf_text import HFText, image_processor

# class name -> (attribute holding the vision model or "" for the module itself, head kind)
WRAPPED: dict[str, tuple[str, str]] = {
    "CLIPModel": ("vision_model", "clip"),
    "CLIPVisionModel": ("", "pooler"),
    "CLIPVisionModelWithProjection": ("vision_model", "clip"),
    "SiglipModel": ("vision_model", "siglip"),
    "SiglipVisionModel": ("", "siglip"),
    "ViTModel": ("", "pooler"),
    "ViTForImageClassification": ("vit", "classifier"),
    "Dinov2Model": ("", "pooler"),
    "Dinov2ForImageClassification": ("dinov2", "cls+mean"),
    "Dinov2WithRegistersModel": ("", "pooler"),
    "Dinov2WithRegistersForImageClassification": ("dinov2_with_registers", "cls+mean"),
}


def hf_adapter(module: nn.Module, model_name: str | None = None) -> HFVisionAdapter:
    if type(module).__name__ not in WRAPPED:
        raise UnsupportedModelError(
            f"cannot hook a transformers {type(module).__name__}. Supported: {SUPPORTED_FAMILIES}.")
    return HFVisionAdapter(module, model_name)


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


class HFVisionAdapter(HFText, HFBlocks, Adapter):
    family = "hf"

    def __init__(self, module: nn.Module, model_name: str | None = None) -> None:
        kind = type(module).__name__
        attr, self.head_kind = WRAPPED[kind]
        self.module = module
        self.vision = getattr(module, attr) if attr else module
        self.clip = module if kind in ("CLIPModel", "SiglipModel") else None
        emb = self.vision.embeddings
        self.blocks = self.vision.layers if hasattr(self.vision, "layers") else (
            self.vision.encoder.layers if hasattr(self.vision.encoder, "layers") else self.vision.encoder.layer)
        if not hasattr(attn_of(self.blocks[0]), "q_proj"):
            import transformers

            raise UnsupportedModelError(
                f"transformers {transformers.__version__} lays out {type(self.blocks[0]).__name__} differently: "
                "prisma_widgets hooks the layout of transformers >= 5 (pip install -U 'transformers>=5')")
        if self.head_kind == "siglip" and not getattr(self.vision, "use_head", False):
            raise UnsupportedModelError("this SigLIP vision model has no attention-pool head (vision_use_head=False)")
        vcfg = self.vision.config
        image, patch = _pair(vcfg.image_size), _pair(vcfg.patch_size)
        grid = (image[0] // patch[0], image[1] // patch[1])
        self.n_registers = int(getattr(vcfg, "num_register_tokens", 0) or 0)
        has_cls = hasattr(emb, "cls_token") or hasattr(emb, "class_embedding")
        n_heads, d_head = heads_of(attn_of(self.blocks[0]))
        self.gated_mlp = mlp_gated(self.blocks[0].mlp)
        n_classes = int(module.config.num_labels) if self.head_kind in ("classifier", "cls+mean") else 0
        readout = "classes" if n_classes else ("text" if self.clip is not None else "none")
        self.tower = self.vision
        self.cfg = HookedViTConfig(
            family="hf", model_name=model_name or (getattr(module.config, "_name_or_path", "") or kind),
            n_layers=len(self.blocks), n_heads=n_heads, d_model=int(vcfg.hidden_size), d_head=d_head,
            d_mlp=mlp_width(self.blocks[0].mlp), patch_size=patch, image_size=image, grid=grid,
            n_prefix_tokens=int(has_cls) + self.n_registers, has_cls=has_cls, n_registers=self.n_registers,
            n_classes=n_classes or None, d_output=self._d_output(n_classes),
            pooling={"siglip": "map", "cls+mean": "cls+mean"}.get(self.head_kind, "token"), readout=readout,
        )
        self.norm_after_pool = self.head_kind in ("clip", "pooler") and hasattr(self.vision, "post_layernorm")
        super().__init__()

    def _d_output(self, n_classes: int) -> int:
        if n_classes:
            return n_classes
        proj = getattr(self.module, "visual_projection", None)
        if proj is not None:
            return int(proj.out_features)
        pooler = getattr(self.vision, "pooler", None)
        return int(pooler.dense.out_features) if pooler is not None else int(self.vision.config.hidden_size)

    @property
    def output_hook(self) -> str:
        return {"classes": "hook_logits", "text": "hook_image_embed"}.get(self.cfg.readout, "hook_pooled")

    # ----- forward parts -----
    def plain_forward(self, pixels: torch.Tensor) -> torch.Tensor:
        m, kind = self.module, type(self.module).__name__
        if kind in ("CLIPModel", "SiglipModel"):
            return m.get_image_features(pixel_values=pixels).pooler_output
        out = m(pixel_values=pixels)
        if self.head_kind in ("classifier", "cls+mean"):
            return out.logits
        if kind == "CLIPVisionModelWithProjection":
            return out.image_embeds
        return out.pooler_output if out.pooler_output is not None else out.last_hidden_state[:, 0]

    def embed(self, pixels: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        emb = self.vision.embeddings
        if not (hooks.active("hook_embed") or hooks.active("hook_pos_embed")):
            x = emb(pixels)
        else:
            x = self._hooked_embeddings(emb, pixels, hooks)
        pre = getattr(self.vision, "pre_layrnorm", None)
        return pre(x) if pre is not None else x

    def _hooked_embeddings(self, emb: nn.Module, pixels: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        """The model's embeddings step by step, with ``hook_embed`` (patches) and ``hook_pos_embed`` (as added)."""
        B, _, height, width = pixels.shape
        if hasattr(emb, "patch_embedding"):  # CLIP, SigLIP: a conv, then an nn.Embedding of positions
            w = emb.patch_embedding.weight
            x = hooks("hook_embed", emb.patch_embedding(pixels.to(dtype=w.dtype)).flatten(2).transpose(1, 2))
            if hasattr(emb, "class_embedding"):
                x = torch.cat([emb.class_embedding.expand(B, 1, -1), x], dim=1)
            return x + hooks("hook_pos_embed", emb.position_embedding(emb.position_ids).expand(B, -1, -1))
        x = hooks("hook_embed", emb.patch_embeddings(pixels))  # ViT, DINOv2
        x = torch.cat((emb.cls_token.expand(B, -1, -1), x), dim=1)
        if hasattr(emb, "interpolate_pos_encoding") and "Dinov2" in type(emb).__name__:
            pos = emb.interpolate_pos_encoding(x, height, width)
        else:
            pos = emb.position_embeddings
        x = x + hooks("hook_pos_embed", pos.expand(B, -1, -1))
        if self.n_registers:
            x = torch.cat((x[:, :1], emb.register_tokens.expand(B, -1, -1), x[:, 1:]), dim=1)
        return emb.dropout(x)

    def head(self, resid: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        norm = self.final_norm()
        if self.norm_after_pool:
            pooled = hooks("ln_final.hook_normalized", norm(resid[:, 0]))
        else:
            pooled = self.pool(hooks("ln_final.hook_normalized", norm(resid)))
        return hooks(self.output_hook, self.project(pooled))

    # ----- the readout in parts -----
    def final_norm(self) -> nn.Module:
        v = self.vision
        return getattr(v, "post_layernorm", None) or v.layernorm

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.head_kind == "siglip":
            return self.vision.head(x)
        if self.head_kind == "cls+mean":
            return torch.cat([x[:, 0], x[:, 1 + self.n_registers:].mean(dim=1)], dim=1)
        return x[:, 0]

    def pool_each(self, x: torch.Tensor) -> torch.Tensor:
        """SigLIP's attention-pool head with one key: the value path, then its MLP with residual."""
        if self.head_kind != "siglip":
            return x
        head = self.vision.head
        mha, e = head.attention, head.attention.embed_dim
        v = nn.functional.linear(x, mha.in_proj_weight[2 * e:], mha.in_proj_bias[2 * e:])
        y = mha.out_proj(v)
        return y + head.mlp(head.layernorm(y))

    def pool_weights(self) -> torch.Tensor | None:
        if self.head_kind in ("siglip", "cls+mean"):
            return None
        w = torch.zeros(self.cfg.n_tokens)
        w[0] = 1.0
        return w

    def pool_slot_weights(self) -> torch.Tensor | None:
        if self.head_kind != "cls+mean":
            return super().pool_slot_weights()
        w = torch.zeros(2, self.cfg.n_tokens)
        w[0, 0] = 1.0  # the CLS token, then the mean of the patches (registers left out), side by side
        w[1, 1 + self.n_registers:] = 1.0 / self.cfg.n_patches
        return w

    def pooled_projection(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        lin = self._linear_head()
        if self.head_kind != "cls+mean" or lin is None:
            return self.projection()
        return lin.weight, lin.bias

    def block_norms(self, layer: int) -> tuple[nn.Module, nn.Module]:
        blk = self.blocks[layer]
        return getattr(blk, layout(blk)[0]), getattr(blk, layout(blk)[3])

    def projection(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        lin = self._linear_head()
        if lin is None:
            return None, None
        if self.head_kind == "cls+mean":  # a token in both slots: the two halves of the classifier summed
            d = self.cfg.d_model
            return lin.weight[:, :d] + lin.weight[:, d:], lin.bias
        return lin.weight, lin.bias

    def _linear_head(self) -> nn.Linear | None:
        for name in ("classifier", "visual_projection"):
            lin = getattr(self.module, name, None)
            if isinstance(lin, nn.Linear):
                return lin
        return None

    def project(self, x: torch.Tensor) -> torch.Tensor:
        pooler = getattr(self.vision, "pooler", None) if self.head_kind == "pooler" else None
        if pooler is not None:  # ViTModel's pooler: dense + tanh on the CLS token
            return pooler.activation(pooler.dense(x))
        lin = self._linear_head() if self.head_kind != "pooler" else None
        if lin is None:
            return x
        if self.head_kind == "cls+mean" and x.shape[-1] == self.cfg.d_model:
            x = torch.cat([x, x], dim=-1)
        return lin(x)

    def mlp_out_weight(self, layer: int) -> torch.Tensor | None:
        return block_mlp_out_weight(self.blocks[layer])

    def attn_out_projection(self, layer: int) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        return block_out_projection(self.blocks[layer])

    # ----- images and labels -----
    def image_transform(self) -> Callable[[Any], torch.Tensor]:
        processor = image_processor(self.module, self.cfg.image_size)

        def transform(image: Any) -> torch.Tensor:
            return processor(images=image, return_tensors="pt")["pixel_values"][0]

        return transform

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        processor = image_processor(self.module, self.cfg.image_size)
        return tuple(float(v) for v in processor.image_mean), tuple(float(v) for v in processor.image_std)

    def labels(self) -> list[str] | None:
        n = self.cfg.n_classes
        id2label = getattr(self.module.config, "id2label", None) or {}
        if not n or len(id2label) != n:
            return None
        return [str(id2label[i]) for i in range(n)]
