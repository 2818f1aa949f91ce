"""The app's tabs: each is a title and a function ``(model, image) -> widget``, registered in :data:`TABS`.

Add a widget to the app by appending one :class:`Tab`; the app builds a tab's widget only when the tab is
shown, and again when the model or the image changes.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

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
    #: shown with a spinner while the tab's widget is built the first time (say what takes how long)
    waiting: str = "computing…"


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


def salient_patches(image: np.ndarray, grid: tuple[int, int], fraction: float = 0.25) -> list[int]:
    """Flat indices of the patches least like the image's border (its likely background): the object to corrupt.

    Each patch's mean colour is compared with the median colour of the image's outer rows and columns; the
    ``fraction`` farthest patches are returned (at least one). On the mice's scenes (bright shapes on dark
    backgrounds) these are the shapes' patches; on a photo, the parts least like its edges.

    Example:
        >>> import numpy as np
        >>> image = np.zeros((64, 64, 3), np.uint8); image[16:32, 16:32] = 255
        >>> salient_patches(image, (8, 8), fraction=4 / 64)
        [18, 19, 26, 27]
    """
    rows, cols = grid
    h, w = image.shape[0] // rows * rows, image.shape[1] // cols * cols
    pixels = image[:h, :w].astype(np.float64)
    border = np.concatenate([pixels[:2].reshape(-1, 3), pixels[-2:].reshape(-1, 3),
                             pixels[:, :2].reshape(-1, 3), pixels[:, -2:].reshape(-1, 3)])
    means = pixels.reshape(rows, h // rows, cols, w // cols, 3).mean((1, 3)).reshape(-1, 3)
    distance = np.linalg.norm(means - np.median(border, 0), axis=1)
    k = max(1, round(fraction * rows * cols))
    return sorted(int(i) for i in np.argsort(-distance, kind="stable")[:k])


def _is_default(image: np.ndarray) -> bool:
    from .inputs import default_image

    return image.shape == (64, 64, 3) and np.array_equal(image, default_image())


def patching_heatmap(model: HookedViT, image: np.ndarray) -> Any:
    """The patching demo: a real minimal pair, so the effects mean something.

    For the app's own scene (a classifier's single-shape training makes a scene's top class arbitrary) the
    demo is ``zoo.shape_pair``: a shape, then the same image with another shape in its place. For an
    uploaded image, its most salient patches (:func:`salient_patches`) are masked; if that leaves the top
    class, they are swapped for noise. The widget's title says which pair it shows.
    """
    from prisma_widgets import zoo
    from prisma_widgets.analysis.corrupt import corrupt
    from prisma_widgets.widgets.patching_heatmap import PatchingHeatmap

    cfg = model.cfg
    runs = cfg.n_layers * cfg.n_tokens
    method = "exact" if runs <= MAX_EXACT_PATCHING_RUNS else "attribution"
    options = {"method": method, "prompts": clip_prompts(model)}
    if _is_default(image):
        clean, corrupted, (a, b), _ = zoo.shape_pair(seed=0)
        title = (f"demo pair: a {zoo.SHAPE_CLASSES[a]}, then the same image with a {zoo.SHAPE_CLASSES[b]} in its "
                 "place (zoo.shape_pair); upload an image to patch its own")
        return PatchingHeatmap(model, model.display_images(clean)[0], model.display_images(corrupted)[0],
                               title=title, **options)
    clean = model.display_images(image)[0]
    grid = tuple(cfg.grid)
    patches = salient_patches(clean, grid)
    problem: Exception | None = None
    for mode in ("mask", "noise"):
        corrupted = corrupt(clean, patches, mode=mode, grid=grid)
        title = f"your image, its {len(patches)} most salient patches corrupted by {mode}"
        try:
            return PatchingHeatmap(model, clean, corrupted, title=title, **options)
        except ValueError as err:  # the top class did not change: try a stronger corruption
            problem = err
    raise ValueError(f"corrupting the {len(patches)} most salient patches leaves the top class: paint other patches "
                     f"in the Activation patching tab's editor ({problem})")


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
                    "a clean image and a corrupted one (the title says which): which layer and token carry "
                    "the clean answer back (effect 1 = all of it, 0 = none)"))
if _available("prisma_widgets.widgets.feature_gallery"):
    TABS.append(Tab("SAE features", feature_gallery,
                    "a small sparse autoencoder trained here on synthetic scenes; your image comes first",
                    waiting=f"training a small sparse autoencoder on {SAE_SCENES} synthetic scenes, once per "
                            "model: about half a minute for a mouse on a laptop CPU (longer for a hub ViT)…"))
