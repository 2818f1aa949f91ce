"""Sparse autoencoders for vision transformers: cache activations to disk, train, save, load, evaluate.

>>> import prisma_widgets as pw
>>> store = pw.cache_activations(model, images, "blocks.3.hook_resid_post", "cache/")   # doctest: +SKIP
>>> sae = pw.train_sae(store, expansion=16, arch="topk", k=32, checkpoint_dir="runs/sae")  # doctest: +SKIP
>>> sae.evaluate(store, model=model, images=images)                                  # doctest: +SKIP
"""

from .caching import cache_activations
from .features import FeatureStats, feature_stats
from .modules import SAE
from .store import ActivationStore
from .train import train_sae

__all__ = ["SAE", "ActivationStore", "FeatureStats", "cache_activations", "feature_stats", "train_sae"]
