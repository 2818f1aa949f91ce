"""Activation caching throughput: ``pw.cache_activations`` against the bare forward pass to the same layer.

ViT-B/16 (random weights), hook ``blocks.5.hook_resid_post`` (the bare forward stops after block 5 too).
The bare forward takes ready, preprocessed pixels and keeps nothing; caching also writes every token row to a
float16 file (positioned writes into reserved space) and records progress. Two cache inputs: the same preprocessed tensor, and uint8
images (preprocessing included, overlapped with the forward by a prefetch thread). Target: >= 80%.

    python benchmarks/cache_activations.py [--images 32] [--batch 16] [--rounds 3] [--gpu-only]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from _timing import gpu_header, interleaved_medians, machine_load, print_ratios  # noqa: E402

import prisma_widgets as pw  # noqa: E402

HOOK = "blocks.5.hook_resid_post"


def measure(device: str, dtype: torch.dtype, n: int, batch: int, rounds: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = pw.load("vit_base_patch16_224", pretrained=False, device=device).to(dtype)
    uint8 = np.random.RandomState(0).randint(0, 256, (n, 224, 224, 3), dtype=np.uint8)
    pixels = model.preprocess(list(uint8)).to(device=device, dtype=dtype)
    root = tempfile.mkdtemp(prefix="pw-cache-bench-")

    def bare() -> None:
        with torch.inference_mode():
            for start in range(0, n, batch):
                model(pixels[start:start + batch], stop_at_layer=6)

    def cache(images, name: str):
        def run() -> None:
            path = os.path.join(root, name)
            shutil.rmtree(path, ignore_errors=True)
            pw.cache_activations(model, images, HOOK, path, batch_size=batch, progress=False)
        return run

    variants = {
        "bare forward to block 5 (preprocessed)": bare,
        "cache_activations (preprocessed tensor)": cache(pixels, "tensor"),
        "cache_activations (uint8 images)": cache(uint8, "uint8"),
    }
    sync = torch.cuda.synchronize if device == "cuda" else None
    try:
        return interleaved_medians(variants, rounds=rounds, warmup=1, sync=sync)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(title: str, medians: dict[str, float], n: int) -> None:
    base = next(iter(medians))
    print_ratios(title, medians, base)
    for name, seconds in medians.items():
        print(f"  {name:<44}{n / seconds:>9.1f} images/s  ({medians[base] / seconds:.0%} of the bare forward)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--gpu-images", type=int, default=1024)
    parser.add_argument("--gpu-batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gpu-only", action="store_true", help="only the GPU section (benchmarks/gpu_all.py)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; ViT-B/16, {HOOK}, float16 on disk; "
          f"{machine_load()}")
    if not args.gpu_only:
        cpu = measure("cpu", torch.float32, args.images, args.batch, args.rounds)
        report(f"CPU fp32, {args.images} images, batch {args.batch} (target >= 80%)", cpu, args.images)
    if gpu_header(args.gpu_only):
        gpu = measure("cuda", torch.bfloat16, args.gpu_images, args.gpu_batch, args.rounds)
        report(f"GPU bf16 {torch.cuda.get_device_name()}, {args.gpu_images} images, batch {args.gpu_batch} "
               "(target >= 80%)", gpu, args.gpu_images)


if __name__ == "__main__":
    main()
