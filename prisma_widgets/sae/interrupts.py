"""Ctrl-C during training: caught as a flag and acted on between steps, so a checkpoint is always consistent.

Example:
    >>> import torch
    >>> from prisma_widgets.sae.interrupts import Interrupts, stop_together
    >>> with Interrupts() as interrupts:
    ...     stop_together(interrupts.hit, world=1, step=0, every=50, device=torch.device("cpu"))
    False
"""

from __future__ import annotations

import signal
from typing import Any

import torch


class Interrupts:
    """Turns Ctrl-C (a notebook's interrupt) into a flag checked between steps, so checkpoints are always consistent."""

    def __init__(self) -> None:
        self.hit = False
        self.previous: Any = None

    def __enter__(self) -> Interrupts:
        try:
            self.previous = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread
            self.previous = None
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        if self.hit:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def stop_together(hit: bool, world: int, step: int, every: int, device: torch.device) -> bool:
    """Whether training stops before this step.

    Under ``torchrun`` every process gets the Ctrl-C, but not necessarily between the same two steps; a process
    that stopped alone would leave the others waiting in ``all_reduce`` for ever. So the processes agree,
    every ``every`` steps (where the loop waits for the device anyway), and all stop at the same step.
    """
    if world == 1:
        return hit
    if step % every:
        return False
    import torch.distributed as dist

    flag = torch.tensor([float(hit)], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())
