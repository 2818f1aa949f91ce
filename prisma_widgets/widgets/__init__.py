"""Interactive widgets (anywidget): one module per widget, shared foundation in ``_base``.

Imported lazily by ``prisma_widgets``; importing this package does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WIDGETS = {
    "AttentionGrid": "attention_grid",
    "LogitLens": "logit_lens",
    "PatchingHeatmap": "patching_heatmap",
    "FeatureGallery": "feature_gallery",
    "LogitAttribution": "logit_attribution",
    "link": "link",
    "save_html": "page",
}

__all__ = sorted(_WIDGETS)


def __getattr__(name: str) -> Any:
    if name in _WIDGETS:
        return getattr(importlib.import_module(f".{_WIDGETS[name]}", __name__), name)
    raise AttributeError(f"module 'prisma_widgets.widgets' has no attribute {name!r}")
