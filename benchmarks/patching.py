"""A layer x position resid_pre sweep: the batched engine against full forward passes and a naive loop, round by round.

Each round is one engine sweep (``pw.analysis.patch``) with the baselines woven into it: after every chunk of
variants (``on_progress``) the sweep pauses while its share of the full forward passes at the best batch size
(what prefix reuse saves; on CPU a fraction of them, scaled up) and of a sample of the naive loop (one full
forward per variant with an ordinary hook, scaled up to every variant) run, timed apart; the pauses are taken out
of the engine's time. All three thus sample the same moments of a shared machine's load, seconds apart. Ratios
are taken within each round; medians and the spread (min-max over rounds) are printed.

CPU: ViT-Ti/16 at 224 px (12 layers x 197 positions) over every layer, and ViT-B/16 over layers 0, 5 and 11
(591 variants; the mean number of blocks left to run, 6.7, is close to a full sweep's 6.5). On 2 shared cores a
ViT-B round takes about two minutes:

    python benchmarks/patching.py                                    # ViT-Ti and ViT-B, 3 rounds
    python benchmarks/patching.py --models vit_base_patch16_224 --rounds 5
    python benchmarks/patching.py --gpu-only                          # ViT-B/16 on CUDA, every layer, fp32 and bf16

Targets: engine / full forwards <= 0.6x; on GPU >= 50x faster than the naive loop.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _timing import gpu_header, machine_load  # noqa: E402

import prisma_widgets as pw  # noqa: E402

CPU_LAYERS = {"vit_base_patch16_224": [0, 5, 11]}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(device: str, fn) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def measure(name: str, device: str, dtype: torch.dtype, layers: list[int] | None, rounds: int,
            naive_sample: int, baseline_fraction: float, batches: tuple[int, ...]) -> dict[str, object]:
    torch.manual_seed(0)
    model = pw.load(name, pretrained=False, device=device).to(dtype)
    cfg = model.cfg
    layers = list(range(cfg.n_layers)) if layers is None else layers
    clean = torch.randn(1, 3, 224, 224, device=device, dtype=dtype)
    corrupted = torch.randn(1, 3, 224, 224, device=device, dtype=dtype)
    n_variants = len(layers) * cfg.n_tokens
    metric = lambda out: out[:, 0].float().mean()  # noqa: E731  (no top-class requirement on random weights)

    # the best batch size for plain forwards, chosen once
    per_image = {}
    with torch.inference_mode():
        for batch in batches:
            x = torch.randn(batch, 3, 224, 224, device=device, dtype=dtype)
            model.model(x)
            per_image[batch] = min(_timed(device, lambda: model.model(x)) for _ in range(2)) / batch
    best = min(per_image, key=per_image.get)
    full_batch = torch.randn(best, 3, 224, 224, device=device, dtype=dtype)

    with torch.no_grad():
        _, cache = model.run_with_cache(clean, [f"blocks.{l}.hook_resid_pre" for l in layers])
    cells = [(layers[v // cfg.n_tokens], v % cfg.n_tokens) for v in range(n_variants)]
    generator = torch.Generator().manual_seed(0)

    def naive_variant(v: int) -> None:
        layer, pos = cells[v]

        def put(act, hook):
            act = act.clone()
            act[:, pos] = cache[hook.name][:, pos]
            return act

        with torch.no_grad():
            metric(model.run_with_hooks(corrupted, [(f"blocks.{layer}.hook_resid_pre", put)]))

    def one_round() -> tuple[float, float, float, int]:
        """Seconds of the engine, of full forwards and of the naive loop (both scaled to every variant), and how
        many full-forward images were timed, from one sweep with the baselines woven in."""
        paused = {"pauses": 0.0, "full": 0.0, "naive": 0.0, "images": 0, "naive_runs": 0}
        picks = torch.randperm(n_variants, generator=generator)[:naive_sample].tolist()

        def baselines(done: int, total: int) -> None:
            start = time.perf_counter()
            with torch.inference_mode():
                while paused["images"] + best <= done * baseline_fraction or (done == total and not paused["images"]):
                    paused["full"] += _timed(device, lambda: model.model(full_batch))
                    paused["images"] += best
            while paused["naive_runs"] < round(done / total * len(picks)):
                paused["naive"] += _timed(device, lambda: naive_variant(picks[paused["naive_runs"]]))
                paused["naive_runs"] += 1
            paused["pauses"] += time.perf_counter() - start

        total = _timed(device, lambda: pw.analysis.patch(
            model, clean, corrupted, metric=metric, site="resid_pre", by="position", layers=layers, progress=False,
            on_progress=baselines))
        return (total - paused["pauses"], paused["full"] * n_variants / paused["images"],
                paused["naive"] * n_variants / max(paused["naive_runs"], 1), paused["images"])

    pw.analysis.patch(model, clean, corrupted, metric=metric, site="resid_pre", by="position", layers=layers,
                      progress=False)  # warm-up
    engine_s, full_s, naive_s = [], [], []
    for _ in range(rounds):
        engine, full, naive, images = one_round()
        engine_s.append(engine)
        full_s.append(full)
        naive_s.append(naive)
    return {"name": name, "device": device, "dtype": str(dtype).replace("torch.", ""), "layers": layers,
            "n_variants": n_variants, "best_batch": best, "engine": engine_s, "full": full_s, "naive": naive_s,
            "naive_sample": min(naive_sample, n_variants), "baseline_images": images}


def report(r: dict[str, object]) -> None:
    engine, full, naive = r["engine"], r["full"], r["naive"]
    vs_full = [e / f for e, f in zip(engine, full)]
    speedup = [n / e for n, e in zip(naive, engine)]
    med = statistics.median
    layer_note = "every layer" if len(r["layers"]) == 12 else f"layers {r['layers']}"
    print(f"\n{r['name']} on {r['device']} ({r['dtype']}): {layer_note} x positions = {r['n_variants']} variants, "
          f"{len(engine)} rounds")
    print(f"  engine sweep                        {med(engine):8.2f} s   (rounds {min(engine):.2f} - {max(engine):.2f})")
    print(f"  full forwards, batch {r['best_batch']:<4}           {med(full):8.2f} s   "
          f"({r['baseline_images']} timed per round, scaled to {r['n_variants']})")
    print(f"  naive loop                          {med(naive):8.2f} s   ({r['naive_sample']} variants timed per round, "
          "scaled)")
    print(f"  engine / full forwards              {med(vs_full):8.2f}x  (rounds {min(vs_full):.2f} - {max(vs_full):.2f}; "
          "target <= 0.6x)")
    print(f"  engine speed-up over the naive loop {med(speedup):8.1f}x  (rounds {min(speedup):.1f} - {max(speedup):.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="vit_tiny_patch16_224,vit_base_patch16_224")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--naive-sample", type=int, default=20, help="naive-loop variants timed per round (CPU)")
    parser.add_argument("--baseline-fraction", type=float, default=0.25,
                        help="share of the equivalent full forwards timed per round (CPU)")
    parser.add_argument("--gpu-only", action="store_true", help="only the GPU section (benchmarks/gpu_all.py)")
    parser.add_argument("--gpu-rounds", type=int, default=3)
    parser.add_argument("--gpu-naive-sample", type=int, default=600)
    args = parser.parse_args()
    if not args.gpu_only:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; {machine_load()} before")
        for name in args.models.split(","):
            report(measure(name, "cpu", torch.float32, CPU_LAYERS.get(name), args.rounds, args.naive_sample,
                           args.baseline_fraction, (8, 32, 64)))
        print(f"\n{machine_load()} after")
    if gpu_header(args.gpu_only):
        print(f"\nGPU {torch.cuda.get_device_name()}")
        for dtype in (torch.float32, torch.bfloat16):
            report(measure("vit_base_patch16_224", "cuda", dtype, None, args.gpu_rounds, args.gpu_naive_sample, 1.0,
                           (8, 32, 64, 128, 256)))


if __name__ == "__main__":
    main()
