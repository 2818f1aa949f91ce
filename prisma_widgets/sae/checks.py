"""Checks the SAE code shares: the fields of an SAE's ``cfg.json``, and the width of activations handed to an SAE.

Example:
    >>> import torch
    >>> from prisma_widgets.sae.checks import check_activation_width
    >>> check_activation_width(torch.zeros(2, 8), 8, "blocks.0.hook_resid_post")
    >>> check_activation_width(torch.zeros(2, 5), 8, "blocks.0.hook_resid_post")
    Traceback (most recent call last):
    ...
    ValueError: this SAE reads 8-wide activations (d_in=8), but got activations of shape [2, 5]. Pass the activations of the hook it was trained on ('blocks.0.hook_resid_post'), [..., 8].
"""

from __future__ import annotations

from typing import Any

from ..files import DamagedFileError

#: what to do about a damaged SAE file
SAE_FILE_FIX = ("Save the SAE again (sae.save(folder)), or copy / download the folder again: the file is "
                "truncated, empty or not what SAE.save writes.")


def check_activation_width(x: Any, d_in: int, hook: str | None) -> None:
    """Refuse activations whose last axis is not the SAE's ``d_in``, naming the hook it reads."""
    if hasattr(x, "is_floating_point") and not x.is_floating_point():
        raise TypeError(f"an SAE reads float activations; got a {x.dtype} tensor {list(x.shape)}. Pass x.float().")
    if x.ndim == 0 or x.shape[-1] != d_in:
        where = f"the hook it was trained on ({hook!r})" if hook else "the hook it was trained on"
        raise ValueError(
            f"this SAE reads {d_in}-wide activations (d_in={d_in}), but got activations of shape "
            f"{list(x.shape)}. Pass the activations of {where}, [..., {d_in}]."
        )


def check_sae_config_fields(cfg: Any, path: str) -> None:
    """The fields of an SAE ``cfg.json`` that must be there and be numbers before the config is built."""
    if not isinstance(cfg, dict):
        raise DamagedFileError(f"{path} is damaged: it holds a {type(cfg).__name__}, not an SAE config object. "
                               + SAE_FILE_FIX)
    for key in ("d_in", "d_sae"):
        if key not in cfg:
            continue  # missing: the reader says what an SAE config needs
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DamagedFileError(f"{path} is damaged: {key}={value!r} is not a width (an integer >= 1). "
                                   + SAE_FILE_FIX)
    ours = cfg.get("prisma_widgets") or {}
    kwargs = cfg.get("activation_fn_kwargs") or {}
    for k in (ours.get("k") if isinstance(ours, dict) else None,
              kwargs.get("k") if isinstance(kwargs, dict) else None, cfg.get("k")):
        if k is None:
            continue
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise DamagedFileError(f"{path} is damaged: k={k!r} is not a number of active latents (an integer "
                                   ">= 1). " + SAE_FILE_FIX)
        if isinstance(cfg.get("d_sae"), int) and k > cfg["d_sae"]:
            raise DamagedFileError(f"{path} is damaged: k={k} is larger than d_sae={cfg['d_sae']}. " + SAE_FILE_FIX)


#: what to do about damaged feature statistics
STATS_FIX = ("Compute them again (pw.feature_stats(model, sae, images).save(folder)), or copy the folder again: "
             "the file is truncated, empty or not what FeatureStats.save writes.")


def check_sae_like(sae: Any) -> None:
    """Refuse something that is not an SAE (feature statistics need ``encode``, ``W_dec`` and ``d_sae``)."""
    missing = [a for a in ("encode", "W_enc", "W_dec", "d_sae", "d_in", "cfg") if not hasattr(sae, a)]
    if missing:
        raise TypeError(f"sae must be a pw.SAE (loaded with pw.SAE.load or trained with pw.train_sae); got a "
                        f"{type(sae).__name__} without {', '.join(missing)}")
    if getattr(sae.cfg, "kind", "sae") == "crosscoder":
        raise ValueError(f"feature statistics read one hook, but this crosscoder reads {sae.cfg.n_layers} layers at once "
                         f"({sae.cfg.hooks}); evaluate it with sae.evaluate(store, model=..., images=...), or pass an "
                         "SAE or a transcoder")


