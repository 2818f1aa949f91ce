"""SAE training throughput: ``pw.train_sae`` against a plain eager PyTorch TopK loop, side by side.

d_in=768, expansion 32 (d_sae=24576), TopK k=32. GPU (when present): batch 4096, bf16 autocast, fused Adam.
CPU: the same shapes with a smaller batch and fewer steps (a CPU step at batch 4096 takes many seconds).
Both variants do the same work per step: encode, TopK, decode, MSE, Adam, unit-norm decoder rows.

    python benchmarks/sae_train.py [--steps 3] [--cpu-batch 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from _timing import interleaved_medians, print_ratios  # noqa: E402

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


def ours(x: torch.Tensor, steps: int, batch: int) -> None:
    pw.train_sae(x, expansion=EXPANSION, k=K, batch_size=batch, steps=steps, lr=1e-4, progress=False, log_every=steps)


def measure(device: str, batch: int, steps: int, rounds: int) -> dict[str, float]:
    """Seconds per step: a run of 1 + steps minus a run of 1 step, so set-up cost cancels out."""
    torch.manual_seed(0)
    x = torch.randn(max(8 * batch, 16384), D_IN, device=device)
    variants = {
        "plain 1": lambda: plain_loop(x, 1, batch),
        "plain n": lambda: plain_loop(x, 1 + steps, batch),
        "ours 1": lambda: ours(x, 1, batch),
        "ours n": lambda: ours(x, 1 + steps, batch),
    }
    sync = torch.cuda.synchronize if device == "cuda" else None
    t = interleaved_medians(variants, rounds=rounds, warmup=1, sync=sync)
    return {
        "plain eager loop, per step": (t["plain n"] - t["plain 1"]) / steps,
        "pw.train_sae, per step": (t["ours n"] - t["ours 1"]) / steps,
    }


def report(title: str, medians: dict[str, float], batch: int) -> None:
    print_ratios(title, medians, next(iter(medians)))
    for name, seconds in medians.items():
        print(f"  {name:<42}{batch / seconds:>14,.0f} tokens/s")
    (plain, mine) = medians.values()
    print(f"  speed-up of pw.train_sae over the plain loop: {plain / mine:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="CPU steps per timed run")
    parser.add_argument("--cpu-batch", type=int, default=256)
    parser.add_argument("--gpu-steps", type=int, default=50)
    parser.add_argument("--gpu-batch", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
          f"d_in={D_IN}, expansion {EXPANSION}, k={K}")
    cpu = measure("cpu", args.cpu_batch, args.steps, args.rounds)
    report(f"CPU fp32, batch {args.cpu_batch}", cpu, args.cpu_batch)
    if torch.cuda.is_available():
        gpu = measure("cuda", args.gpu_batch, args.gpu_steps, args.rounds)
        report(f"GPU {torch.cuda.get_device_name()}, batch {args.gpu_batch} (target >= 2x the plain loop)", gpu,
               args.gpu_batch)
    else:
        print("\nno GPU here: GPU figures skipped")


if __name__ == "__main__":
    main()
