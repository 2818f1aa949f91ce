"""FeatureGallery's detail panel, computed in Python: the feature's histograms, its logit-effect strength,
and steering (the class or prompt probabilities when the feature is zeroed, doubled or clamped).

* :func:`activation_histogram`: the feature's activation at every token of the random sample of images where
  it fires (``FeatureStats.sample_maps``, uniform over those images), zeros left out, in equal bins from 0 to
  its largest activation;
* :func:`effect_histogram`: its direct effect on every class (or prompt) logit (``class_effects``: what one
  unit of the feature adds through its decoder direction), in equal bins;
* :func:`push`: the largest of those effects, the feature's logit-effect strength (the default sort);
* :func:`steer_probabilities`: the model run on the feature's top images with the SAE spliced in and the
  reconstruction error kept, so only the edit changes anything; returns the classes whose mean probability
  moved most, before and after.

Example:
    >>> import numpy as np
    >>> counts, edges = equal_bins(np.array([0.5, 1.0, 1.5, 2.0]), 4, 0.0, 2.0)
    >>> counts, edges[-1]
    ([0, 1, 1, 2], 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..validate import check_choice, check_finite, check_int
from ._base import encode_array, quantize_rows

#: bars in each histogram
BINS = 24
#: the steering edits the panel offers (a ``FeatureEdit`` op, and whether it takes a value)
STEER_OPS = ("zero", "scale", "clamp")
#: classes listed in a steering result
STEER_CLASSES = 5


def equal_bins(values: np.ndarray, bins: int, lo: float, hi: float) -> tuple[list[int], list[float]]:
    """``(counts, edges)`` of ``values`` in ``bins`` equal bins over ``[lo, hi]`` (a point range widened a little)."""
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(np.asarray(values, np.float64), bins=bins, range=(lo, hi))
    return counts.astype(int).tolist(), [float(e) for e in edges]


def activation_histogram(stats: Any, feature: int, bins: int = BINS) -> tuple[list[int], list[float]]:
    """The feature's nonzero activations over the tokens of its sampled images (see the module docstring)."""
    keep = stats.sample_images[feature] >= 0
    values = stats.sample_maps[feature][keep].astype(np.float32).ravel()
    values = values[values > 0]
    if values.size == 0:
        return [], []
    return equal_bins(values, bins, 0.0, float(max(values.max(), stats.max_activation[feature])))


def effect_histogram(stats: Any, feature: int, bins: int = BINS) -> tuple[list[int], list[float]]:
    """The feature's direct effect on every class logit, binned; empty without class effects."""
    if stats.class_effects is None:
        return [], []
    e = stats.class_effects[feature].astype(np.float64)
    return equal_bins(e, bins, float(e.min()), float(e.max()))


def push(stats: Any) -> np.ndarray:
    """Per feature, the largest direct effect on any class logit (0 without class effects), float32 ``[F]``."""
    if stats.class_effects is None or stats.class_effects.shape[1] == 0:
        return np.zeros(stats.d_sae, np.float32)
    return stats.class_effects.max(axis=1).astype(np.float32)


def check_steer_request(request: Any, d_sae: int) -> tuple[int, str, float]:
    """``(feature, op, value)`` of a steering request from the view, checked."""
    if not isinstance(request, dict):
        raise TypeError(f"a steering request is a dict {{'feature', 'op', 'value'}}; got {type(request).__name__}")
    feature = request.get("feature")
    if isinstance(feature, bool) or not isinstance(feature, int) or not 0 <= feature < d_sae:
        raise ValueError(f"steering needs a feature in 0..{d_sae - 1}; got {feature!r}")
    op = check_choice(request.get("op"), "op", STEER_OPS)
    value = request.get("value", 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"the steering value must be a number; got {value!r}")
    check_finite(np.asarray([value], np.float64), "the steering value", "Type a finite number, e.g. 10.")
    return int(feature), op, float(value)


