"""The app's tabs: each is a title and a function ``(model, image) -> widget``, registered in :data:`TABS`.

Add a widget to the app by appending one :class:`Tab`; the app builds a tab's widget only when the tab is
shown, and again when the model or the image changes.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..hooked.model import HookedViT

#: the exact patching sweep runs one forward pass per (layer, token); above this many, the gradient estimate
MAX_EXACT_PATCHING_RUNS = 1024


@dataclass(frozen=True)
class Tab:
    """One tab of the app: ``make(model, image)`` returns the anywidget to show (uint8 ``[H, W, 3]`` image)."""

    title: str
    make: Callable[[Any, np.ndarray], Any]
    about: str = ""


def clip_prompts(model: HookedViT) -> list[str] | None:
    """Prompts for a CLIP model's read-out (the shapes the mice know), or None for a classifier."""
    if model.cfg.readout != "text":
        return None
    from prisma_widgets import zoo

    return [zoo.PROMPT.format(c) for c in zoo.SHAPE_CLASSES]


def attention_grid(model: HookedViT, image: np.ndarray) -> Any:
    from prisma_widgets.widgets.attention_grid import AttentionGrid

    return AttentionGrid(model, image, rollout=True)


def logit_lens(model: HookedViT, image: np.ndarray) -> Any:
    from prisma_widgets.widgets.logit_lens import LogitLens

    return LogitLens(model, image, prompts=clip_prompts(model))


def central_patches(grid: tuple[int, int]) -> list[int]:
    """Flat indices of the middle half of the patch grid (rows and columns), at least one patch.

    Example:
        >>> central_patches((4, 4))
        [5, 6, 9, 10]
    """
    rows, cols = grid
    r0, r1 = rows // 4, max(rows // 4 + 1, rows - rows // 4)
    c0, c1 = cols // 4, max(cols // 4 + 1, cols - cols // 4)
    return [r * cols + c for r in range(r0, r1) for c in range(c0, c1)]


def patching_heatmap(model: HookedViT, image: np.ndarray) -> Any:
    from prisma_widgets.analysis.corrupt import corrupt
    from prisma_widgets.widgets.patching_heatmap import PatchingHeatmap

    cfg = model.cfg
    clean = model.display_images(image)[0]
    corrupted = corrupt(clean, central_patches(tuple(cfg.grid)), mode="mask", grid=tuple(cfg.grid))
    runs = cfg.n_layers * cfg.n_tokens
    method = "exact" if runs <= MAX_EXACT_PATCHING_RUNS else "attribution"
    return PatchingHeatmap(model, clean, corrupted, method=method, prompts=clip_prompts(model))


#: the workshop SAE: scenes it is trained on, training steps, batch rows, width (x d_model), active latents
SAE_SCENES, SAE_STEPS, SAE_BATCH, SAE_EXPANSION, SAE_K = 64, 80, 1024, 4, 8
#: the gallery shows the uploaded image and this many scenes
GALLERY_SCENES = 23


@lru_cache(maxsize=2)
def workshop_sae(model: HookedViT) -> Any:
    """A small top-k SAE on the last block's residual stream (patch tokens), trained on synthetic scenes.

    Nothing ships an SAE for every model, so the app trains one in seconds for the mice (longer for a hub
    ViT on CPU) and keeps it for the session's model.
    """
    import torch

    from prisma_widgets import zoo
    from prisma_widgets.sae import train_sae

    hook = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    with torch.no_grad():
        _, cache = model.run_with_cache(list(zoo.scenes(SAE_SCENES, seed=7).images),
                                        names_filter=lambda n: n == hook)
    acts = cache[hook][:, model.cfg.n_prefix_tokens:].reshape(-1, model.cfg.d_model).float()
    sae = train_sae(acts, expansion=SAE_EXPANSION, k=SAE_K, steps=SAE_STEPS, batch_size=SAE_BATCH,
                    progress=False, seed=0)
    sae.cfg.hook = hook
    return sae


def feature_gallery(model: HookedViT, image: np.ndarray) -> Any:
    from prisma_widgets import zoo
    from prisma_widgets.widgets.feature_gallery import FeatureGallery

    sae = workshop_sae(model)
    scenes = zoo.scenes(GALLERY_SCENES, seed=11)
    images = [model.display_images(image)[0]] + list(model.display_images(list(scenes.images)))
    labels = ["your image"] + [f"scene {i + 1}" for i in range(GALLERY_SCENES)]
    return FeatureGallery(model, sae, images, hook=sae.cfg.hook, prompts=clip_prompts(model), image_labels=labels)


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


TABS: list[Tab] = [
    Tab("Attention grid", attention_grid, "every head's attention for one query token (hover the image)"),
    Tab("Logit lens", logit_lens, "every patch's prediction at every layer"),
]
if _available("prisma_widgets.widgets.patching_heatmap"):
    TABS.append(Tab("Activation patching", patching_heatmap,
                    "the middle patches are masked; which layer and token carry the clean answer back"))
if _available("prisma_widgets.widgets.feature_gallery"):
    TABS.append(Tab("SAE features", feature_gallery,
                    "a small sparse autoencoder trained here on synthetic scenes; your image comes first"))
