"""Hook overhead of HookedViT against the plain timm forward, measured side by side.

ViT-B/16 (random weights, 197 tokens). CPU: fp32, batch 8. GPU (when present): bf16, batch 64.

Caching every hook keeps about 1.4 GB of activations per call at batch 8. With glibc's default settings that
memory went back to the OS whenever a cache was dropped and was page-faulted in again on the next call. Since
issue 19 the first ``run_with_cache`` on the host asks glibc to keep freed memory (``hooked/allocator.py``).
That is a process-wide setting, so "before" and "now" run in two worker processes: "before" declines the
setting (``keep_freed_memory(False)``, ``reuse_buffers=False``: what every call did until then), "now" runs the
defaults. The parent drives both round by round (every variant of both workers in each round), so load that
comes and goes hits both alike; each ratio is taken against the plain forward of the same worker and round.
Wall-clock and CPU-time (this process's threads, page faults included) ratios are printed with their spread
(min-max over rounds); on a loaded machine the CPU-time ratios are the steadier ones.

    python benchmarks/hook_overhead.py [--rounds 7] [--batch 8] [--threads N] [--gpu-only] [--gpu-batch 64]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _timing import gpu_header, interleaved_times, machine_load, print_round_ratios  # noqa: E402

import prisma_widgets as pw  # noqa: E402

PLAIN = "plain timm forward"
ALL = "run_with_cache(all hooks)"


def variants(model: pw.HookedViT, pixels: torch.Tensor, mode: str) -> dict[str, object]:
    every = model.hook_names()
    no_pattern = [n for n in every if "pattern" not in n and "attn_scores" not in n]
    held: list[object] = [None]

    def noop(x: torch.Tensor, hook: object) -> None:
        return None

    def cache_held() -> None:  # `_, cache = model.run_with_cache(x)` in a loop: the last cache lives on
        held[0] = model.run_with_cache(pixels)

    fns = {
        PLAIN: lambda: model.model(pixels),
        "HookedViT forward, no hooks": lambda: model(pixels),
        "run_with_cache(hook_resid_post only)": lambda: model.run_with_cache(pixels, "blocks.*.hook_resid_post"),
        "run_with_hooks(no-op on every non-pattern hook)": lambda: model.run_with_hooks(pixels, [(no_pattern, noop)]),
    }
    if mode == "before":
        fns[ALL] = lambda: model.run_with_cache(pixels, reuse_buffers=False)
    elif mode == "now":
        fns[ALL] = lambda: model.run_with_cache(pixels)
        fns[ALL + ", last cache held"] = cache_held
        fns[ALL + ", reuse_buffers=True"] = lambda: model.run_with_cache(pixels, reuse_buffers=True)
    else:  # GPU
        fns[ALL] = lambda: model.run_with_cache(pixels)
    return fns


def worker(conn, mode: str, batch: int, threads: int | None) -> None:
    """One CPU process: builds the model, then times whichever variant the parent names, until told to stop."""
    from prisma_widgets.hooked.allocator import keep_freed_memory

    if mode == "before":
        keep_freed_memory(False)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = pw.load("vit_base_patch16_224", pretrained=False)
    pixels = torch.randn(batch, 3, 224, 224)
    fns = variants(model, pixels, mode)
    conn.send(list(fns))
    with torch.inference_mode():
        while (name := conn.recv()) is not None:
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            wall, cpu = time.perf_counter(), time.process_time()
            fns[name]()
            conn.send((time.perf_counter() - wall, time.process_time() - cpu,
                       resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults))


def cpu_section(args: argparse.Namespace) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = {}
    for mode in ("before", "now"):
        parent, child = ctx.Pipe()
        process = ctx.Process(target=worker, args=(child, mode, args.batch, args.threads), daemon=True)
        process.start()
        workers[mode] = (process, parent)
    names = {mode: conn.recv() for mode, (_, conn) in workers.items()}
    wall = {mode: {n: [] for n in names[mode]} for mode in workers}
    cpu = {mode: {n: [] for n in names[mode]} for mode in workers}
    faults = {mode: {n: [] for n in names[mode]} for mode in workers}
    threads = args.threads or torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} CPU threads per worker; {machine_load()} before")
    try:
        for round_ in range(args.rounds + 1):  # round 0 warms up
            for mode, (_, conn) in workers.items():
                for name in names[mode]:
                    conn.send(name)
                    w, c, f = conn.recv()
                    if round_:
                        wall[mode][name].append(w)
                        cpu[mode][name].append(c)
                        faults[mode][name].append(f)
    finally:
        for process, conn in workers.values():
            conn.send(None)
            process.join(timeout=60)
    title = f"CPU fp32, ViT-B/16, batch {args.batch} (targets: resid-only <= 1.02x, all hooks <= 1.15x)"
    summary = {}
    for mode, label in (("before", "before issue 19: glibc left alone, reuse_buffers=False"),
                        ("now", "now: the defaults")):
        for clock, times in (("wall clock", wall[mode]), ("CPU time", cpu[mode])):
            ratios = print_round_ratios(f"{title}\n{label}, {clock}", times, PLAIN)
            summary[mode, clock] = (ratios[ALL], statistics.median(times[ALL]))
        print("page faults per call (median): " + ", ".join(
            f"{name.replace('run_with_cache', 'cache')} {statistics.median(f):,.0f}" for name, f in faults[mode].items()))
    print(f"\nall hooks cached, ratio to the plain forward of the same process (median over {args.rounds} rounds):")
    for clock in ("wall clock", "CPU time"):
        (before, t_before), (now, t_now) = summary["before", clock], summary["now", clock]
        print(f"  {clock:<10}  before {before:.3f}x ({t_before * 1e3:.0f} ms)  ->  now {now:.3f}x ({t_now * 1e3:.0f} ms)")
    print(f"{machine_load()} after")


def gpu_section(args: argparse.Namespace) -> None:
    if not gpu_header(args.gpu_only):
        return
    torch.manual_seed(0)
    model = pw.load("vit_base_patch16_224", pretrained=False, device="cuda").to(torch.bfloat16)
    pixels = torch.randn(args.gpu_batch, 3, 224, 224, device="cuda", dtype=torch.bfloat16)
    with torch.inference_mode():
        times = interleaved_times(variants(model, pixels, "gpu"), rounds=args.rounds * 3, sync=torch.cuda.synchronize)
    print_round_ratios(f"GPU bf16 {torch.cuda.get_device_name()}, ViT-B/16, batch {args.gpu_batch}", times, PLAIN)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads per CPU worker")
    parser.add_argument("--gpu-batch", type=int, default=64)
    parser.add_argument("--gpu-only", action="store_true", help="only the GPU section (benchmarks/gpu_all.py)")
    args = parser.parse_args()
    if not args.gpu_only:
        cpu_section(args)
    gpu_section(args)


if __name__ == "__main__":
    main()
