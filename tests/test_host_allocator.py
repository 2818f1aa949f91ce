"""run_with_cache keeps freed host memory for reuse: a large cache is not page-faulted in again on every call."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import pixels_for
from prisma_widgets.hooked import allocator
from prisma_widgets.hooked.arena import CacheArena

ON_GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# A child process: ViT-Ti/16 at 224 px, 6 blocks, batch 8, every hook cached (about 180 MB a call), three calls;
# prints the cache's size and the minor page faults of the third call.
_CHILD = textwrap.dedent("""
    import json, resource, sys, torch
    import prisma_widgets as pw
    from prisma_widgets.hooked.allocator import keep_freed_memory
    if sys.argv[1] == "declined":
        keep_freed_memory(False)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = pw.load("vit_tiny_patch16_224", pretrained=False, depth=6)
    pixels = torch.randn(8, 3, 224, 224)
    reuse = {"declined": False, "default": None, "arena": True}[sys.argv[1]]
    with torch.inference_mode():
        for _ in range(3):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            _, cache = model.run_with_cache(pixels, reuse_buffers=reuse)
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
            nbytes = cache.nbytes
            del cache
    print(json.dumps({"faults": faults, "pages": nbytes // 4096}))
""")


def _third_call(mode: str) -> dict[str, int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "LD_PRELOAD", "GLIBC_TUNABLES"):
        env.pop(name, None)
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # three child processes, each loading torch and a model
@pytest.mark.skipif(not ON_GLIBC, reason="glibc's page-fault behaviour")
def test_default_caching_does_not_fault_the_cache_in_again():
    """With glibc left alone the third call faults in about the whole cache; by default, almost nothing."""
    declined, default, arena = _third_call("declined"), _third_call("default"), _third_call("arena")
    assert declined["pages"] > 30_000  # the cache is ~180 MB: far over glibc's 64 MB trim threshold
    assert declined["faults"] > 0.7 * declined["pages"], declined
    assert default["faults"] < 0.1 * default["pages"], default
    assert arena["faults"] < 0.2 * arena["pages"], arena


def test_detection_of_allocators_that_keep_freed_memory(monkeypatch):
    monkeypatch.setitem(allocator._state, "tuned", False)
    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES", "LD_PRELOAD"):
        monkeypatch.delenv(name, raising=False)
    assert not allocator.allocator_keeps_freed_memory()
    monkeypatch.setenv("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
    assert allocator.allocator_keeps_freed_memory()
    monkeypatch.delenv("LD_PRELOAD")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=8589934592")
    assert allocator.allocator_keeps_freed_memory()
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "8589934592")
    assert allocator.allocator_keeps_freed_memory()


def test_buffers_are_reused_only_where_freed_memory_is_not_kept(tiny):
    """Kept memory: activations stored as they are (no copy). Declined: the arena takes over. Results equal."""
    pixels = pixels_for(tiny)
    tiny.cache_arena = CacheArena()
    try:
        with torch.no_grad():
            out, cache = tiny.run_with_cache(pixels)
            if allocator.allocator_keeps_freed_memory():
                assert tiny.cache_arena.nbytes == 0
            allocator.keep_freed_memory(False)
            declined_out, declined = tiny.run_with_cache(pixels)
            if not allocator.allocator_keeps_freed_memory():
                assert tiny.cache_arena.nbytes > 0
    finally:
        allocator.keep_freed_memory(True)
    assert torch.equal(out, declined_out)
    for name in cache:
        assert torch.equal(cache[name], declined[name]), name


@pytest.mark.skipif(not ON_GLIBC, reason="mallopt is glibc's")
def test_keep_freed_memory_reports_and_declines():
    try:
        assert allocator.keep_freed_memory() is True
        assert allocator.keep_freed_memory(False) is allocator.allocator_keeps_freed_memory()
        assert not allocator.host_memory_is_kept() or allocator.allocator_keeps_freed_memory()
    finally:
        assert allocator.keep_freed_memory(True) is True
