"""What ``pw.train_sae`` checks before it trains or touches a file: every number, the data, the checkpoint folder.

Example:
    >>> import torch
    >>> from prisma_widgets.sae.train_checks import check_train_arguments
    >>> args = dict(expansion=4, arch="topk", k=8, l1=None, tokens=None, batch_size=256, lr=None, seed=0,
    ...             d_sae=None, steps=1e3, checkpoint_every=100, log_every=10, aux_k=None, aux_coef=1 / 32,
    ...             dead_after_tokens=None, b_dec_init="mean", lr_decay=0.2, chunk_rows=None, callback=None)
    >>> check_train_arguments(args)["steps"]
    1000
    >>> check_train_arguments({**args, "lr": 0})
    Traceback (most recent call last):
    ...
    ValueError: lr must be a finite number > 0; got 0. Pass e.g. lr=0.0003, or lr=None for a default that fits the width.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..files import DamagedFileError, check_writable, remove_stale_temps
from ..validate import check_choice, check_finite, check_float, check_int, check_seed
from .config import ARCHS, K_ARCHS
from .store import ActivationStore


def check_train_arguments(args: dict[str, Any]) -> dict[str, Any]:
    """The numeric and choice arguments of ``train_sae``, checked and normalised (whole floats become ints)."""
    out = dict(args)
    out["arch"] = check_choice(args["arch"], "arch", ARCHS)
    out["expansion"] = check_int(args["expansion"], "expansion", at_least=1, example=16,
                                 fix="Pass e.g. expansion=16 (d_sae = expansion x the activation width).")
    out["d_sae"] = check_int(args["d_sae"], "d_sae", at_least=1, example=4096, none_ok=True)
    out["k"] = check_int(args["k"], "k", at_least=1, example=32, none_ok=args["arch"] not in K_ARCHS)
    out["l1"] = check_float(args["l1"], "l1", at_least=0, example=0.05, none_ok=True)
    out["tokens"] = check_int(args["tokens"], "tokens", at_least=1, example=10_000_000, none_ok=True,
                              fix="Pass the number of rows to train on (e.g. tokens=10_000_000), or None for a default.")
    out["steps"] = check_int(args["steps"], "steps", at_least=1, example=1000, none_ok=True,
                             fix="Pass steps >= 1, or steps=None (with tokens=...) for a default.")
    out["batch_size"] = check_int(args["batch_size"], "batch_size", at_least=1, example=4096)
    out["lr"] = check_float(args["lr"], "lr", above=0, none_ok=True,
                            fix="Pass e.g. lr=0.0003, or lr=None for a default that fits the width.")
    out["seed"] = check_seed(args["seed"])
    out["checkpoint_every"] = check_int(args["checkpoint_every"], "checkpoint_every", at_least=0, example=1000,
                                        fix="Pass e.g. checkpoint_every=1000 (0: only on Ctrl-C and at the end).")
    out["log_every"] = check_int(args["log_every"], "log_every", at_least=1, example=50)
    out["aux_k"] = check_int(args["aux_k"], "aux_k", at_least=1, example=256, none_ok=True)
    out["aux_coef"] = check_float(args["aux_coef"], "aux_coef", at_least=0, example=1 / 32)
    out["dead_after_tokens"] = check_int(args["dead_after_tokens"], "dead_after_tokens", at_least=1,
                                         example=10_000_000, none_ok=True)
    out["b_dec_init"] = check_choice(args["b_dec_init"], "b_dec_init", ("mean", "median"))
    out["lr_decay"] = check_float(args["lr_decay"], "lr_decay", at_least=0, at_most=1, example=0.2,
                                  fix="Pass the fraction of training over which lr decays to 0, e.g. lr_decay=0.2.")
    out["chunk_rows"] = check_int(args["chunk_rows"], "chunk_rows", at_least=1, example=1 << 18, none_ok=True)
    out["l0"] = check_float(args.get("l0"), "l0", at_least=0, example=0.002, none_ok=True)
    out["bandwidth"] = check_float(args.get("bandwidth"), "bandwidth", above=0, example=0.1, none_ok=True,
                                   fix="Pass the JumpReLU kernel's width in units of the activations' RMS, e.g. "
                                       "bandwidth=0.1.")
    out["threshold_init"] = check_float(args.get("threshold_init"), "threshold_init", at_least=0, example=0.5,
                                        none_ok=True)
    if args["callback"] is not None and not callable(args["callback"]):
        raise TypeError(f"callback must be a function callback(step, sae, metrics); got {type(args['callback']).__name__}")
    return out


def check_widths(d_in: int, d_sae: int, k: int | None, aux_k: int | None, arch: str) -> None:
    """Once the data's width is known: the SAE must be wide enough for ``k`` and ``aux_k``."""
    if arch in K_ARCHS and k is not None and k > d_sae:
        raise ValueError(f"k={k} is larger than the SAE width d_sae={d_sae} ({d_in}-wide data); pass k <= {d_sae}, "
                         "or a larger expansion / d_sae")
    if aux_k is not None and aux_k > d_sae:
        raise ValueError(f"aux_k={aux_k} is larger than the SAE width d_sae={d_sae}; pass aux_k <= {d_sae} "
                         "(or None for a default)")


def check_training_data(data: Any) -> None:
    """An :class:`ActivationStore` or a 2-D tensor ``[rows, d]`` with at least one row, finite (a store's rows
    are checked chunk by chunk as they are read)."""
    if isinstance(data, ActivationStore):
        return
    if not isinstance(data, torch.Tensor) or data.ndim != 2:
        shape = list(data.shape) if hasattr(data, "shape") else ""
        raise TypeError(
            f"train_sae takes an ActivationStore or a 2-D tensor [rows, d]; got {type(data).__name__}{shape}. "
            "Cache activations with pw.cache_activations, or pass torch.as_tensor(rows) shaped [rows, d]."
        )
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise ValueError(f"train_sae got no data: the tensor is {list(data.shape)}. Pass at least one row of "
                         "activations, [rows, d] with rows >= 1 and d >= 1.")
    if data.dtype == torch.bool or data.is_complex():
        raise TypeError(f"train_sae needs real-valued activations; got a {data.dtype} tensor")
    check_finite(data, "the training data",
                 "drop those rows (data[torch.isfinite(data).all(1)]) or fix what produced them")


def prepare_checkpoint_dir(folder: str) -> None:
    """Make sure the checkpoint folder can be written before training starts; clear a killed run's temp files."""
    check_writable(folder, "SAE checkpoints")
    remove_stale_temps(folder)
    sae_folder = os.path.join(folder, "sae")
    if os.path.isdir(sae_folder):
        remove_stale_temps(sae_folder)


def damaged_checkpoint(path: str, problem: str) -> DamagedFileError:
    """The error for a checkpoint that cannot be resumed from."""
    return DamagedFileError(
        f"{path} is damaged: {problem}. Delete it (and checkpoint.json next to it) to train from the start, or "
        "pass another checkpoint_dir."
    )
