"""``pw.train_sae``: a resumable, data-parallel SAE training loop.

Determinism: the data order is a pure function of ``(seed, epoch)`` (chunk order, then a permutation inside each
chunk), so the data position is a single integer, the number of rows consumed. A checkpoint holds the weights,
the optimiser state, the RNG state, that position and the step; resuming from it replays exactly what an
uninterrupted run would have done (bit-identical on CPU).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..files import DamagedFileError
from ..validate import check_device
from .checkpoint import check_same_run, load_checkpoint, restore_checkpoint, save_checkpoint
from .config import K_ARCHS, UNIT_DECODER_ARCHS, SAEConfig
from .curves import LiveCurves
from .distributed import rank_and_world
from .interrupts import Interrupts, stop_together
from .losses import training_loss
from .modules import SAE, default_lr
from .store import ActivationStore
from .stream import RowStream
from .family_data import resolve_training_data
from .train_checks import check_train_arguments, check_widths, prepare_checkpoint_dir

FINAL = "sae"
#: how much faster than the weights a JumpReLU threshold learns (in units of the activations' RMS)
THRESHOLD_LR = 10.0
# the arguments check_train_arguments normalises (a whole float such as steps=1e4 becomes an int)
_CHECKED = ("expansion", "k", "l1", "tokens", "batch_size", "lr", "seed", "d_sae", "steps", "checkpoint_every",
            "log_every", "aux_k", "aux_coef", "dead_after_tokens", "lr_decay", "chunk_rows", "l0", "bandwidth",
            "threshold_init")


# ---------------------------------------------------------------- the loop
def train_sae(
    data: ActivationStore | torch.Tensor | tuple[torch.Tensor, torch.Tensor],
    expansion: int = 16,
    arch: str = "topk",
    k: int = 32,
    l1: float | None = None,
    tokens: int | None = None,
    batch_size: int = 4096,
    lr: float | None = None,
    device: str | torch.device | None = None,
    checkpoint_dir: str | None = None,
    seed: int = 0,
    *,
    d_sae: int | None = None,
    steps: int | None = None,
    checkpoint_every: int = 1000,
    log_every: int = 50,
    aux_k: int | None = None,
    aux_coef: float = 1 / 32,
    dead_after_tokens: int | None = None,
    b_dec_init: str = "mean",
    lr_decay: float = 0.2,
    show_curves: bool = False,
    progress: bool = True,
    callback: Callable[[int, SAE, dict[str, float] | None], None] | None = None,
    chunk_rows: int | None = None,
    l0: float | None = None,
    bandwidth: float | None = None,
    threshold_init: float | None = None,
    kind: str | None = None,
    hooks: Sequence[str] | None = None,
) -> SAE:
    """Train a sparse autoencoder on cached activations (an :class:`ActivationStore`) or a tensor ``[rows, d]``.

    ``tokens``: training budget in rows (default: one pass, at least ``min(10 passes, 2000 batches)``).
    ``arch``: ``"topk"`` (AuxK loss against dead latents), ``"batchtopk"``, ``"relu"`` (L1 weighted by decoder
    row norms, coefficient ``l1``, default 0.05 on the variance-normalised loss), ``"jumprelu"`` (a learned
    threshold per latent, trained through a straight-through estimator with a rectangle kernel of width
    ``bandwidth``; L0 penalty with coefficient ``l0``, default 0.002) or ``"gated"`` (gate and magnitude paths;
    L1 of the gate with coefficient ``l1``, default 0.05, plus the auxiliary loss through a frozen decoder).
    ``bandwidth`` and ``threshold_init`` are in units of the input's per-dimension RMS (defaults 0.1 and 0.5).

    ``kind``: ``"sae"``, ``"transcoder"`` (reads one hook, predicts another: data ``(inputs, targets)`` or a
    store of two hooks) or ``"crosscoder"`` (one dictionary over several layers: data ``[rows, n_layers, d]`` or
    a store of several hooks of one width); ``None`` infers it from the data. ``hooks`` picks (and orders) the
    hooks of a store, input first; with tensors it names them. ``d_sae`` defaults to ``expansion`` x the width
    of one hook read. See :mod:`prisma_widgets.sae.family_data`. With ``checkpoint_dir`` the run
    saves a checkpoint every ``checkpoint_every`` steps and on Ctrl-C, and the same call resumes it; a finished
    run's SAE is loaded and returned. Under ``torchrun`` each process takes its slice of every batch and
    gradients are averaged across processes; a Ctrl-C stops them all at the same step, within ``log_every``
    steps.
    """
    checked = check_train_arguments(locals())  # before anything runs or touches a file
    (expansion, k, l1, tokens, batch_size, lr, seed, d_sae, steps, checkpoint_every, log_every, aux_k, aux_coef,
     dead_after_tokens, lr_decay, chunk_rows, l0, bandwidth, threshold_init) = (checked[name] for name in _CHECKED)
    td = resolve_training_data(data, kind, hooks)
    kind = td.kind
    import torch.distributed as dist

    rank, world = rank_and_world()
    if device is None:
        device = torch.device(f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu")
    device = check_device(device)
    if checkpoint_dir is not None and rank == 0:
        prepare_checkpoint_dir(checkpoint_dir)
    if batch_size % world:
        raise ValueError(f"batch_size={batch_size} must divide evenly across {world} processes")
    stream = RowStream(td.source, seed, device, chunk_rows)
    d_in, w_in = td.d_in, td.width_in
    d_sae = int(d_sae or expansion * d_in)
    if tokens is None and steps is None:
        tokens = max(stream.n, min(10 * stream.n, 2000 * batch_size))
    total_steps = int(steps if steps is not None else math.ceil(tokens / batch_size))
    lr = float(lr if lr is not None else default_lr(d_sae, arch))
    l1 = float(l1 if l1 is not None else 0.05) if arch in ("relu", "gated") else None
    l0 = float(l0 if l0 is not None else 0.002) if arch == "jumprelu" else None
    check_widths(d_in, d_sae, k if arch in K_ARCHS else None, aux_k, arch)
    aux_k = int(aux_k or min(max(d_in // 2, 1), d_sae // 2 or 1))
    dead_after = int(dead_after_tokens or min(10_000_000, max(total_steps * batch_size // 10, batch_size)))
    meta_info = data.manifest if isinstance(data, ActivationStore) else {}
    family = {} if kind == "sae" else {"kind": kind, "d_out": td.d_out, "hook_out": td.hook_out,
                                       "hooks": td.hooks if kind == "crosscoder" else None, "n_layers": td.n_layers}
    cfg = SAEConfig(
        d_in=d_in, d_sae=d_sae, arch=arch, k=k if arch in K_ARCHS else None,
        hook=td.hook, model=meta_info.get("model"), tokens=meta_info.get("tokens"), **family,
    )
    args = {
        "d_in": d_in, "d_sae": d_sae, "arch": arch, "k": cfg.k, "l1": l1, "batch_size": batch_size, "lr": lr,
        "seed": seed, "steps": total_steps, "rows": stream.n, "aux_k": aux_k, "aux_coef": aux_coef,
        "dead_after_tokens": dead_after, "b_dec_init": b_dec_init, "lr_decay": lr_decay,
        "chunk_rows": stream.chunk_rows,
    }
    if kind != "sae":  # (only here, so SAE runs resume as before)
        args.update(kind=kind, d_out=td.d_out, n_layers=td.n_layers)
    if arch == "jumprelu":  # (only here, so the runs of other architectures resume as before)
        bandwidth = float(bandwidth if bandwidth is not None else 0.1)
        threshold_init = float(threshold_init if threshold_init is not None else 0.5)
        args.update(l0=l0, bandwidth=bandwidth, threshold_init=threshold_init)

    # ---- a finished run is reused
    if checkpoint_dir is not None and os.path.exists(os.path.join(checkpoint_dir, FINAL, "cfg.json")):
        ck = load_checkpoint(checkpoint_dir)
        if ck is not None:
            check_same_run(checkpoint_dir, ck[1]["args"], args)
        try:
            return SAE.load(os.path.join(checkpoint_dir, FINAL), device=device)
        except DamagedFileError as err:  # written again below from the final checkpoint, when there is one
            if ck is None:
                raise
            import warnings

            warnings.warn(f"{err} It is written again from the run's final checkpoint.", stacklevel=2)

    # ---- build (identically on every rank)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    sae = SAE(cfg, generator=gen)
    sample = stream.sample(65_536).to(device)
    inputs = sample[:, :w_in]
    if kind == "transcoder":  # the decoder writes the target's space: its bias and the loss scale come from there
        sample = sample[:, w_in:]
    with torch.no_grad():
        center = sample.mean(0)
        if b_dec_init == "median":
            center = _geometric_median(sample, center)
        elif b_dec_init != "mean":
            raise ValueError(f"b_dec_init must be 'mean' or 'median'; got {b_dec_init!r}")
        sae.b_dec.copy_(center.cpu().reshape(sae.b_dec.shape))
        variance = float((sample - sample.mean(0)).pow(2).sum(-1).mean().clamp_min(1e-12))
        # the input's per-dimension RMS: JumpReLU's threshold and bandwidth are in these units
        scale = float((inputs - inputs.mean(0)).pow(2).sum(-1).mean().clamp_min(1e-12) / w_in) ** 0.5
        if arch == "jumprelu":
            sae.threshold.fill_(threshold_init * scale)
    del sample, inputs
    bw = bandwidth * scale if arch == "jumprelu" else None
    sae.to(device)
    opt = _adam(sae, lr, scale)
    step, any_dead = 0, False
    if checkpoint_dir is not None:
        ck = load_checkpoint(checkpoint_dir)
        if ck is not None:
            tensors, meta = ck
            check_same_run(checkpoint_dir, meta["args"], args)
            restore_checkpoint(sae, opt, tensors, os.path.join(checkpoint_dir, "checkpoint.safetensors"))
            step, stream.position, any_dead = meta["step"], meta["position"], meta["any_dead"]
            variance = meta["variance"]
            if progress and rank == 0:
                print(f"resuming from step {step} of {total_steps} ({checkpoint_dir})")

    local = batch_size // world
    inv_var = 1.0 / variance
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else _null()
    params = list(sae.parameters())
    acc = torch.zeros(5, device=device)  # loss, mse_norm, l0, steps, (unused)
    curves = LiveCurves(show_curves and rank == 0)
    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=step, unit="step", desc=f"SAE {arch} {d_in}->{d_sae}", dynamic_ncols=True)

    def meta() -> dict[str, Any]:
        return {"step": step, "position": stream.position, "any_dead": any_dead, "variance": variance,
                "args": args, "sae": cfg.to_dict(), "time": time.time()}

    def checkpoint() -> None:
        if checkpoint_dir is not None and rank == 0:
            save_checkpoint(checkpoint_dir, sae, opt, meta())

    def lr_at(s: int) -> float:
        start = total_steps * (1 - lr_decay)
        return lr if s < start else lr * max(0.0, (total_steps - s) / max(1.0, total_steps - start))

    between_steps = True  # False while a step is half-done: an interrupt there leaves nothing consistent to save
    try:
        with Interrupts() as interrupts:
            while step < total_steps:
                if stop_together(interrupts.hit, world, step, log_every, device):
                    raise KeyboardInterrupt
                between_steps = False
                batch = stream.next(batch_size)
                x = batch[rank * local:(rank + 1) * local] if world > 1 else batch
                with autocast:
                    x, target = (x[:, :w_in], x[:, w_in:]) if kind == "transcoder" else (x, x)
                    loss, parts = training_loss(sae, x, target, inv_var, l0 if arch == "jumprelu" else l1, aux_k,
                                                aux_coef, dead_after, any_dead, bw)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if world > 1:
                    for p in params:
                        if p.grad is not None:
                            dist.all_reduce(p.grad)
                            p.grad /= world
                if arch in UNIT_DECODER_ARCHS:
                    sae.project_decoder_grad()
                for group in opt.param_groups:
                    group["lr"] = lr_at(step) * group.get("lr_scale", 1.0)
                opt.step()
                with torch.no_grad():
                    if arch in UNIT_DECODER_ARCHS:
                        sae.normalize_decoder()
                    if arch == "jumprelu":  # a negative threshold would let negative pre-activations through
                        sae.threshold.clamp_min_(0)
                    fired = parts.pop("fired")
                    if world > 1:
                        fired = fired.to(torch.int32)
                        dist.all_reduce(fired, op=dist.ReduceOp.MAX)
                        fired = fired.bool()
                    sae.tokens_since_fired.copy_(torch.where(fired, 0, sae.tokens_since_fired + batch_size))
                    acc += torch.stack([loss.detach().float(), parts["mse"].float(), parts["l0"].float(),
                                        torch.ones((), device=device), torch.zeros((), device=device)])
                step += 1
                between_steps = True
                metrics = None
                if step % log_every == 0 or step == total_steps:
                    dead = sae.tokens_since_fired >= dead_after
                    vals = (acc / acc[3].clamp_min(1)).tolist()  # the one host sync, every log_every steps
                    dead_frac = float(dead.float().mean())
                    any_dead = dead_frac > 0
                    metrics = {"loss": vals[0], "ev": 1 - vals[1], "l0": vals[2], "dead": dead_frac}
                    acc.zero_()
                    if bar is not None:
                        bar.set_postfix(loss=f"{metrics['loss']:.4f}", L0=f"{metrics['l0']:.1f}",
                                        EV=f"{metrics['ev']:.3f}", dead=f"{dead_frac:.3f}", refresh=False)
                    curves.add(step, metrics)
                if bar is not None:
                    bar.update(1)
                if checkpoint_every and step % checkpoint_every == 0 and step < total_steps:
                    checkpoint()
                if callback is not None:
                    callback(step, sae, metrics)
    except KeyboardInterrupt:
        if rank == 0:
            if not between_steps:  # a second Ctrl-C, mid-step: the optimiser may be half-way through an update
                where = ("; stopped mid-step, so the last periodic checkpoint is kept: run the same call again to "
                         "resume from it" if checkpoint_dir else "")
            elif checkpoint_dir:
                checkpoint()
                where = f"; checkpoint saved in {checkpoint_dir!r}, run the same call again to resume"
            else:  # nothing trained is lost: the SAE as it is now goes to a fresh folder
                import tempfile

                saved = sae.save(tempfile.mkdtemp(prefix="prisma-sae-interrupted-"))
                where = (f"; the SAE so far is saved in {str(saved)!r} (pw.SAE.load it); pass checkpoint_dir=... "
                         "to make runs resumable")
            print(f"\ninterrupted at step {step} of {total_steps}{where}")
        raise
    finally:
        if bar is not None:
            bar.close()
        curves.finish()
    if checkpoint_dir is not None and rank == 0:
        checkpoint()
        sae.save(os.path.join(checkpoint_dir, FINAL))
    if world > 1:
        dist.barrier()
    sae.eval()
    return sae


def _adam(sae: SAE, lr: float, scale: float = 1.0) -> torch.optim.Optimizer:
    """Fused Adam where this torch has it for the device (CUDA, and CPU on recent versions), else the default.

    A JumpReLU threshold lives in the units of the activations, so its steps are scaled by their RMS ``scale``
    (Adam's steps are ~``lr`` in the parameter's own units), and by :data:`THRESHOLD_LR`: its gradient only
    comes from the rows within a bandwidth of it, and at the weights' pace it would need far longer runs than
    theirs to settle (measured on mouse-vit: 400 steps moved the L0 by 1% for a 2.4x larger ``l0``)."""
    rest = [p for n, p in sae.named_parameters() if n != "threshold"]
    groups: list[dict[str, Any]] = [{"params": rest}]
    if sae.arch == "jumprelu":
        groups.append({"params": [sae.threshold], "lr_scale": scale * THRESHOLD_LR})
    try:
        return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999))


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _geometric_median(x: torch.Tensor, start: torch.Tensor, iters: int = 30) -> torch.Tensor:
    """Weiszfeld iterations from ``start``."""
    y = start.clone()
    for _ in range(iters):
        w = 1.0 / (x - y).norm(dim=-1).clamp_min(1e-8)
        y = (w[:, None] * x).sum(0) / w.sum()
    return y
