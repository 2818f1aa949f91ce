"""Hugging Face ``transformers`` video transformers: VideoMAE, TimeSformer, ViViT.

Wrapped classes: ``VideoMAEModel``, ``VideoMAEForVideoClassification``, ``TimesformerModel``,
``TimesformerForVideoClassification``, ``VivitModel``, ``VivitForVideoClassification``. Input is a clip
``[batch, frames, 3, H, W]``; ``cfg.frames`` token frames (``num_frames // tubelet_size``), each a ``cfg.grid``.

- VideoMAE: a tubelet embedding (2 frames x 16 x 16 by default, a Conv3d), fixed sinusoidal positions, no CLS
  token; the classifier reads the mean of every token through ``fc_norm`` (``head_norm``), or token 0 through the
  final norm when ``use_mean_pooling`` is off. The headless model's output is that mean (or normalised token 0).
- TimeSformer: a CLS token, per-frame patches ordered (row, col, frame) (``cfg.patch_order == "rct"``), spatial
  ``hook_pos_embed`` ``[batch, 1 + patches, d]`` plus ``hook_time_embed`` ``[batch, frames, d]``; divided
  space-time blocks hook both attentions (:mod:`.hf_video_blocks`). The classifier reads the normalised CLS.
- ViViT: a tubelet embedding with CLS, ViT-style layers (:mod:`.hf_blocks`); the classifier reads the normalised
  CLS, ``VivitModel`` its pooler (dense + tanh).

Preprocessing follows each model's processor: resize the shortest edge, centre crop, rescale and normalise every
frame (the repository's processor settings when they are cached, else the class defaults), ``num_frames`` frames
sampled uniformly over the clip (see :mod:`prisma_widgets.hooked.preprocess`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import HookedViTConfig
from ..hook_points import ActiveHooks
from .base import Adapter, UnsupportedModelError
from .hf import HFVisionAdapter
from .hf_blocks import LAYOUTS, attn_of, heads_of
from .hf_video_blocks import (
    TIME_POINTS,
    BertStyleBlocks,
    bert_mlp_out_weight,
    bert_out_projection,
    divided,
    divided_block,
    heads,
    self_attention,
)

# class name -> (attribute holding the video model or "" for the module itself, head kind)
VIDEO_WRAPPED: dict[str, tuple[str, str]] = {
    "VideoMAEModel": ("", "pooled"),
    "VideoMAEForVideoClassification": ("videomae", "classifier"),
    "TimesformerModel": ("", "pooled"),
    "TimesformerForVideoClassification": ("timesformer", "classifier"),
    "VivitModel": ("", "pooler"),
    "VivitForVideoClassification": ("vivit", "classifier"),
}
LAYOUTS.setdefault("VivitLayer", ("layernorm_before", "attention", "o_proj", "layernorm_after", ("dropout",),
                                  ("dropout",)))

# model type -> (shortest edge / crop, mean, std, offset): each processor's class defaults
_PROCESSING = {
    "videomae": (1.0, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), False),
    "timesformer": (1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), False),
    "vivit": (256 / 224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), True),
}


def hf_video_adapter(module: nn.Module, model_name: str | None = None) -> HFVideoAdapter:
    kind = type(module).__name__
    if kind.startswith("Vivit"):
        return HFVideoAdapter(module, model_name)
    if kind.startswith("Timesformer"):
        return TimesformerAdapter(module, model_name)
    return VideoMAEAdapter(module, model_name)


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class HFVideoAdapter(HFVisionAdapter):
    """A video model's token layout, embedding, readout and preprocessing (ViViT's blocks: :mod:`.hf_blocks`)."""

    family = "hf"
    patch_order = "trc"

    def __init__(self, module: nn.Module, model_name: str | None = None) -> None:
        kind = type(module).__name__
        attr, self.head_kind = VIDEO_WRAPPED[kind]
        self.module, self.clip, self.n_registers, self.gated_mlp = module, None, 0, False
        self.vision = self.tower = getattr(module, attr) if attr else module
        self.blocks = self.vision.layers if hasattr(self.vision, "layers") else self.vision.encoder.layer
        vcfg = self.vision.config
        image, tub = _pair(vcfg.image_size), getattr(vcfg, "tubelet_size", None) or 1
        if isinstance(tub, (list, tuple)):  # ViViT: (frames, height, width)
            tubelet, patch = int(tub[0]), (int(tub[1]), int(tub[2]))
        else:
            tubelet, patch = int(tub), _pair(vcfg.patch_size)
        self.has_cls = hasattr(self.vision.embeddings, "cls_token")
        n_heads, d_head = self._heads()
        n_classes = int(module.config.num_labels) if self.head_kind == "classifier" else 0
        self.mean_pool = bool(getattr(vcfg, "use_mean_pooling", False))
        self.cfg = HookedViTConfig(
            family="hf", model_name=model_name or (getattr(module.config, "_name_or_path", "") or kind),
            n_layers=len(self.blocks), n_heads=n_heads, d_model=int(vcfg.hidden_size), d_head=d_head,
            d_mlp=int(vcfg.intermediate_size), patch_size=patch, image_size=image,
            grid=(image[0] // patch[0], image[1] // patch[1]), n_prefix_tokens=int(self.has_cls),
            has_cls=self.has_cls, n_registers=0, n_classes=n_classes or None, d_output=self._d_output(n_classes),
            pooling="avg" if self.mean_pool else "token", readout="classes" if n_classes else "none",
            frames=int(vcfg.num_frames) // tubelet, tubelet_size=tubelet, patch_order=self.patch_order,
        )
        self.norm_after_pool = False
        Adapter.__init__(self)

    def _heads(self) -> tuple[int, int]:
        return heads_of(attn_of(self.blocks[0]))

    def _d_output(self, n_classes: int) -> int:
        if n_classes:
            return n_classes
        pooler = getattr(self.vision, "pooler", None)
        return int(pooler.dense.out_features) if pooler is not None else int(self.vision.config.hidden_size)

    # ----- forward parts -----
    def plain_forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.module(pixel_values=pixels)
        if self.head_kind == "classifier":
            return out.logits
        if getattr(out, "pooler_output", None) is not None:
            return out.pooler_output
        last = out.last_hidden_state
        return last.mean(1) if self.mean_pool else last[:, 0]

    def embed(self, pixels: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        emb = self.vision.embeddings
        if not any(hooks.active(n) for n in ("hook_embed", "hook_pos_embed", "hook_time_embed")):
            return self._plain_embed(emb, pixels)
        return self._hooked_embed(emb, pixels, hooks)

    def _plain_embed(self, emb: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
        return emb(pixels)

    def _hooked_embed(self, emb: nn.Module, pixels: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        x = hooks("hook_embed", emb.patch_embeddings(pixels))  # ViViT: tubelets, then CLS and positions
        x = torch.cat((emb.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        return emb.dropout(x + hooks("hook_pos_embed", emb.position_embeddings.expand(x.shape[0], -1, -1)))

    def head(self, resid: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        pooled = self.pool(hooks("ln_final.hook_normalized", self.final_norm()(resid)))
        return hooks(self.output_hook, self.project(self.head_norm()(pooled)))

    # ----- the readout in parts -----
    def final_norm(self) -> nn.Module:
        norm = getattr(self.vision, "layernorm", None)
        return norm if norm is not None else nn.Identity()

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(1) if self.mean_pool else x[:, 0]

    def pool_weights(self) -> torch.Tensor | None:
        n = self.cfg.n_tokens
        if self.mean_pool:
            return torch.full((n,), 1.0 / n)
        w = torch.zeros(n)
        w[0] = 1.0
        return w

    def head_norm(self) -> nn.Module:
        norm = getattr(self.module, "fc_norm", None) if self.head_kind == "classifier" else None
        return norm if norm is not None else nn.Identity()

    def block_norms(self, layer: int) -> tuple[nn.Module, nn.Module]:
        blk = self.blocks[layer]
        return blk.layernorm_before, blk.layernorm_after

    # ----- clips -----
    def image_transform(self) -> Callable[[Any], torch.Tensor]:
        """One frame (a PIL image) to a normalised ``[3, H, W]`` tensor, as the model's processor does."""
        ratio, mean, std = self._processing()
        height, width = self.cfg.image_size
        shortest = round(min(height, width) * ratio)
        mean_t, std_t = (torch.tensor(v, dtype=torch.float32).view(3, 1, 1) for v in (mean, std))

        def transform(image: Any) -> torch.Tensor:
            from PIL import Image

            w, h = image.size  # the shortest edge to `shortest`, the long side floored (HF's resize)
            size = (shortest, int(shortest * h / w)) if w <= h else (int(shortest * w / h), shortest)
            image = image.convert("RGB").resize(size, Image.BILINEAR)
            left, top = (size[0] - width) // 2, (size[1] - height) // 2
            image = image.crop((left, top, left + width, top + height))
            array = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
            return (array - mean_t) / std_t

        return transform

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        _, mean, std = self._processing()
        return mean, std

    def _processing(self) -> tuple[float, tuple[float, ...], tuple[float, ...]]:
        """``(shortest edge / crop, mean, std)`` in units of ``pixel / 255``; ViViT's offset rescale
        (``x / 127.5 - 1``, then normalised) folded into its mean and std."""
        model_type = str(self.vision.config.model_type)
        ratio, mean, std, offset = _PROCESSING[model_type]
        config = self.module.config  # processor settings kept on the config (the video mouse keeps them there)
        mean, std = tuple(getattr(config, "image_mean", None) or mean), tuple(getattr(config, "image_std", None) or std)
        saved = _saved_processor(self.module)
        if saved:
            crop = saved.get("crop_size") or {}
            size = saved.get("size") or {}
            if "shortest_edge" in size and crop.get("height"):
                ratio = float(size["shortest_edge"]) / float(crop["height"])
            mean = tuple(saved.get("image_mean", mean))
            std = tuple(saved.get("image_std", std))
            offset = bool(saved.get("offset", offset))
        if offset:  # ((x / 127.5 - 1) - m) / s == (x / 255 - (1 + m) / 2) / (s / 2)
            mean, std = tuple((1 + m) / 2 for m in mean), tuple(s / 2 for s in std)
        return ratio, tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _saved_processor(module: nn.Module) -> dict[str, Any] | None:
    """The repository's (cached) processor settings, or ``None`` for a model built from a config."""
    repo = getattr(module.config, "_name_or_path", "") or ""
    if not repo:
        return None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    from ..hub import stay_local

    for name in ("preprocessor_config.json", "video_preprocessor_config.json"):
        path = os.path.join(repo, name) if os.path.isdir(repo) else None
        if path is not None and not os.path.isfile(path):
            continue
        try:
            path = path or hf_hub_download(repo, name, local_files_only=stay_local(repo))
        except (OSError, ValueError, EntryNotFoundError):  # not on the Hub, not cached, a local folder: defaults
            pass
        if path is not None:
            with open(path, encoding="utf-8") as f:
                return dict(json.load(f))
    return None


