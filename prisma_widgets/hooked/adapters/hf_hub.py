"""Hugging Face Hub names (``pw.load("hf:openai/clip-vit-base-patch32")``) to the wrapped transformers class."""

from __future__ import annotations

from typing import Any

from torch import nn

from .base import SUPPORTED_FAMILIES, UnsupportedModelError
from .hf import WRAPPED

# config.model_type -> the class to build when the config names no supported architecture
_BY_TYPE = {
    "clip": "CLIPModel", "clip_vision_model": "CLIPVisionModel", "siglip": "SiglipModel",
    "siglip_vision_model": "SiglipVisionModel", "vit": "ViTModel", "dinov2": "Dinov2Model",
    "dinov2_with_registers": "Dinov2WithRegistersModel",
}


def build_hf(repo: str, pretrained: bool, kwargs: dict[str, Any]) -> nn.Module:
    """The model a Hub repository holds, as the supported transformers class its config names.

    ``pretrained=False`` builds that class from the repository's config with random weights. Network errors
    (offline, no such repository) propagate as ``OSError``.
    """
    try:
        import transformers
    except ImportError as err:
        raise ImportError("Hugging Face models need transformers: pip install 'prisma-widgets[hf]'") from err
    config = transformers.AutoConfig.from_pretrained(repo)
    name = next((a for a in (config.architectures or []) if a in WRAPPED), None) or _BY_TYPE.get(config.model_type)
    if name is None:
        raise UnsupportedModelError(
            f"{repo} is a {config.model_type!r} model ({', '.join(config.architectures or []) or 'no architecture'}); "
            f"supported: {SUPPORTED_FAMILIES}.")
    cls = getattr(transformers, name)
    return cls.from_pretrained(repo, **kwargs) if pretrained else cls(config)
