"""SAE files: ``cfg.json`` + ``sae_weights.safetensors`` (the SAE-Lens layout), never pickle.

``SAE.save`` writes through :func:`save_sae`; ``SAE.load`` reads through :func:`read_sae` and builds the
module from what it returns (so this module needs the SAE class only for type hints).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import torch

from ..files import (atomic_save_safetensors, atomic_write_json, check_writable, checked_tensors, read_json,
                     read_safetensors, remove_stale_temps)
from ..hooked.capture import hook_width
from .checks import SAE_FILE_FIX, check_sae_config_fields
from .config import K_ARCHS, SAEConfig, param_shapes

if TYPE_CHECKING:
    from ..hooked.model import HookedViT
    from .modules import SAE

WEIGHTS = "sae_weights.safetensors"
CONFIG = "cfg.json"
WEIGHT_KEYS = ("W_enc", "b_enc", "W_dec", "b_dec")


def save_sae(sae: SAE, path: str) -> str:
    """Write ``sae`` to the folder ``path`` (created if needed) and return it; see :meth:`SAE.save`."""
    path = check_writable(os.fspath(path), "an SAE")
    remove_stale_temps(path, names=(WEIGHTS, CONFIG))
    c = sae.cfg
    tensors = {k: getattr(sae, k).detach().float().cpu().contiguous() for k in param_shapes(c)}
    if c.arch == "batchtopk":
        tensors["threshold"] = sae.threshold.detach().float().cpu().reshape(1).contiguous()
    cfg = {
        # the SAE-Lens fields
        "d_in": c.d_in,
        "d_sae": c.d_sae,
        "architecture": {"topk": "topk", "batchtopk": "batchtopk", "relu": "standard", "jumprelu": "jumprelu",
                         "gated": "gated"}[c.arch],
        "activation_fn": "topk" if c.arch == "topk" else "relu",
        "activation_fn_kwargs": {"k": c.k} if c.arch in K_ARCHS else {},
        "apply_b_dec_to_input": c.apply_b_dec_to_input,
        "normalize_activations": "none",
        "dtype": "float32",
        "hook_name": c.hook,
        "model_name": c.model,
        # ours
        "prisma_widgets": {"arch": c.arch, "k": c.k, "tokens": c.tokens, "extra": c.extra, "kind": c.kind,
                           "d_out": c.d_out, "hook_out": c.hook_out, "hooks": c.hooks, "n_layers": c.n_layers},
    }
    atomic_save_safetensors(tensors, os.path.join(path, WEIGHTS), what="SAE weights")
    atomic_write_json(os.path.join(path, CONFIG), cfg, indent=2, what="an SAE config")
    return path


def _config_from_file(cfg: dict[str, Any], source: str) -> SAEConfig:
    ours = cfg.get("prisma_widgets") or {}
    try:
        d_in, d_sae = int(cfg["d_in"]), int(cfg["d_sae"])
    except KeyError as err:
        raise ValueError(f"{source} has no {err.args[0]!r}: not an SAE config (expected d_in and d_sae)") from None
    arch_field = str(cfg.get("architecture", "standard")).lower()
    act = cfg.get("activation_fn", cfg.get("activation_fn_str", "relu"))
    act_kwargs = cfg.get("activation_fn_kwargs") or {}
    k = ours.get("k", act_kwargs.get("k", cfg.get("k")))
    if ours.get("arch"):
        arch = ours["arch"]
    elif arch_field == "batchtopk":
        arch = "batchtopk"
    elif arch_field == "topk" or act == "topk":
        arch = "topk"
    elif arch_field in ("jumprelu", "gated"):
        arch = arch_field
    elif arch_field in ("standard", "relu", "gated_relu") and act in ("relu", None):
        arch = "relu"
    else:
        raise ValueError(
            f"{source}: SAE architecture {arch_field!r} with activation {act!r} is not supported; "
            "prisma_widgets reads topk, batchtopk, standard (ReLU), jumprelu and gated SAEs"
        )
    norm = cfg.get("normalize_activations", "none")
    if norm not in (None, "none", False):
        raise ValueError(
            f"{source} normalises activations ({norm!r}) before encoding; this loader applies SAEs to raw "
            "activations. Fold the scale into W_enc / W_dec first, or re-save with normalize_activations='none'."
        )
    return SAEConfig(
        d_in=d_in, d_sae=d_sae, arch=arch, k=int(k) if k else (None if arch not in K_ARCHS else 32),
        apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input", True)),
        hook=cfg.get("hook_name") or cfg.get("hook_point"), model=cfg.get("model_name"),
        tokens=ours.get("tokens"), extra=ours.get("extra") or {},
        **{key: ours[key] for key in ("kind", "d_out", "hook_out", "hooks", "n_layers") if ours.get(key) is not None},
    )


def read_sae(path: str, model: HookedViT | None = None, hook: str | None = None) -> tuple[SAEConfig, dict[str, torch.Tensor]]:
    """The config and tensors of an SAE folder (ours or SAE-Lens'), shapes checked and, given ``model``, the
    hook width; see :meth:`SAE.load`."""
    path = os.fspath(path)
    folder = os.path.dirname(path) if path.endswith(".safetensors") else path
    weights = path if path.endswith(".safetensors") else os.path.join(folder, WEIGHTS)
    cfg_path = os.path.join(folder, CONFIG)
    for p in (cfg_path, weights):
        if not os.path.exists(p):
            raise FileNotFoundError(
                f"no {os.path.basename(p)} in {folder!r}: an SAE folder holds {CONFIG} and {WEIGHTS} "
                "(written by SAE.save or by SAE-Lens)"
            )
    raw = read_json(cfg_path, "the SAE's config", SAE_FILE_FIX)
    check_sae_config_fields(raw, cfg_path)
    cfg = _config_from_file(raw, cfg_path)
    tensors, _ = read_safetensors(weights, "the SAE's weights", SAE_FILE_FIX)
    checked_tensors(tensors, weights, "SAE weights", SAE_FILE_FIX)
    expected = param_shapes(cfg)
    missing = [k for k in expected if k not in tensors]
    if missing:
        raise ValueError(f"{weights} lacks {', '.join(missing)}; found {', '.join(sorted(tensors))}. {SAE_FILE_FIX}")
    for key, shape in expected.items():
        if tuple(tensors[key].shape) != shape:
            raise ValueError(f"{weights}: {key} has shape {list(tensors[key].shape)}, the config says {list(shape)}. "
                             + SAE_FILE_FIX)
    if model is not None:
        hook = hook or cfg.hook
        if hook is None:
            raise ValueError("to check the SAE against a model, name the hook: SAE.load(path, model=model, hook=...)")
        width = hook_width(model, hook)
        if width != cfg.d_in:  # (a transcoder's input hook; a crosscoder's first layer)
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