class VideoMAEAdapter(BertStyleBlocks, HFVideoAdapter):
    """VideoMAE: BERT-style layers, sinusoidal positions (a plain tensor on the embeddings)."""

    def _heads(self) -> tuple[int, int]:
        return heads(self_attention(self.blocks[0]), int(self.vision.config.hidden_size))

    def _plain_embed(self, emb: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
        return emb(pixels, None)

    def _hooked_embed(self, emb: nn.Module, pixels: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        x = hooks("hook_embed", emb.patch_embeddings(pixels))
        pos = emb.position_embeddings.detach().type_as(x).to(device=x.device, copy=True)
        return x + hooks("hook_pos_embed", pos.expand(x.shape[0], -1, -1))

    def plain_block(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk(x)

    def mlp_out_weight(self, layer: int) -> torch.Tensor | None:
        return bert_mlp_out_weight(self.blocks[layer])

    def attn_out_projection(self, layer: int) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        return bert_out_projection(self.blocks[layer])


class TimesformerAdapter(BertStyleBlocks, HFVideoAdapter):
    """TimeSformer: (row, col, frame) token order, spatial + temporal position embeddings, divided blocks."""

    patch_order = "rct"

    def __init__(self, module: nn.Module, model_name: str | None = None) -> None:
        super().__init__(module, model_name)
        kind = getattr(self.vision.config, "attention_type", "divided_space_time")
        if kind == "space_only":
            raise UnsupportedModelError(
                "a TimeSformer with attention_type='space_only' runs every frame as a separate image (its batch is "
                "batch x frames), so it has no clip-wide residual stream to hook; use 'divided_space_time' or "
                "'joint_space_time'")
        self.time_names = [{key: f"blocks.{layer}.{suffix}" for key, suffix in TIME_POINTS}
                           for layer in range(self.cfg.n_layers)]

    def _heads(self) -> tuple[int, int]:
        return heads(self_attention(self.blocks[0]), int(self.vision.config.hidden_size))

    def hook_names(self) -> list[str]:
        names = super().hook_names()
        names.insert(names.index("hook_pos_embed") + 1, "hook_time_embed")
        for layer in range(self.cfg.n_layers):
            if divided(self.blocks[layer]):
                at = names.index(self.names[layer]["ln1"])
                names[at:at] = list(self.time_names[layer].values())
        return names

    def block(self, layer: int, x: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        blk = self.blocks[layer]
        if not divided(blk):
            return super().block(layer, x, hooks)
        keys = hooks.block_keys[layer] if hooks else frozenset()
        return divided_block(self, blk, self.names[layer], self.time_names[layer], keys, x, hooks,
                             self.cfg.frames, self.cfg.grid)

    def _hooked_embed(self, emb: nn.Module, pixels: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        """TimeSformer's embeddings step by step: patches per frame, + the spatial positions (CLS included), then
        per patch + the time embedding; ``hook_embed`` sees the patches in token order."""
        B, T = pixels.shape[:2]
        e = emb.patch_embeddings(pixels)[0]  # [B * T, P, d]
        P, d = e.shape[1], e.shape[2]
        seen = e.reshape(B, T, P, d).transpose(1, 2).reshape(B, P * T, d)
        out = hooks("hook_embed", seen)
        if out is not seen:
            e = out.reshape(B, P, T, d).transpose(1, 2).reshape(B * T, P, d)
        x = torch.cat((emb.cls_token.expand(B * T, -1, -1), e), dim=1)
        pos = hooks("hook_pos_embed", emb.position_embeddings.expand(B, -1, -1))
        x = emb.pos_drop(x + pos[:, None].expand(B, T, P + 1, d).reshape(B * T, P + 1, d))
        cls = x[::T, :1]
        x = x[:, 1:].reshape(B, T, P, d).permute(0, 2, 1, 3).reshape(B * P, T, d)
        time = hooks("hook_time_embed", emb.time_embeddings.expand(B, -1, -1))
        x = emb.time_drop(x + time[:, None].expand(B, P, T, d).reshape(B * P, T, d))
        return torch.cat((cls, x.reshape(B, P * T, d)), dim=1)

    def mlp_out_weight(self, layer: int) -> torch.Tensor | None:
        return bert_mlp_out_weight(self.blocks[layer])

    def attn_out_projection(self, layer: int) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        # divided blocks: two attentions, the spatial one's CLS averaged over frames, so no one W_O per head
        return None if divided(self.blocks[layer]) else bert_out_projection(self.blocks[layer])

    def block_norms(self, layer: int) -> tuple[nn.Module, nn.Module]:
        if divided(self.blocks[layer]):
            raise UnsupportedModelError(
                f"TimeSformer block {layer} runs divided space-time attention: its attention reads the stream "
                "through two norms (temporal, then spatial on a rearranged stream), so no one norm feeds it")
        return super().block_norms(layer)

    def heads_split_by_source(self, layer: int) -> bool:
        return not divided(self.blocks[layer])

    def extra_writes(self, layer: int) -> tuple[str, ...]:
        return ("hook_attn_time_out",) if divided(self.blocks[layer]) else ()
