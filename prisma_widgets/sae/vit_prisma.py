"""ViT-Prisma's SAE files: a ``config.json`` (its runner config) next to a state dict (``.pt`` / ``.pth`` or
``.safetensors``), the layout its training checkpoints and published SAEs use.

What maps to what:

* ``W_enc [d_in, d_sae]``, ``b_enc``, ``W_dec [d_sae, d_in]``, ``b_dec``: the same names and layout as ours;
  ViT-Prisma always subtracts ``b_dec`` from the input (``apply_b_dec_to_input=True``);
* ``architecture="standard"`` with ``activation_fn_str="relu"`` is our ``relu``; with ``"topk"`` (``k`` in
  ``activation_fn_kwargs``) our ``topk``; ``"gated"`` (``b_gate``, ``r_mag``, ``b_mag``; its unused ``b_enc``
  is dropped) our ``gated``;
* the hook is ``hook_point``, else ``blocks.{hook_point_layer}.{layer_subtype}`` (TransformerLens names, as
  ours); ``cls_token_only`` gives ``tokens="cls"``, else ``"all"``; ``model_name`` the model;
* ``d_sae`` is the config's, else ``d_in * expansion_factor``.

Tensors are read with ``torch.load(weights_only=True)`` (or safetensors): a checkpoint that pickles
ViT-Prisma's config object next to the weights is refused with the one-line re-save that fixes it. Input
normalisations (ViT-Prisma's ``layer_norm`` and ``constant_norm_rescale`` run per token at run time) and
head-indexed hooks are refused: this package applies SAEs to raw activations.

Example:
    >>> from prisma_widgets.sae.vit_prisma import config_from_vit_prisma
    >>> cfg = config_from_vit_prisma({"d_in": 8, "expansion_factor": 4, "hook_point_layer": 2,
    ...                               "layer_subtype": "hook_resid_post", "architecture": "standard",
    ...                               "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 3},
    ...                               "normalize_activations": "none", "model_name": "vit"}, "config.json")
    >>> cfg.arch, cfg.d_sae, cfg.k, cfg.hook, cfg.tokens
    ('topk', 32, 3, 'blocks.2.hook_resid_post', 'all')
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any

import torch

from ..files import DamagedFileError, checked_tensors, read_json, read_safetensors
from .checks import SAE_FILE_FIX
from .config import SAEConfig
from .interop import our_archs, tensor_names

CONFIG = "config.json"
_WEIGHT_EXTS = (".pt", ".pth", ".safetensors")
_STEP = re.compile(r"n_images_(\d+)\.pt$")


def is_vit_prisma_folder(folder: str, path: str) -> bool:
    """Whether ``path`` (a folder, or a file in ``folder``) is laid out as ViT-Prisma saves SAEs."""
    if os.path.isfile(path) and path.endswith((".pt", ".pth")):
        return True
    return (os.path.isdir(folder) and os.path.isfile(os.path.join(folder, CONFIG))
            and not os.path.isfile(os.path.join(folder, "cfg.json")))


def _weights_file(folder: str) -> str:
    found = sorted(p for ext in _WEIGHT_EXTS for p in glob.glob(os.path.join(glob.escape(folder), f"*{ext}"))
                   if "log_feature_sparsity" not in os.path.basename(p))
    steps = [(int(m.group(1)), p) for p in found if (m := _STEP.search(os.path.basename(p)))]
    if len(found) == 1:
        return found[0]
    if steps and len(steps) == len(found):
        return max(steps)[1]  # training checkpoints: the last one
    if not found:
        raise FileNotFoundError(f"{folder!r} has ViT-Prisma's {CONFIG} but no state dict ({', '.join(_WEIGHT_EXTS)})")
    names = ", ".join(os.path.basename(p) for p in found)
    raise ValueError(f"{folder!r} holds several state dicts ({names}); pass the one to load: "
                     f"pw.SAE.load({os.path.join(folder, os.path.basename(found[-1]))!r})")


def _load_state_dict(path: str) -> dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        tensors, _ = read_safetensors(path, "the SAE's weights", SAE_FILE_FIX)
        return tensors
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - pickle refusals and damaged zips come as many types
        text = f"{type(err).__name__}: {err}"
        if "weights_only" in text or "Unsupported global" in text:
            raise ValueError(
                f"{path} pickles Python objects next to the weights (ViT-Prisma's older checkpoints store its config "
                "object), which prisma_widgets never unpickles. If you trust the file, keep only the tensors: "
                f"torch.save(torch.load({path!r}, weights_only=False)['state_dict'], 'weights.pt') and load that "
                f"next to its {CONFIG}."
            ) from None
        raise DamagedFileError(f"{path} is damaged: it cannot be read as a PyTorch state dict ({text}). "
                               + SAE_FILE_FIX) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DamagedFileError(f"{path} does not hold a state dict of tensors ({type(obj).__name__}). " + SAE_FILE_FIX)
    return {str(k): v for k, v in obj.items()}


def config_from_vit_prisma(raw: Any, source: str, tensors: dict[str, torch.Tensor] | None = None) -> SAEConfig:
    """Our :class:`SAEConfig` from a ViT-Prisma runner config (the dict in its ``config.json``)."""
    if not isinstance(raw, dict):
        raise DamagedFileError(f"{source} is damaged: it holds a {type(raw).__name__}, not a config object. "
                               + SAE_FILE_FIX)
    d_in = raw.get("d_in")
    if not isinstance(d_in, int) or isinstance(d_in, bool) or d_in < 1:
        raise DamagedFileError(f"{source} is damaged: d_in={d_in!r} is not a width. " + SAE_FILE_FIX)
    d_sae = raw.get("d_sae")
    if d_sae is None and isinstance(raw.get("expansion_factor"), int):
        d_sae = d_in * raw["expansion_factor"]
    if d_sae is None and tensors is not None and "W_enc" in tensors:
        d_sae = int(tensors["W_enc"].shape[-1])
    norm = raw.get("normalize_activations")
    if norm not in (None, "none", False):
        raise ValueError(
            f"{source}: this ViT-Prisma SAE normalises every token ({norm!r}) before encoding and undoes it after "
            "decoding; prisma_widgets applies SAEs to raw activations, so it would compute something else. Use an SAE "
            "trained with normalize_activations='none'."
        )
    if raw.get("hook_point_head_index") is not None:
        raise ValueError(f"{source}: this SAE reads one attention head (hook_point_head_index="
                         f"{raw['hook_point_head_index']}); prisma_widgets reads SAEs over a whole hook")
    hook = raw.get("hook_point")
    if not hook and raw.get("hook_point_layer") is not None:
        hook = f"blocks.{raw['hook_point_layer']}.{raw.get('layer_subtype') or 'hook_resid_post'}"
    arch_field = str(raw.get("architecture") or "standard").lower()
    act = str(raw.get("activation_fn_str") or "relu").lower()
    kwargs = raw.get("activation_fn_kwargs") or {}
    k = kwargs.get("k") if isinstance(kwargs, dict) else None
    if arch_field == "standard" and act in ("relu", "topk"):
        arch = "relu" if act == "relu" else "topk"
    elif arch_field in ("gated", "jumprelu") and act == "relu":
        arch = arch_field
    else:
        raise ValueError(f"{source}: ViT-Prisma architecture {arch_field!r} with activation {act!r} is not supported; "
                         "prisma_widgets reads its standard (relu, topk) and gated SAEs")
    if arch not in our_archs():
        raise ValueError(f"{source}: a {arch} SAE, and this version of prisma_widgets has no {arch} architecture yet")
    return SAEConfig(
        d_in=d_in, d_sae=int(d_sae) if d_sae is not None else 0, arch=arch,
        k=int(k) if arch == "topk" and k is not None else (min(32, int(d_sae or 1)) if arch == "topk" else None),
        apply_b_dec_to_input=True, hook=hook, model=raw.get("model_name"),
        tokens="cls" if raw.get("cls_token_only") else "all", extra={"source": "vit_prisma"},
    )


def read_vit_prisma(path: str) -> tuple[SAEConfig, dict[str, torch.Tensor]]:
    """Config and tensors of a ViT-Prisma SAE: ``path`` is its folder or its state-dict file."""
    folder = os.path.dirname(path) if os.path.isfile(path) else path
    weights = path if os.path.isfile(path) else _weights_file(folder)
    cfg_path = os.path.join(folder, CONFIG)
    if not os.path.isfile(cfg_path):
        raise FileNotFoundError(f"no {CONFIG} next to {weights!r}: a ViT-Prisma SAE is its config.json and a state "
                                "dict in one folder")
    tensors = {k: v.float() for k, v in _load_state_dict(weights).items()}
    checked_tensors(tensors, weights, "SAE weights", SAE_FILE_FIX)
    cfg = config_from_vit_prisma(read_json(cfg_path, "the SAE's config", SAE_FILE_FIX), cfg_path, tensors)
    missing = [k for k in tensor_names(cfg) if k not in tensors]
    if missing:
        raise ValueError(f"{weights} lacks {', '.join(missing)} (a ViT-Prisma {cfg.arch} SAE has "
                         f"{', '.join(tensor_names(cfg))}); found {', '.join(sorted(tensors))}. {SAE_FILE_FIX}")
    return cfg, {k: tensors[k] for k in tensor_names(cfg)}
