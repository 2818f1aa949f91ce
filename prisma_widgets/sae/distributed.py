"""Where this process stands under ``torchrun``; the same calls work unchanged in a single process.

Example:
    >>> from prisma_widgets.sae.distributed import barrier, rank_and_world
    >>> rank_and_world()   # outside torch.distributed: rank 0 of 1
    (0, 1)
    >>> barrier()          # nothing to wait for
"""

from __future__ import annotations


def rank_and_world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside ``torch.distributed``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def barrier() -> None:
    """Wait for every process (a no-op outside ``torch.distributed``)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
