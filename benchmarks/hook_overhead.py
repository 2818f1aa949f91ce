"""Hook overhead of HookedViT against the plain timm forward, measured side by side.

ViT-B/16 (random weights, 197 tokens). CPU: fp32, batch 8. GPU (when present): bf16, batch 64.
Every variant runs inside one interleaved loop; the printed ratios are medians over rounds.

Caching every hook keeps about 1.4 GB of activations per call at batch 8. glibc gives freed memory back
to the OS once more than 2x its mmap threshold (at most 64 MB) is free, so each call page-faults that memory
in again; on Linux the CPU table is printed a second time from a child process in which glibc keeps freed
memory (``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``), the same effect jemalloc or tcmalloc give.

    python benchmarks/hook_overhead.py [--rounds 7] [--batch 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _timing import interleaved_medians, print_ratios  # noqa: E402

# glibc keeps up to 8 GB of freed memory, and serves every tensor from its heap rather than fresh mmaps
KEEP_FREED_MEMORY = {"MALLOC_TRIM_THRESHOLD_": str(8 << 30), "MALLOC_MMAP_THRESHOLD_": str(32 << 20)}

import prisma_widgets as pw  # noqa: E402


def measure(device: str, dtype: torch.dtype, batch: int, rounds: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = pw.load("vit_base_patch16_224", pretrained=False, device=device).to(dtype)
    plain = model.model
    pixels = torch.randn(batch, 3, 224, 224, device=device, dtype=dtype)
    every = model.hook_names()
    no_pattern = [n for n in every if "pattern" not in n and "attn_scores" not in n]

    def noop(x: torch.Tensor, hook: object) -> None:
        return None

    variants = {
        "plain timm forward": lambda: plain(pixels),
        "HookedViT forward, no hooks": lambda: model(pixels),
        "run_with_cache(hook_resid_post only)": lambda: model.run_with_cache(pixels, "blocks.*.hook_resid_post"),
        "run_with_hooks(no-op on every non-pattern hook)": lambda: model.run_with_hooks(pixels, [(no_pattern, noop)]),
        "run_with_cache(all hooks, patterns included)": lambda: model.run_with_cache(pixels),
    }
    sync = torch.cuda.synchronize if device == "cuda" else None
    with torch.inference_mode():
        return interleaved_medians(variants, rounds=rounds, sync=sync)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--gpu-batch", type=int, default=64)
    parser.add_argument("--cpu-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    tuned = all(os.environ.get(k) == v for k, v in KEEP_FREED_MEMORY.items())
    if not args.cpu_only:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    cpu = measure("cpu", torch.float32, args.batch, args.rounds)
    allocator = ", glibc keeping freed memory" if tuned else ", default allocator"
    targets = "targets: resid-only <= 1.02x, all hooks <= 1.15x"
    print_ratios(f"CPU fp32, ViT-B/16, batch {args.batch}{allocator} ({targets})", cpu, "plain timm forward")
    if args.cpu_only:
        return
    if sys.platform == "linux" and not tuned:
        child = [sys.executable, __file__, "--cpu-only", "--rounds", str(args.rounds), "--batch", str(args.batch)]
        subprocess.run(child, env={**os.environ, **KEEP_FREED_MEMORY}, check=True)
    if torch.cuda.is_available():
        gpu = measure("cuda", torch.bfloat16, args.gpu_batch, args.rounds * 3)
        print_ratios(f"GPU bf16 {torch.cuda.get_device_name()}, batch {args.gpu_batch}", gpu, "plain timm forward")
    else:
        print("\nno GPU here: GPU bf16 figures skipped")


if __name__ == "__main__":
    main()
