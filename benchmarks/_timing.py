"""Side-by-side timing: interleaved rounds, medians, ratios to a baseline measured in the same run.

On a shared machine the load changes from second to second. Each round runs every variant once, so a busy
spell slows a whole round alike; ratios are taken round by round (variant / baseline of the same round) and
their median and spread reported, which a load that drifts between rounds does not move.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable


def interleaved_times(
    variants: dict[str, Callable[[], object]], rounds: int = 7, warmup: int = 1, sync: Callable[[], None] | None = None
) -> dict[str, list[float]]:
    """Seconds of every round per variant; each round runs every variant once, so drift hits all alike."""
    sync = sync or (lambda: None)
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    sync()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def interleaved_medians(
    variants: dict[str, Callable[[], object]], rounds: int = 7, warmup: int = 1, sync: Callable[[], None] | None = None
) -> dict[str, float]:
    """Median seconds per variant (see :func:`interleaved_times`)."""
    return {name: statistics.median(ts) for name, ts in interleaved_times(variants, rounds, warmup, sync).items()}


def round_ratios(times: dict[str, list[float]], baseline: str) -> dict[str, list[float]]:
    """Each variant's time over the baseline's, round by round."""
    base = times[baseline]
    return {name: [t / b for t, b in zip(ts, base)] for name, ts in times.items()}


def print_ratios(title: str, medians: dict[str, float], baseline: str) -> None:
    base = medians[baseline]
    print(f"\n{title}")
    print(f"{'variant':<52}{'median':>12}{'ratio':>9}")
    for name, seconds in medians.items():
        print(f"{name:<52}{seconds * 1e3:>10.1f}ms{seconds / base:>8.3f}x")


def print_round_ratios(title: str, times: dict[str, list[float]], baseline: str) -> dict[str, float]:
    """Median time, median per-round ratio to ``baseline`` and the ratio's spread (min-max over rounds).

    Returns the median ratios by variant.
    """
    ratios = round_ratios(times, baseline)
    print(f"\n{title}")
    print(f"{'variant':<52}{'median':>11}{'ratio':>9}  {'spread over ' + str(len(times[baseline])) + ' rounds':>24}")
    medians = {}
    for name, ts in times.items():
        r = ratios[name]
        medians[name] = statistics.median(r)
        print(f"{name:<52}{statistics.median(ts) * 1e3:>9.1f}ms{medians[name]:>8.3f}x  {min(r):>10.3f}x - {max(r):.3f}x")
    return medians


def machine_load() -> str:
    """The 1-minute load average against the CPU count, for the record ("" where the OS cannot say)."""
    try:
        return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    except (AttributeError, OSError):
        return ""


def gpu_header(gpu_only: bool) -> bool:
    """Whether a CUDA device is here; prints that the GPU section is skipped when none is."""
    import torch

    if torch.cuda.is_available():
        return True
    print(("no CUDA here: " if gpu_only else "\nno CUDA here: ") + "GPU section skipped")
    return False
