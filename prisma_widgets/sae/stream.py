"""The rows an SAE trains on, in a seeded order that is a pure function of ``(seed, epoch)``.

Each epoch reads the data in chunks, the chunks in a seeded random order and the rows of each chunk in a seeded
permutation; so the place in the stream is one integer, the number of rows consumed, and a resumed run sees
exactly the rows an uninterrupted one would have. A store is read a chunk at a time (memory-mapped), a tensor
is used in place.

Example:
    >>> import torch
    >>> from prisma_widgets.sae.stream import RowStream
    >>> rows = torch.arange(10.0)[:, None]
    >>> a = RowStream(rows, seed=0, device=torch.device("cpu"), chunk_rows=4)
    >>> first = a.next(7)
    >>> b = RowStream(rows, seed=0, device=torch.device("cpu"), chunk_rows=4)
    >>> b.position = 3                            # resume after 3 rows
    >>> torch.equal(b.next(4), first[3:])
    True
    >>> sorted(first[:, 0].tolist() + a.next(3)[:, 0].tolist()) == list(range(10))   # one epoch: every row once
    True
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..validate import check_finite
from .store import ActivationStore


class RowStream:
    """Rows in a seeded order, epoch after epoch; ``position`` rows consumed so far (global, across ranks)."""

    def __init__(self, data: Any, seed: int, device: torch.device, chunk_rows: int | None) -> None:
        self.data, self.seed, self.device = data, int(seed), device
        if isinstance(data, ActivationStore):
            data.check_complete()
            self.n, self.d = len(data), data.d
            self.chunk_rows = int(chunk_rows or max(1, min(self.n, (512 << 20) // (4 * self.d))))
        else:
            if not isinstance(data, torch.Tensor) or data.ndim != 2:
                raise TypeError(
                    "train_sae takes an ActivationStore or a 2-D tensor [rows, d]; "
                    f"got {type(data).__name__}{list(data.shape) if isinstance(data, torch.Tensor) else ''}"
                )
            self.n, self.d = data.shape
            self.chunk_rows = int(chunk_rows or self.n)
            self.tensor = data.to(device)
        self.n_chunks = math.ceil(self.n / self.chunk_rows)
        self.position = 0
        self._key: tuple[int, int] | None = None

    def _order(self, epoch: int) -> list[int]:
        if self.n_chunks == 1:
            return [0]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n_chunks, generator=g).tolist()

    def _load(self, epoch: int, slot: int) -> None:
        if self._key == (epoch, slot):
            return
        chunk = self._order(epoch)[slot]
        start, stop = chunk * self.chunk_rows, min((chunk + 1) * self.chunk_rows, self.n)
        if isinstance(self.data, ActivationStore):
            rows = self.data.read(start, stop, torch.float32)
            check_finite(rows, f"the activation cache at {self.data.path!r} (rows {start}..{stop - 1}; index relative "
                         "to the first)", "inf in a float16 cache means activations beyond float16's range: cache "
                         "again with dtype='float32' (overwrite=True); NaN comes from the model: check its weights")
            self.chunk = rows.pin_memory().to(self.device, non_blocking=True) if self.device.type == "cuda" else rows
        else:
            self.chunk = self.tensor[start:stop]
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) * 65_537 + chunk)
        self.perm = torch.randperm(stop - start, generator=g).to(self.device)
        self._key = (epoch, slot)

    def _locate(self, position: int) -> tuple[int, int, int]:
        epoch, rem = divmod(position, self.n)
        for slot, chunk in enumerate(self._order(epoch)):
            size = min((chunk + 1) * self.chunk_rows, self.n) - chunk * self.chunk_rows
            if rem < size:
                return epoch, slot, rem
            rem -= size
        raise AssertionError("unreachable")

    def sample(self, rows: int) -> torch.Tensor:
        """A fixed sample for initialisation (the first rows of epoch 0's order)."""
        saved = self.position
        self.position = 0
        out = self.next(min(rows, self.n))
        self.position = saved
        return out

    def next(self, rows: int) -> torch.Tensor:
        parts = []
        while rows > 0:
            epoch, slot, offset = self._locate(self.position)
            self._load(epoch, slot)
            take = min(rows, len(self.perm) - offset)
            parts.append(self.chunk[self.perm[offset:offset + take]])
            self.position += take
            rows -= take
        return (parts[0] if len(parts) == 1 else torch.cat(parts)).float()
