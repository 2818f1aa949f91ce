"""SAE files: ``cfg.json`` + ``sae_weights.safetensors`` (the SAE-Lens layout), never pickle; ViT-Prisma's
layout (``config.json`` + a state dict) and ``hf:<repo>`` downloads read too.

``SAE.save`` writes through :func:`save_sae`; ``SAE.load`` reads through :func:`read_sae` and builds the
module from what it returns (so this module needs the SAE class only for type hints).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch

from ..files import (
    atomic_save_safetensors,
    atomic_write_json,
    check_writable,
    checked_tensors,
    read_json,
    read_safetensors,
    remove_stale_temps,
)
from ..hooked.capture import hook_width
from .checks import SAE_FILE_FIX, check_sae_config_fields
from .config import SAEConfig
from .hub import download_sae
from .interop import from_lens_config, lens_config, lens_tensors, tensor_names, tensor_shapes
from .vit_prisma import is_vit_prisma_folder, read_vit_prisma

if TYPE_CHECKING:
    from ..hooked.model import HookedViT
    from .modules import SAE

WEIGHTS = "sae_weights.safetensors"
CONFIG = "cfg.json"
WEIGHT_KEYS = ("W_enc", "b_enc", "W_dec", "b_dec")


def save_sae(sae: SAE, path: str) -> str:
    """Write ``sae`` to the folder ``path`` (created if needed) and return it; see :meth:`SAE.save`.

    The folder is one SAE-Lens 6 reads with ``sae_lens.SAE.load_from_disk`` (see :mod:`.interop` for how each
    architecture is written); our own fields ride along under ``prisma_widgets``.
    """
    path = check_writable(os.fspath(path), "an SAE")
    c = sae.cfg
    cfg = lens_config(c)  # refuses what has no file form before anything is written
    tensors = lens_tensors(c, {k: getattr(sae, k) for k in tensor_names(c)})
    remove_stale_temps(path, names=(WEIGHTS, CONFIG))
    atomic_save_safetensors(tensors, os.path.join(path, WEIGHTS), what="SAE weights")
    atomic_write_json(os.path.join(path, CONFIG), cfg, indent=2, what="an SAE config")
    return path


def _sae_lens_folder(folder: str, weights: str) -> tuple[SAEConfig, dict[str, torch.Tensor]]:
    cfg_path = os.path.join(folder, CONFIG)
    for p in (cfg_path, weights):
        if not os.path.exists(p):
            raise FileNotFoundError(
                f"no {os.path.basename(p)} in {folder!r}: an SAE folder holds {CONFIG} and {WEIGHTS} "
                "(written by SAE.save or by SAE-Lens), or ViT-Prisma's config.json and a .pt / .safetensors state dict"
            )
    raw = read_json(cfg_path, "the SAE's config", SAE_FILE_FIX)
    check_sae_config_fields(raw, cfg_path)
    tensors, _ = read_safetensors(weights, "the SAE's weights", SAE_FILE_FIX)
    checked_tensors(tensors, weights, "SAE weights", SAE_FILE_FIX)
    return from_lens_config(raw, tensors, cfg_path)


def read_sae(path: str, model: HookedViT | None = None, hook: str | None = None) -> tuple[SAEConfig, dict[str, torch.Tensor]]:
    """The config and tensors of an SAE folder (ours, SAE-Lens' or ViT-Prisma's; ``"hf:<repo>[/<folder>]"``
    downloads one from the Hugging Face hub first), shapes checked and, given ``model``, the hook width; see
    :meth:`SAE.load`."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a folder, a weights file or 'hf:<repo>'; got a {type(path).__name__}")
    path = os.fspath(path)
    if path.startswith("hf:"):
        path = download_sae(path)
    folder = os.path.dirname(path) if os.path.isfile(path) or path.endswith(".safetensors") else path
    weights = path if path.endswith(".safetensors") else os.path.join(folder, WEIGHTS)
    if is_vit_prisma_folder(folder, path):
        cfg, tensors = read_vit_prisma(path)
        where = path
    else:
        cfg, tensors = _sae_lens_folder(folder, weights)
        where = weights
    for key, shape in tensor_shapes(cfg).items():
        if key == "threshold" and cfg.arch == "batchtopk":
            continue  # one value, checked where it is read
        if tuple(tensors[key].shape) != shape:
            raise ValueError(f"{where}: {key} has shape {list(tensors[key].shape)}, the config says {list(shape)}. "
                             + SAE_FILE_FIX)
    if model is not None:
        hook = hook or cfg.hook
        if hook is None:
            raise ValueError("to check the SAE against a model, name the hook: SAE.load(path, model=model, hook=...)")
        width = hook_width(model, hook)
        if width != cfg.d_in:
            raise ValueError(
                f"this SAE reads {cfg.d_in}-wide activations (d_in={cfg.d_in}), but {hook!r} of "
                f"{getattr(model, 'name', None) or 'this model'} is {width} wide. Load an SAE trained on this hook "
                f"and model, or pick a hook with width {cfg.d_in}."
            )
        if cfg.hook is None:
            cfg.hook = hook
        if cfg.model is None:
            cfg.model = getattr(model, "name", None)
    return cfg, tensors
