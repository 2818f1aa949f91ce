"""The thin hooked-model backend: TransformerLens hook names over real timm and open_clip ViTs."""

from .adapters import SUPPORTED_FAMILIES, UnsupportedModelError
from .cache import ActivationCache
from .config import HookedViTConfig
from .hook_points import HookNameError, HookPoint, act_name
from .loading import load
from .model import HookedViT

__all__ = [
    "SUPPORTED_FAMILIES",
    "ActivationCache",
    "HookNameError",
    "HookPoint",
    "HookedViT",
    "HookedViTConfig",
    "UnsupportedModelError",
    "act_name",
    "load",
]
