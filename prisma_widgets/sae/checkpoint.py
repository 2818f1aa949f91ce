"""Training checkpoints: the SAE's weights, the optimiser state and the RNG state in one safetensors file, the
run's position (step, rows consumed, arguments) in its metadata and, for people, in ``checkpoint.json``.

Both files are replaced atomically, so a run killed at any moment leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import torch

from ..files import DamagedFileError, atomic_save_safetensors, atomic_write_json, checked_tensors, read_safetensors

if TYPE_CHECKING:
    from .modules import SAE

CHECKPOINT = "checkpoint.safetensors"
CHECKPOINT_JSON = "checkpoint.json"


def rng_state() -> dict[str, torch.Tensor]:
    """The CPU (and, once used, CUDA) random-number generator states, as tensors."""
    state = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["rng.cuda"] = torch.cuda.get_rng_state()
    return state


def save_checkpoint(folder: str, sae: SAE, opt: torch.optim.Optimizer, meta: dict[str, Any]) -> None:
    """Write ``sae``, ``opt``'s state, the RNG state and ``meta`` (JSON-able) into ``folder``."""
    os.makedirs(folder, exist_ok=True)
    tensors = {f"sae.{k}": v.detach().cpu().contiguous() for k, v in sae.state_dict().items()}
    names = {id(p): n for n, p in sae.named_parameters()}
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                if isinstance(value, torch.Tensor):
                    tensors[f"opt.{names[id(p)]}.{key}"] = value.detach().cpu().reshape(value.shape).contiguous()
    tensors.update(rng_state())
    atomic_save_safetensors(tensors, os.path.join(folder, CHECKPOINT), metadata={"state": json.dumps(meta)},
                            what="an SAE checkpoint")
    atomic_write_json(os.path.join(folder, CHECKPOINT_JSON), meta, indent=2, what="an SAE checkpoint's summary")


def load_checkpoint(folder: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """``(tensors, meta)`` of the checkpoint in ``folder``, or ``None`` when it has none."""
    path = os.path.join(folder, CHECKPOINT)
    if not os.path.exists(path):
        return None
    fix = (f"Delete it (and {CHECKPOINT_JSON} next to it) to train from the start, or pass another checkpoint_dir.")
    tensors, metadata = read_safetensors(path, "an SAE checkpoint", fix)
    try:
        meta = json.loads(metadata["state"])
        for key, kind in (("step", int), ("position", int), ("any_dead", bool), ("variance", float),
                          ("args", dict)):
            if not isinstance(meta[key], kind):
                raise TypeError(f"{key}={meta[key]!r}")
        if not (meta["variance"] > 0 and meta["variance"] < float("inf")) or meta["step"] < 0 or meta["position"] < 0:
            raise ValueError(f"step={meta['step']}, position={meta['position']}, variance={meta['variance']}")
    except (KeyError, ValueError, TypeError) as err:
        raise DamagedFileError(f"{path} is damaged: its run state is missing or unreadable ({err}). {fix}") from None
    if "rng.cpu" not in tensors or not any(k.startswith("sae.") for k in tensors):
        raise DamagedFileError(f"{path} is damaged: it holds no SAE weights or random-number state. {fix}")
    checked_tensors({k: v for k, v in tensors.items() if not k.startswith("rng.")}, path, "checkpointed weights", fix)
    return tensors, meta


def restore_checkpoint(sae: SAE, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], path: str = "") -> None:
    """Put a loaded checkpoint's weights, optimiser state and RNG state back in place."""
    try:
        sae.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("sae.")})
    except RuntimeError as err:
        raise DamagedFileError(
            f"{path or 'the checkpoint'} does not fit this SAE ({str(err).splitlines()[0]} ...). Delete it to train "
            "from the start, or pass another checkpoint_dir."
        ) from None
    params = dict(sae.named_parameters())
    state = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            pname, field = key[4:].rsplit(".", 1)
            p = params[pname]
            dev = p.device if value.ndim > 0 or opt.defaults.get("fused") or opt.defaults.get("capturable") else "cpu"
            state.setdefault(p, {})[field] = value.to(dev)
    for p, s in state.items():
        opt.state[p] = s
    torch.set_rng_state(tensors["rng.cpu"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])


def check_same_run(folder: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Refuse to resume (or reuse) the run in ``folder`` when its arguments ``old`` differ from ``new``."""
    for key in new:
        if key in old and old[key] != new[key]:
            raise ValueError(
                f"the checkpoint in {folder!r} is from a run with {key}={old[key]!r}, "
                f"but this call has {key}={new[key]!r}. "
                f"Pass the same {key} to resume it, or use another checkpoint_dir to start a new run."
            )
