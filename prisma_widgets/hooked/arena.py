"""Host buffers that ``run_with_cache`` reuses from call to call, so cached activations land in warm memory.

Caching every hook of ViT-B/16 at batch 8 keeps about 1.4 GB per call; memory freed by a dropped cache that the
allocator hands back to the OS is page-faulted in again on the next call. Where the allocator cannot be told to
keep freed memory (:mod:`prisma_widgets.hooked.allocator`: off glibc, or declined), or with
``run_with_cache(..., reuse_buffers=True)``, a :class:`CacheArena` keeps the buffers instead and copies each
call's activations into them: a copy into memory already mapped is cheaper than faulting fresh pages in, though
not free (on glibc, keeping freed memory measured faster than copying: benchmarks/hook_overhead.py).

A buffer is reused only when nothing outside the arena refers to its memory: the tensor handed to the caller,
any view of it, a NumPy array or DLPack capsule made from it, or its storage object. That is read from the
storage's reference count, so a tensor the user still holds (``x = cache["blocks.0.hook_resid_pre"]``) never
changes under them; a later call gets another buffer instead.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Hashable
from typing import Any

import torch

#: buffers kept per (name, shape, dtype): two serve ``_, cache = model.run_with_cache(...)`` in a loop, where the
#: previous cache is still held while the next call runs
GENERATIONS = 2

def default_limit() -> int:
    """A quarter of physical memory (4 GB where it cannot be read): the most an arena keeps."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) // 4
    except (AttributeError, OSError, ValueError):
        return 4 << 30


def _holders(buffer: torch.Tensor) -> tuple[int, int] | None:
    """Who refers to ``buffer``'s memory: (tensors and storages in C++, Python references to the storage object).

    ``None`` when this torch cannot say, which makes the buffer count as held.
    """
    count = getattr(torch._C, "_storage_Use_Count", None)
    if count is None:
        return None
    storage = buffer.untyped_storage()
    return int(count(storage._cdata)), sys.getrefcount(storage)


class CacheArena:
    """CPU buffers for cached activations, reused across calls once nobody holds them.

    Example:
        >>> import torch
        >>> arena = CacheArena()
        >>> first = arena.copy("blocks.0.hook_resid_pre", torch.ones(2, 3))
        >>> second = arena.copy("blocks.0.hook_resid_pre", torch.zeros(2, 3))  # `first` is still held
        >>> first.sum().item(), first.data_ptr() != second.data_ptr()
        (6.0, True)
        >>> address = first.data_ptr()
        >>> del first
        >>> arena.copy("blocks.0.hook_resid_pre", torch.full((2, 3), 2.0)).data_ptr() == address  # reused
        True
    """

    def __init__(self, limit_bytes: int | None = None) -> None:
        self.limit_bytes = default_limit() if limit_bytes is None else int(limit_bytes)
        self._buffers: dict[Hashable, list[torch.Tensor]] = {}
        self._idle: dict[int, tuple[int, int] | None] = {}  # id(buffer) -> its holders when nobody else has it
        self._last_used: dict[int, int] = {}
        self._clock = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Memory the arena keeps, in bytes."""
        return sum(b.numel() * b.element_size() for bs in self._buffers.values() for b in bs)

    def copy(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor``'s values in a CPU tensor of the same shape and dtype (contiguous), the caller's to keep."""
        key = (name, tuple(tensor.shape), tensor.dtype)
        with self._lock:
            out = self._take(key)
        return out.copy_(tensor)

    def release(self) -> None:
        """Forget every buffer; memory the caller still holds stays valid."""
        with self._lock:
            self._buffers.clear()
            self._idle.clear()
            self._last_used.clear()

    # ----- internals -----
    def _take(self, key: tuple[Any, ...]) -> torch.Tensor:
        self._clock += 1
        kept = self._buffers.setdefault(key, [])
        for buffer in kept:
            if self._is_free(buffer):
                self._last_used[id(buffer)] = self._clock
                return buffer.detach()  # a new tensor over the same memory: while it lives, the buffer is held
        _, shape, dtype = key
        with torch.inference_mode(False):  # a normal tensor: it may be written outside inference mode later
            buffer = torch.empty(shape, dtype=dtype)
        size = buffer.numel() * buffer.element_size()
        if len(kept) < GENERATIONS and self._make_room(size):
            kept.append(buffer)
            self._idle[id(buffer)] = _holders(buffer)
            self._last_used[id(buffer)] = self._clock
        return buffer.detach()

    def _is_free(self, buffer: torch.Tensor) -> bool:
        idle = self._idle.get(id(buffer))
        return idle is not None and _holders(buffer) == idle

    def _make_room(self, size: int) -> bool:
        """Drop free buffers, least recently used first, until ``size`` more bytes fit under the limit."""
        if size > self.limit_bytes:
            return False
        total = self.nbytes
        if total + size <= self.limit_bytes:
            return True
        free = sorted(
            ((self._last_used[id(b)], key, b) for key, bs in self._buffers.items() for b in bs if self._is_free(b)),
            key=lambda entry: entry[0],
        )
        for _, key, buffer in free:
            self._buffers[key] = [b for b in self._buffers[key] if b is not buffer]
            self._idle.pop(id(buffer), None)
            self._last_used.pop(id(buffer), None)
            total -= buffer.numel() * buffer.element_size()
            if total + size <= self.limit_bytes:
                return True
        return False

    def __deepcopy__(self, memo: dict[int, Any]) -> CacheArena:
        return CacheArena(self.limit_bytes)  # buffers are scratch memory, not state

    def __repr__(self) -> str:
        n = sum(len(bs) for bs in self._buffers.values())
        return f"CacheArena({n} buffers, {self.nbytes / 2**20:.1f} MB of {self.limit_bytes / 2**30:.1f} GB)"
