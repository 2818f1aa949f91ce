"""SAE training throughput: ``pw.train_sae`` against a plain eager PyTorch TopK loop and SAE-Lens, side by side.

d_in=768, expansion 32 (d_sae=24576), TopK k=32. GPU (when present): batch 4096, bf16 autocast, fused Adam.
CPU: the same shapes with a smaller batch and fewer steps (a CPU step at batch 4096 takes many seconds).
All three do the same work per step on the same data: encode, TopK, decode, MSE, Adam (plus each one's own
extras: our AuxK and decoder-gradient projection, SAE-Lens's TopK SAE with its aux loss and dead-latent
bookkeeping). SAE-Lens (``sae-lens``, its ``SAETrainer`` fed from an iterator over the same tensor) is timed
when it is installed.

A column per architecture: ``pw.train_sae`` is also timed with ``arch=`` batchtopk, relu, jumprelu and gated
(the same widths; the penalty architectures encode densely, so they do more work per step than TopK's sparse
decode), side by side with the same plain eager TopK loop, which stays the baseline.

    python benchmarks/sae_train.py [--steps 3] [--cpu-batch 256] [--rounds 3] [--gpu-only] [--no-sae-lens]
                                   [--archs topk,batchtopk,relu,jumprelu,gated]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from _timing import gpu_header, interleaved_medians, machine_load, print_ratios  # noqa: E402

import prisma_widgets as pw  # noqa: E402

D_IN, EXPANSION, K = 768, 32, 32


def plain_loop(x: torch.Tensor, steps: int, batch: int, lr: float = 1e-4) -> None:
    """What one writes first: dense encoder and decoder, dense Adam, fp32."""
    d_sae = D_IN * EXPANSION
    g = torch.Generator(device="cpu").manual_seed(0)
    W_dec = torch.randn(d_sae, D_IN, generator=g).to(x.device)
    W_dec /= W_dec.norm(dim=1, keepdim=True)
    W_enc = W_dec.t().clone().requires_grad_()
    W_dec.requires_grad_()
    b_enc = torch.zeros(d_sae, device=x.device, requires_grad=True)
    b_dec = x[:4096].mean(0).clone().requires_grad_()
    opt = torch.optim.Adam([W_enc, W_dec, b_enc, b_dec], lr=lr)
    for step in range(steps):
        xb = x[(step * batch) % (len(x) - batch):][:batch]
        pre = (xb - b_dec) @ W_enc + b_enc
        top = pre.topk(K, dim=-1)
        f = torch.zeros_like(pre).scatter(-1, top.indices, F.relu(top.values))
        loss = (f @ W_dec + b_dec - xb).pow(2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            W_dec /= W_dec.norm(dim=1, keepdim=True)
        float(loss.detach())  # the usual per-step logging sync


def ours(x: torch.Tensor, steps: int, batch: int, arch: str = "topk") -> None:
    pw.train_sae(x, expansion=EXPANSION, arch=arch, k=K, batch_size=batch, steps=steps, lr=1e-4, progress=False,
                 log_every=steps)


def sae_lens_loop(x: torch.Tensor, steps: int, batch: int, lr: float = 1e-4) -> None:
    """SAE-Lens 6's own trainer on the same rows: TopK SAE, Adam, bf16 autocast on CUDA, no logging."""
    import sae_lens.training.sae_trainer as trainer_module
    from sae_lens import SAETrainer, TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.config import SAETrainerConfig
    from tqdm.auto import tqdm

    trainer_module.tqdm = functools.partial(tqdm, disable=True)
    device = str(x.device)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=D_IN, d_sae=D_IN * EXPANSION, k=K, device=device, dtype="float32"))

    def rows():
        step = 0
        while True:
            yield x[(step * batch) % (len(x) - batch):][:batch]
            step += 1

    cfg = SAETrainerConfig(total_training_samples=steps * batch, train_batch_size_samples=batch, lr=lr, lr_end=lr,
                           device=device, autocast=x.device.type == "cuda")
    SAETrainer(cfg=cfg, sae=sae, data_provider=rows()).fit()


