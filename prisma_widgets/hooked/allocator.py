"""Keeping freed host memory in the process, so large caches are not page-faulted in on every call.

Caching every hook of ViT-B/16 at batch 8 keeps about 1.4 GB per call. With glibc's default settings, memory
freed at the top of the heap goes back to the OS once more than 64 MB of it is free, so dropping a cache hands
it back and the next call faults all of it in again: ``run_with_cache`` of every hook measured 1.3-2x the plain
forward on CPU (benchmarks/hook_overhead.py), of which the page faults were most of the difference.

The first ``run_with_cache`` that keeps activations on the host therefore asks glibc (``mallopt``) to keep up to
:data:`KEEP_LIMIT` of freed memory for reuse and to serve tensors up to 32 MB from its heap, what
``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_MMAP_THRESHOLD_`` or jemalloc would do. It changes no result, only where
memory comes from; the process keeps up to that much memory that it freed (it is reused by any later
allocation). Nothing is changed when the allocator already keeps freed memory (those variables set, jemalloc,
tcmalloc or mimalloc preloaded), off glibc, or after ``keep_freed_memory(False)``. Where it cannot be tuned,
``run_with_cache`` reuses its own buffers instead (:mod:`prisma_widgets.hooked.arena`).
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading

_M_TRIM_THRESHOLD = -1  # glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_GLIBC_TRIM_DEFAULT = 128 * 1024
#: tensors up to this size come from the heap (glibc's largest mmap threshold on 64-bit)
HEAP_UP_TO = 32 << 20

_GLIBC_KEEPS_MEMORY = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
_CACHING_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")

_lock = threading.Lock()
_state = {"tuned": False, "declined": False}


def _physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


#: the most freed memory glibc keeps: a quarter of physical memory, at most 2 GB (mallopt takes a C int)
KEEP_LIMIT = min((_physical_memory() or 8 << 30) // 4, 2**31 - 1)


def allocator_keeps_freed_memory() -> bool:
    """Whether this process's allocator keeps freed memory for reuse: glibc tuned by its environment variables or
    by :func:`keep_freed_memory`, or jemalloc / tcmalloc / mimalloc preloaded.

    >>> isinstance(allocator_keeps_freed_memory(), bool)
    True
    """
    if _state["tuned"] or any(os.environ.get(name) for name in _GLIBC_KEEPS_MEMORY):
        return True
    if "malloc.trim_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        return True
    preload = os.environ.get("LD_PRELOAD", "").lower()
    return any(name in preload for name in _CACHING_ALLOCATORS)


def _mallopt() -> object | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None


def keep_freed_memory(enabled: bool = True) -> bool:
    """Ask glibc to keep up to :data:`KEEP_LIMIT` of freed memory (``enabled=True``), or to hand freed memory
    back to the OS again and never be tuned by this package (``False``). Returns whether the allocator keeps
    freed memory afterwards. ``run_with_cache`` calls ``keep_freed_memory()`` once by itself.

    >>> from prisma_widgets.hooked.allocator import keep_freed_memory
    >>> keep_freed_memory() in (True, False)     # False off glibc, where nothing is changed
    True
    """
    with _lock:
        mallopt = _mallopt()
        if not enabled:
            _state["declined"] = True
            if _state["tuned"] and mallopt is not None:
                mallopt(_M_TRIM_THRESHOLD, _GLIBC_TRIM_DEFAULT)
            _state["tuned"] = False
            return allocator_keeps_freed_memory()
        _state["declined"] = False
        if allocator_keeps_freed_memory() or mallopt is None:
            return allocator_keeps_freed_memory()
        # mmap threshold first: setting either one ends glibc's own adjustment of both
        if mallopt(_M_MMAP_THRESHOLD, HEAP_UP_TO) == 1 and mallopt(_M_TRIM_THRESHOLD, KEEP_LIMIT) == 1:
            _state["tuned"] = True
        return allocator_keeps_freed_memory()


def host_memory_is_kept() -> bool:
    """For ``run_with_cache``: tune glibc on first use (unless declined); whether freed memory is kept now."""
    if _state["tuned"] or _state["declined"]:
        return bool(_state["tuned"]) or allocator_keeps_freed_memory()
    return keep_freed_memory()
