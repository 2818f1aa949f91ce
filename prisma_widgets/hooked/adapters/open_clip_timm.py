"""open_clip image towers on a timm trunk (``TimmModel``): SigLIP, SigLIP2, ViT-SO400M, EVA02-CLIP, ViTamin,
MobileCLIP-B / MobileCLIP2-L, PE-Core, and any ``timm_model_name`` whose trunk is a timm ``VisionTransformer``
or ``Eva``.

The trunk is hooked by the timm adapters, unchanged; this adds the tower's head (open_clip's projection after
the trunk's own pooling and head) and the text side. A ConvNeXt, FastViT (MobileCLIP-S*) or Swin trunk is no
ViT: refused, naming the trunk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..hook_points import ActiveHooks
from .base import SUPPORTED_FAMILIES, UnsupportedModelError
from .open_clip_text import OpenClipText
from .open_clip_vit import open_clip_transform, preprocess_cfg
from .timm_eva import TimmEvaAdapter, is_timm_eva
from .timm_vit import TimmViTAdapter, is_timm_vit, with_config


def timm_tower(module: nn.Module) -> tuple[nn.Module | None, nn.Module] | None:
    """``(clip or None, TimmModel)`` when ``module`` is an open_clip model on a timm trunk, or that tower."""
    try:
        from open_clip.timm_model import TimmModel
    except ImportError:
        return None
    if isinstance(module, TimmModel):
        return None, module
    visual = getattr(module, "visual", None)
    if isinstance(visual, TimmModel):
        return module, visual
    return None


def open_clip_timm_adapter(module: nn.Module, model_name: str | None) -> TimmViTAdapter:
    """The adapter for an open_clip tower on a timm trunk, or a clear refusal naming the trunk."""
    _, tower = timm_tower(module)
    trunk = tower.trunk
    if is_timm_eva(trunk):
        return OpenClipTimmEvaAdapter(module, model_name)
    if is_timm_vit(trunk):
        return OpenClipTimmViTAdapter(module, model_name)
    kind = type(trunk).__name__
    why = _NOT_A_VIT.get(kind, "a timm model class of its own")
    raise UnsupportedModelError(
        f"this open_clip image tower's timm trunk is {kind}: {why}. Only timm VisionTransformer and Eva trunks are "
        f"hooked. Supported: {SUPPORTED_FAMILIES}.")


_NOT_A_VIT = {
    "ConvNeXt": "a convolutional network, with no tokens or attention heads to hook",
    "FastVit": "a convolution / attention hybrid whose token grid shrinks stage by stage",
    "SwinTransformer": "windowed attention over a grid that shrinks stage by stage",
    "VisionTransformerRelPos": "attention with relative position biases, a class of its own",
}


class OpenClipTimmHead(OpenClipText):
    """The open_clip side of a timm-trunk tower; mixed in before a timm adapter, which hooks the trunk."""

    timm_model: nn.Module

    def __init__(self, module: nn.Module, model_name: str | None = None) -> None:
        self.clip, self.timm_model = timm_tower(module)
        head = self.timm_model.head
        if "pool" in dict(head.named_children()):
            raise UnsupportedModelError("open_clip's 2-D attention pools (abs_attn / rot_attn) are for CNN trunks")
        self.head_linear = isinstance(dict(head.named_children()).get("proj"), nn.Linear) or len(head) == 0
        super().__init__(self.timm_model.trunk, model_name)
        trunk = self.timm_model.trunk
        if len(head) == 0:
            d_output = int(trunk.num_classes or trunk.num_features)
        elif self.head_linear:
            d_output = int(head.proj.out_features)
        else:
            d_output = int(head.mlp.fc2.out_features)
        self.cfg = with_config(self.cfg, family="open_clip", n_classes=None, d_output=int(d_output),
                               readout="text" if self.clip is not None else "none")

    @property
    def output_hook(self) -> str:
        return "hook_image_embed"

    def plain_forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.timm_model(pixels)

    def head(self, resid: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        m = self.tower
        x = hooks("ln_final.hook_normalized", m.norm(resid))
        return hooks("hook_image_embed", self.timm_model.head(m.forward_head(x)))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return self.timm_model.head(super().project(x))

    def projection(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The trunk's head and open_clip's projection composed into one linear map."""
        w1, b1 = super().projection()
        head = self.timm_model.head
        if len(head) == 0:
            return w1, b1
        if not self.head_linear:
            raise UnsupportedModelError("this tower's projection is an MLP: it has no single linear map")
        proj = head.proj
        if w1 is None:
            return proj.weight, proj.bias
        bias = proj.weight @ b1 if b1 is not None else None
        if proj.bias is not None:
            bias = proj.bias if bias is None else bias + proj.bias
        return proj.weight @ w1, bias

    def labels(self) -> list[str] | None:
        return None

    def image_transform(self) -> Callable[[Any], torch.Tensor]:
        return open_clip_transform(self.clip if self.clip is not None else self.timm_model, self.cfg.image_size)

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        cfg = preprocess_cfg(self.clip if self.clip is not None else self.timm_model, self.cfg.image_size)
        return tuple(cfg["mean"]), tuple(cfg["std"])


class OpenClipTimmViTAdapter(OpenClipTimmHead, TimmViTAdapter):
    """An open_clip tower on a timm ``VisionTransformer`` trunk (SigLIP, ViTamin, MobileCLIP-B ...)."""


class OpenClipTimmEvaAdapter(OpenClipTimmHead, TimmEvaAdapter):
    """An open_clip tower on a timm ``Eva`` trunk (EVA02-CLIP, PE-Core ...)."""