def check_stats_arrays(arrays: dict[str, Any], meta: dict[str, Any], path: str) -> None:
    """Feature statistics read from ``path``: every array there, shapes that agree, finite numbers."""
    import numpy as np

    from ..validate import check_finite

    def damaged(problem: str) -> DamagedFileError:
        return DamagedFileError(f"{path} is damaged: {problem}. {STATS_FIX}")

    needed = ("frequency", "mean_activation", "max_activation", "top_images", "top_tokens", "top_values",
              "top_maps", "sample_images", "sample_values", "sample_maps")
    missing = [k for k in needed if k not in arrays]
    if missing:
        raise damaged(f"it lacks {', '.join(missing)}")
    f = arrays["frequency"].shape[0] if arrays["frequency"].ndim == 1 else -1
    k, s = arrays["top_images"].shape[-1], arrays["sample_images"].shape[-1]
    t = arrays["top_maps"].shape[-1]
    shapes = {"frequency": (f,), "mean_activation": (f,), "max_activation": (f,), "top_images": (f, k),
              "top_tokens": (f, k), "top_values": (f, k), "top_maps": (f, k, t), "sample_images": (f, s),
              "sample_values": (f, s), "sample_maps": (f, s, t)}
    if "class_effects" in arrays:
        shapes["class_effects"] = (f, arrays["class_effects"].shape[-1])
    for key, shape in shapes.items():
        if tuple(arrays[key].shape) != shape:
            raise damaged(f"{key} has shape {list(arrays[key].shape)}, where the other arrays say {list(shape)}")
    names = meta.get("class_names")
    if names is not None and "class_effects" in arrays and len(names) != shapes["class_effects"][1]:
        raise damaged(f"{len(names)} class names for {shapes['class_effects'][1]} classes of effects")
    n = meta["n_images"]
    for key in ("top_images", "sample_images"):
        a = arrays[key]
        if a.size and (a.min() < -1 or a.max() >= n):
            raise damaged(f"{key} refers to image {int(a.max() if a.max() >= n else a.min())}, outside 0..{n - 1}")
    for key in ("frequency", "mean_activation", "max_activation", "top_values", "sample_values", "class_effects"):
        if key in arrays and np.issubdtype(arrays[key].dtype, np.floating):
            try:
                check_finite(arrays[key], f"{key} in {path}", STATS_FIX)
            except ValueError as err:
                raise DamagedFileError(str(err)) from None


def check_stats_meta(meta: Any, path: str, fmt: str) -> None:
    """The fields of a ``stats.json``."""
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise DamagedFileError(f"{path} does not hold feature statistics (no format {fmt!r}). {STATS_FIX}")
    for key, kind in (("hook", str), ("tokens", str), ("n_images", int), ("grid", list), ("n_prefix_tokens", int)):
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            raise DamagedFileError(f"{path} is damaged: its {key!r} is {meta.get(key)!r}. {STATS_FIX}")
    if meta["n_images"] < 1 or len(meta["grid"]) != 2 or meta["n_prefix_tokens"] < 0:
        raise DamagedFileError(f"{path} is damaged: n_images={meta['n_images']}, grid={meta['grid']}, "
                               f"n_prefix_tokens={meta['n_prefix_tokens']}. {STATS_FIX}")


def check_sae_fits_hook(d_in: int, model: Any, hook: str, width: int) -> None:
    """Refuse an SAE whose ``d_in`` is not the hook's width ``width``, before any batch runs."""
    if width != d_in:
        raise ValueError(
            f"this SAE reads {d_in}-wide activations (d_in={d_in}), but {hook!r} of "
            f"{getattr(model, 'name', None) or 'this model'} is {width} wide. Use an SAE trained on this hook and "
            f"model, or pass the hook it was trained on (one {d_in} wide)."
        )
