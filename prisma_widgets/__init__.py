"""Interactive Jupyter widgets for mechanistic interpretability of vision transformers.

>>> import prisma_widgets as pw
>>> model = pw.load("mouse-vit")                          # doctest: +SKIP
>>> logits, cache = model.run_with_cache(images)          # doctest: +SKIP

Importing the package is cheap: torch, timm and open_clip load on first use of what needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> (module, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "load": ("prisma_widgets.hooked.loading", "load"),
    "offline": ("prisma_widgets.hooked.loading", "offline"),
    "OfflineError": ("prisma_widgets.hooked.loading", "OfflineError"),
    "HookedViT": ("prisma_widgets.hooked.model", "HookedViT"),
    "HookedViTConfig": ("prisma_widgets.hooked.config", "HookedViTConfig"),
    "ActivationCache": ("prisma_widgets.hooked.cache", "ActivationCache"),
    "HookNameError": ("prisma_widgets.hooked.hook_points", "HookNameError"),
    "UnsupportedModelError": ("prisma_widgets.hooked.adapters.base", "UnsupportedModelError"),
    "act_name": ("prisma_widgets.hooked.hook_points", "act_name"),
    "corrupt": ("prisma_widgets.analysis.corrupt", "corrupt"),
    "cache_activations": ("prisma_widgets.sae", "cache_activations"),
    "train_sae": ("prisma_widgets.sae", "train_sae"),
    "SAE": ("prisma_widgets.sae", "SAE"),
    "ActivationStore": ("prisma_widgets.sae", "ActivationStore"),
    "feature_stats": ("prisma_widgets.sae", "feature_stats"),
    "FeatureStats": ("prisma_widgets.sae", "FeatureStats"),
    "FeatureEdit": ("prisma_widgets.hooked.splice", "FeatureEdit"),
    "steer": ("prisma_widgets.hooked.splice", "steer"),
    "AttentionGrid": ("prisma_widgets.widgets.attention_grid", "AttentionGrid"),
    "LogitLens": ("prisma_widgets.widgets.logit_lens", "LogitLens"),
    "PatchingHeatmap": ("prisma_widgets.widgets.patching_heatmap", "PatchingHeatmap"),
    "FeatureGallery": ("prisma_widgets.widgets.feature_gallery", "FeatureGallery"),
    "LogitAttribution": ("prisma_widgets.widgets.logit_attribution", "LogitAttribution"),
    "link": ("prisma_widgets.widgets.link", "link"),
    "save_html": ("prisma_widgets.widgets.page", "save_html"),
    "analysis": ("prisma_widgets.analysis", None),
    "hooked": ("prisma_widgets.hooked", None),
    "zoo": ("prisma_widgets.zoo", None),
    "widgets": ("prisma_widgets.widgets", None),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'prisma_widgets' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)


if TYPE_CHECKING:  # static tools see the real names
    from . import analysis, hooked, widgets, zoo
    from .analysis.corrupt import corrupt
    from .hooked.adapters.base import UnsupportedModelError
    from .hooked.cache import ActivationCache
    from .hooked.config import HookedViTConfig
    from .hooked.hook_points import HookNameError, act_name
    from .hooked.loading import OfflineError, load, offline
    from .hooked.model import HookedViT
    from .hooked.splice import FeatureEdit, steer
    from .sae import SAE, ActivationStore, FeatureStats, cache_activations, feature_stats, train_sae
    from .widgets.attention_grid import AttentionGrid
    from .widgets.logit_lens import LogitLens
    from .widgets.feature_gallery import FeatureGallery
    from .widgets.link import link
    from .widgets.logit_attribution import LogitAttribution
    from .widgets.page import save_html
    from .widgets.patching_heatmap import PatchingHeatmap
