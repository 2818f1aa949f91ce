"""Side-by-side timing: interleaved rounds, medians, ratios to a baseline measured in the same run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved_medians(
    variants: dict[str, Callable[[], object]], rounds: int = 7, warmup: int = 1, sync: Callable[[], None] | None = None
) -> dict[str, float]:
    """Median seconds per variant; each round runs every variant once, so drift hits all alike."""
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
    return {name: statistics.median(ts) for name, ts in times.items()}


def print_ratios(title: str, medians: dict[str, float], baseline: str) -> None:
    base = medians[baseline]
    print(f"\n{title}")
    print(f"{'variant':<44}{'median':>12}{'ratio':>9}")
    for name, seconds in medians.items():
        print(f"{name:<44}{seconds * 1e3:>10.1f}ms{seconds / base:>8.3f}x")