def has_sae_lens() -> bool:
    try:
        import sae_lens  # noqa: F401
    except Exception as err:  # noqa: BLE001 - any import failure means: not measurable here
        print(f"sae-lens is not importable here ({type(err).__name__}: {err}): its rows are skipped")
        return False
    return True


ARCHS = ("topk", "batchtopk", "relu", "jumprelu", "gated")


def measure(device: str, batch: int, steps: int, rounds: int, with_sae_lens: bool,
            archs: tuple[str, ...] = ARCHS) -> dict[str, float]:
    """Seconds per step: a run of 1 + steps minus a run of 1 step, so set-up cost cancels out."""
    torch.manual_seed(0)
    x = torch.randn(max(8 * batch, 16384), D_IN, device=device)
    loops = {"plain eager loop": plain_loop, "pw.train_sae": ours}
    for arch in archs:
        if arch != "topk":
            loops[f"pw.train_sae arch={arch}"] = functools.partial(ours, arch=arch)
    if with_sae_lens:
        loops["SAE-Lens SAETrainer"] = sae_lens_loop
    variants = {}
    for name, loop in loops.items():
        variants[name + " 1"] = functools.partial(loop, x, 1, batch)
        variants[name + " n"] = functools.partial(loop, x, 1 + steps, batch)
    sync = torch.cuda.synchronize if device == "cuda" else None
    t = interleaved_medians(variants, rounds=rounds, warmup=1, sync=sync)
    return {name + ", per step": (t[name + " n"] - t[name + " 1"]) / steps for name in loops}


def report(title: str, medians: dict[str, float], batch: int) -> None:
    print_ratios(title, medians, next(iter(medians)))
    for name, seconds in medians.items():
        print(f"  {name:<50}{batch / seconds:>14,.0f} tokens/s")
    plain, mine = medians["plain eager loop, per step"], medians["pw.train_sae, per step"]
    print(f"  speed-up of pw.train_sae over the plain loop: {plain / mine:.2f}x")
    print(f"  {'architecture':<14}{'tokens/s':>14}{'vs plain TopK loop':>22}")
    for name, seconds in medians.items():
        if name.startswith("pw.train_sae"):
            arch = name.split("arch=")[1].split(",")[0] if "arch=" in name else "topk"
            print(f"  {arch:<14}{batch / seconds:>14,.0f}{plain / seconds:>21.2f}x")
    if "SAE-Lens SAETrainer, per step" in medians:
        print(f"  speed-up of pw.train_sae over SAE-Lens: {medians['SAE-Lens SAETrainer, per step'] / mine:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="CPU steps per timed run")
    parser.add_argument("--cpu-batch", type=int, default=256)
    parser.add_argument("--gpu-steps", type=int, default=50)
    parser.add_argument("--gpu-batch", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gpu-only", action="store_true", help="only the GPU section (benchmarks/gpu_all.py)")
    parser.add_argument("--no-sae-lens", action="store_true", help="leave SAE-Lens out")
    parser.add_argument("--archs", default=",".join(ARCHS), help="pw.train_sae architectures to time, comma-separated")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
          f"d_in={D_IN}, expansion {EXPANSION}, k={K}; {machine_load()}")
    with_sae_lens = not args.no_sae_lens and has_sae_lens()
    archs = tuple(a for a in args.archs.split(",") if a)
    unknown = [a for a in archs if a not in ARCHS]
    if unknown:
        parser.error(f"unknown architecture(s) {unknown}; choose from {', '.join(ARCHS)}")
    if not args.gpu_only:
        cpu = measure("cpu", args.cpu_batch, args.steps, args.rounds, with_sae_lens, archs)
        report(f"CPU fp32, batch {args.cpu_batch}", cpu, args.cpu_batch)
    if gpu_header(args.gpu_only):
        gpu = measure("cuda", args.gpu_batch, args.gpu_steps, args.rounds, with_sae_lens, archs)
        report(f"GPU {torch.cuda.get_device_name()}, batch {args.gpu_batch}, bf16 autocast (target >= 2x the plain "
               "loop)", gpu, args.gpu_batch)


if __name__ == "__main__":
    main()
