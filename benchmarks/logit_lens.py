"""The logit lens over every layer of ViT-B/16 (random weights, batch 8) as a ratio to one plain forward.

    python benchmarks/logit_lens.py [--rounds 5] [--gpu-only]
Target: <= 1.5x. On GPU (when present) the same in bf16.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _timing import gpu_header, interleaved_medians, print_ratios  # noqa: E402

import prisma_widgets as pw  # noqa: E402


def measure(device: str, dtype: torch.dtype, batch: int, rounds: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = pw.load("vit_base_patch16_224", pretrained=False, device=device).to(dtype)
    pixels = torch.randn(batch, 3, 224, 224, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device == "cuda" else None
    with torch.inference_mode():
        return interleaved_medians(
            {
                "plain timm forward": lambda: model.model(pixels),
                "logit lens, 12 layers x 197 tokens x 1000": lambda: pw.analysis.logit_lens(model, pixels),
            },
            rounds=rounds, sync=sync,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--gpu-only", action="store_true", help="only the GPU section (benchmarks/gpu_all.py)")
    args = parser.parse_args()
    if not args.gpu_only:
        print_ratios(f"CPU fp32, ViT-B/16, batch {args.batch} (target <= 1.5x)",
                     measure("cpu", torch.float32, args.batch, args.rounds), "plain timm forward")
    if gpu_header(args.gpu_only):
        print_ratios(f"GPU bf16 {torch.cuda.get_device_name()}, batch {args.batch}",
                     measure("cuda", torch.bfloat16, args.batch, args.rounds * 4), "plain timm forward")


if __name__ == "__main__":
    main()
