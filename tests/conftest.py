"""Shared fixtures: small random-weight models of every supported family, and real photographs.

Nothing here touches a model hub: hub access is switched off before anything imports huggingface_hub.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PRISMA_WIDGETS_OFFLINE", "1")

import numpy as np
import pytest
import torch

# (name, kwargs): every timm architecture the backend promises, shrunk to 2 blocks and small images.
TIMM_ARCHS: dict[str, dict] = {
    "vit_tiny_patch16_224": dict(img_size=64),
    "deit3_small_patch16_224": dict(img_size=64),  # layer scale, no_embed_class
    "vit_small_patch14_reg4_dinov2": dict(img_size=56),  # 4 register tokens, headless
    "vit_medium_patch16_gap_256": dict(img_size=64),  # no CLS, average pooling
    "vit_base_patch16_clip_224": dict(img_size=64),  # norm_pre (pre-norm CLIP-style)
    "vit_small_patch16_384": dict(img_size=64),
}
OPEN_CLIP_ARCHS = ("ViT-B-32", "ViT-B-16")

_built: dict[str, object] = {}


def build(name: str):
    """A HookedViT per architecture, built once per session with fixed random weights."""
    if name not in _built:
        import prisma_widgets as pw

        torch.manual_seed(0)
        if name in TIMM_ARCHS:
            _built[name] = pw.load(name, pretrained=False, depth=2, **TIMM_ARCHS[name])
        else:
            _built[name] = pw.load(f"open_clip:{name}", pretrained=False)
    return _built[name]


@pytest.fixture(params=list(TIMM_ARCHS) + list(OPEN_CLIP_ARCHS))
def any_model(request):
    return build(request.param)


@pytest.fixture(params=list(TIMM_ARCHS))
def timm_model(request):
    return build(request.param)


@pytest.fixture
def tiny():
    return build("vit_tiny_patch16_224")


@pytest.fixture
def clip_b32():
    return build("ViT-B-32")


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    """A tabby cat (scikit-image's bundled photograph), uint8 [300, 451, 3]."""
    from skimage import data

    return data.chelsea()


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    from skimage import data

    return data.coffee()


def pixels_for(model, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A random preprocessed batch of the model's input size."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, *model.cfg.image_size, generator=g)


def card_percent(name: str, metric: str) -> float:
    """A bold percentage from the row of a bundled model's card whose first cell contains ``metric``."""
    import re

    from prisma_widgets.zoo import registry

    text = registry.card_path(name).read_text()
    match = re.search(rf"^\|[^|\n]*{re.escape(metric)}[^|\n]*\| \*\*([0-9.]+)%\*\*", text, flags=re.M)
    assert match, f"no '{metric}' row in {registry.card_path(name)}"
    return float(match.group(1)) / 100


@pytest.fixture
def one_thread():
    """Small tensors: one intra-op thread is faster, and much faster on a shared, busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def patched_by_hand(model, clean, corrupted, layer: int, tokens, site: str = "resid_pre") -> torch.Tensor:
    """The reference for patching: the clean ``blocks.{layer}.hook_{site}`` at ``tokens`` put into the corrupted
    run with one plain hook, one forward."""
    name = f"blocks.{layer}.hook_{site}"
    _, cache = model.run_with_cache(model.to_pixels(clean), names_filter=[name])

    def put(act, hook):
        act = act.clone()
        act[:, tokens] = cache[name][:, tokens]
        return act

    with torch.no_grad():
        return model.run_with_hooks(model.to_pixels(corrupted), [(name, put)])
