"""A layer x position resid_pre sweep: the batched engine vs a naive one-variant-per-forward loop, same run.

Also the engine's time as a ratio to the same number of full forward passes at the best batch size (what
prefix reuse saves). ViT-B/16 on GPU; on CPU ViT-B/16 is too slow for a full naive loop, so the CPU run uses
ViT-Ti/16 at 224 px (197 tokens, 12 layers) and times the naive loop on a sample of variants.

    python benchmarks/patching.py [--model vit_tiny_patch16_224] [--naive-sample 60] [--repeats 3]
Targets: >= 10x faster than the naive loop on GPU; <= 0.6x the full-forward equivalent.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import prisma_widgets as pw


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="default: vit_base_patch16_224 on GPU, vit_tiny_patch16_224 on CPU")
    parser.add_argument("--naive-sample", type=int, default=60, help="naive-loop variants timed (CPU); all on GPU")
    parser.add_argument("--repeats", type=int, default=3, help="sweeps and full-forward timings; medians are shown")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = args.model or ("vit_base_patch16_224" if device == "cuda" else "vit_tiny_patch16_224")
    torch.manual_seed(0)
    model = pw.load(name, pretrained=False, device=device)
    clean = torch.randn(1, 3, 224, 224, device=device)
    corrupted = torch.randn(1, 3, 224, 224, device=device)
    cfg = model.cfg
    n_variants = cfg.n_layers * cfg.n_tokens
    metric = lambda out: out[:, 0].mean()  # noqa: E731  (no top-class requirement on random weights)

    # our engine (median of --repeats sweeps)
    sweeps = []
    for _ in range(args.repeats):
        sync(device)
        t = time.perf_counter()
        pw.analysis.patch(model, clean, corrupted, metric=metric, site="resid_pre", by="position", progress=False)
        sync(device)
        sweeps.append(time.perf_counter() - t)
    engine = statistics.median(sweeps)

    # naive: one full forward per variant with an ordinary hook (a sample of variants on CPU)
    _, cache = model.run_with_cache(clean, "blocks.*.hook_resid_pre")
    sample = n_variants if device == "cuda" else min(args.naive_sample, n_variants)
    cells = [(v // cfg.n_tokens, v % cfg.n_tokens) for v in torch.linspace(0, n_variants - 1, sample).long().tolist()]
    sync(device)
    t = time.perf_counter()
    with torch.no_grad():
        for layer, pos in cells:
            def put(act, hook, pos=pos):
                act = act.clone()
                act[:, pos] = cache[hook.name][:, pos]
                return act
            metric(model.run_with_hooks(corrupted, [(f"blocks.{layer}.hook_resid_pre", put)]))
    sync(device)
    naive = (time.perf_counter() - t) * n_variants / sample

    # the same number of full forward passes at the best batch size (median of --repeats at each size)
    best = float("inf")
    with torch.no_grad():
        for batch in (8, 32, 64, 128):
            x = torch.randn(batch, 3, 224, 224, device=device)
            model.model(x)
            per_image = []
            for _ in range(args.repeats):
                sync(device)
                t = time.perf_counter()
                model.model(x)
                sync(device)
                per_image.append((time.perf_counter() - t) / batch)
            best = min(best, statistics.median(per_image))
    full_equivalent = best * n_variants

    naive_label = f"naive loop (extrapolated from {sample})" if sample < n_variants else "naive loop"
    print(f"{name} on {device}: {cfg.n_layers} layers x {cfg.n_tokens} positions = {n_variants} variants")
    print(f"{'engine (median of %d sweeps)' % args.repeats:<36}{engine:8.2f} s")
    print(f"{naive_label:<36}{naive:8.2f} s   engine speed-up {naive / engine:.1f}x")
    print(f"{'full forwards at best batch':<36}{full_equivalent:8.2f} s   "
          f"engine / full-forward = {engine / full_equivalent:.2f}x (target <= 0.6x)")

if __name__ == "__main__":
    main()
