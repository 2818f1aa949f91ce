"""One adapter per model family; :func:`adapt` picks the one for a module."""

from __future__ import annotations

from torch import nn

from .base import SUPPORTED_FAMILIES, Adapter, UnsupportedModelError


def adapt(module: nn.Module, model_name: str | None = None) -> Adapter:
    """The adapter for a timm ViT or Eva, an open_clip CLIP model or its image tower, or a Hugging Face
    CLIP / SigLIP / ViT / DINOv2 model, or a Hugging Face video model (VideoMAE, TimeSformer, ViViT).

    Anything else raises :class:`UnsupportedModelError` naming the supported families.
    """
    from .timm_vit import TimmViTAdapter, is_timm_vit

    if is_timm_vit(module):
        return TimmViTAdapter(module, model_name)
    from .timm_eva import TimmEvaAdapter, is_timm_eva

    if is_timm_eva(module):
        return TimmEvaAdapter(module, model_name)
    if type(module).__module__.startswith("open_clip") or hasattr(module, "visual"):
        from .open_clip_timm import open_clip_timm_adapter, timm_tower

        if timm_tower(module) is not None:
            return open_clip_timm_adapter(module, model_name)
        from .open_clip_vit import OpenClipViTAdapter, is_open_clip

        if is_open_clip(module):
            return OpenClipViTAdapter(module, model_name)
    if type(module).__module__.startswith("transformers."):
        from .hf_video import VIDEO_WRAPPED, hf_video_adapter

        if type(module).__name__ in VIDEO_WRAPPED:
            return hf_video_adapter(module, model_name)
        from .hf import hf_adapter

        return hf_adapter(module, model_name)
    kind = f"{type(module).__module__}.{type(module).__qualname__}"
    raise UnsupportedModelError(
        f"cannot hook a {kind}. Supported: {SUPPORTED_FAMILIES}. "
        "Build one with pw.load('vit_base_patch16_224'), pw.load('open_clip:ViT-B-32') or "
        "pw.load('hf:openai/clip-vit-base-patch32'), or pass such a module to pw.HookedViT."
    )


__all__ = ["Adapter", "SUPPORTED_FAMILIES", "UnsupportedModelError", "adapt"]