def steer_probabilities(model: Any, sae: Any, stats: Any, images: list[Any], feature: int, op: str, value: float,
                        prompts: list[str] | None) -> dict[str, Any]:
    """Mean class (or prompt) probabilities over ``images`` before and after the edit; the classes that moved most."""
    import torch

    from ..analysis.readout import Readout, needs_prompts
    from ..hooked.splice import FeatureEdit

    readout = Readout(model, prompts if needs_prompts(model) else None)
    with torch.no_grad():
        pixels = model.preprocess(images)
        saes = [(stats.hook, sae, stats.tokens)]  # the tokens the statistics encoded
        before = torch.softmax(readout.scores(model(pixels)).float(), -1).mean(0)
        edit = FeatureEdit(feature, op, value)
        after = torch.softmax(readout.scores(model.run_with_saes(pixels, saes=saes, keep_error=True,
                                                                 edits=[edit])).float(), -1).mean(0)
    delta = (after - before).cpu().numpy()
    order = np.argsort(-np.abs(delta), kind="stable")[:STEER_CLASSES]
    note = ("" if np.abs(delta).max() > 1e-7 else "no class moved: nothing downstream of this hook reads the tokens "
            "the edit changed (e.g. patch tokens after the last block of a model that reads out its CLS token)")
    return {
        "feature": feature, "op": op, "value": value, "images": len(images), "note": note,
        "classes": [int(c) for c in order],
        "before": [float(before[c]) for c in order], "after": [float(after[c]) for c in order],
    }


def list_order(stats: Any, sort_by: str, descending: bool = True, hide_dead: bool = True) -> list[int]:
    """Feature ids in the view's list order with no query (``listOrder`` in ``feature_gallery/data.ts``): dead
    features left out on request, sorted by ``sort_by``, ties by feature index."""
    key = {"push": push(stats), "frequency": stats.frequency, "mean": stats.mean_activation,
           "max": stats.max_activation, "index": np.arange(stats.d_sae)}[sort_by].astype(np.float64)
    ids = np.arange(stats.d_sae)
    if hide_dead:
        ids = ids[stats.frequency > 0]
    k = key[ids]
    order = np.lexsort((ids, -k if descending else k))
    return [int(i) for i in ids[order]]


def density_histogram(frequency: np.ndarray, bins: int = 40) -> tuple[list[int], list[float]]:
    """``(counts, edges)`` of ``log10(frequency)`` over the features that fire (edges in log10 units)."""
    f = np.asarray(frequency, dtype=np.float64)
    live = np.log10(f[f > 0])
    if live.size == 0:
        return [0], [-1.0, 0.0]
    lo, hi = math.floor(live.min() * 4) / 4, max(math.ceil(live.max() * 4) / 4, math.floor(live.min() * 4) / 4 + 0.25)
    counts, edges = np.histogram(live, bins=bins, range=(lo, hi))
    return counts.astype(int).tolist(), edges.astype(float).tolist()


def thumbnail(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image`` shrunk (bilinear) so its longer side is at most ``max_side`` pixels."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    from PIL import Image

    s = max_side / max(h, w)
    return np.asarray(Image.fromarray(image).resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR))


def quantized_maps(maps: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
    """Activation maps as uint8 with one float32 scale per map, each encoded for a trait."""
    q, s = quantize_rows(np.asarray(maps, dtype=np.float32))
    return encode_array(q), encode_array(s)


def active_features(model: Any, sae: Any, stats: Any, source: Any, image_ids: Sequence[int],
                    n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` strongest features at every token of each image (see ``FeatureGallery.active_features``)."""
    import torch

    from ..hooked.capture import capture, token_rows

    n = check_int(n, "n", at_least=1, example=8)
    ids = [check_int(i, "image_ids[...]", at_least=0, at_most=stats.n_images - 1,
                     fix=f"Pass indices of the gallery's images, 0..{stats.n_images - 1}.") for i in image_ids]
    if not ids:
        T = stats.tokens_per_image
        return np.zeros((0, T, n), np.int32), np.zeros((0, T, n), np.float32)
    with torch.no_grad():
        pixels = model.preprocess([source.item(i) for i in ids])
        x = token_rows(model, capture(model, pixels, stats.hook), stats.hook, stats.tokens).float()
        f = sae.encode(x.to(sae.W_enc.device, sae.W_enc.dtype)).float().cpu()
        top = f.topk(min(n, f.shape[-1]), dim=-1)
    vals = top.values.numpy().astype(np.float32)
    feats = np.where(vals > 0, top.indices.numpy(), -1).astype(np.int32)
    return feats, np.where(vals > 0, vals, 0).astype(np.float32)
