"""Hook overhead of HookedViT against the plain timm forward, measured side by side.

ViT-B/16 (random weights, 197 tokens). CPU: fp32, batch 8. GPU (when present): bf16, batch 64.
Every variant runs inside one interleaved loop; the printed ratios are medians over rounds.

    python benchmarks/hook_overhead.py [--rounds 7] [--batch 8]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _timing import interleaved_medians, print_ratios  # noqa: E402

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
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    cpu = measure("cpu", torch.float32, args.batch, args.rounds)
    print_ratios(f"CPU fp32, ViT-B/16, batch {args.batch} (targets: resid-only <= 1.02x, all hooks <= 1.15x)",
                 cpu, "plain timm forward")
    if torch.cuda.is_available():
        gpu = measure("cuda", torch.bfloat16, args.gpu_batch, args.rounds * 3)
        print_ratios(f"GPU bf16 {torch.cuda.get_device_name()}, batch {args.gpu_batch}", gpu, "plain timm forward")
    else:
        print("\nno GPU here: GPU bf16 figures skipped")


if __name__ == "__main__":
    main()
