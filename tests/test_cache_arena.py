"""run_with_cache reuses host buffers across calls, and never one that the caller still holds."""

from __future__ import annotations

import copy
import gc

import numpy as np
import pytest
import torch

from conftest import pixels_for
from prisma_widgets.hooked.arena import CacheArena


def test_reused_buffers_are_bit_identical_to_the_activations_themselves(tiny):
    """Outputs and every cached tensor equal a run that stores the activations (no copy), call after call."""
    with torch.no_grad():
        for seed in range(3):
            pixels = pixels_for(tiny, seed=seed)
            out, cache = tiny.run_with_cache(pixels, reuse_buffers=True)
            ref_out, ref = tiny.run_with_cache(pixels, reuse_buffers=False)
            assert torch.equal(out, ref_out)
            assert list(cache) == list(ref)
            for name in ref:
                assert torch.equal(cache[name], ref[name]), name
    assert torch.equal(tiny.run_with_cache(pixels, "blocks.*.hook_resid_post", reuse_buffers=True)[0], tiny.model(pixels))


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode", "enable_grad"])
def test_a_kept_tensor_never_changes_under_a_later_call(tiny, mode):
    """Tensors, views, NumPy arrays and storages taken from call 1 are untouched by call 2; dropped ones are reused."""
    context = getattr(torch, mode)
    arena = tiny.cache_arena = CacheArena()
    with context():
        _, first = tiny.run_with_cache(pixels_for(tiny, seed=1), reuse_buffers=True)
        kept = first["blocks.0.hook_resid_pre"]
        view = first["pattern", 1][0, 2]
        pattern_address = first["pattern", 1].data_ptr()
        array = first["blocks.1.mlp.hook_post"].numpy()
        storage = first["blocks.1.attn.hook_z"].untyped_storage()
        z_before = first["blocks.1.attn.hook_z"].clone()
        expected = kept.clone(), view.clone(), array.copy()
        reused_address = first["blocks.1.hook_resid_post"].data_ptr()
        z_address = first["blocks.1.attn.hook_z"].data_ptr()
        del first
        gc.collect()
        _, second = tiny.run_with_cache(pixels_for(tiny, seed=2), reuse_buffers=True)
    assert torch.equal(kept, expected[0]) and torch.equal(view, expected[1]) and np.array_equal(array, expected[2])
    z_now = torch.empty(0, dtype=z_before.dtype).set_(storage, 0, z_before.shape)
    assert torch.equal(z_now, z_before), "a buffer whose storage object the caller holds was reused"
    # held memory went elsewhere; memory nobody holds was reused
    assert second["blocks.0.hook_resid_pre"].data_ptr() != kept.data_ptr()
    assert second["pattern", 1].data_ptr() != pattern_address
    assert second["blocks.1.mlp.hook_post"].data_ptr() != array.ctypes.data
    assert second["blocks.1.attn.hook_z"].data_ptr() != z_address
    assert second["blocks.1.hook_resid_post"].data_ptr() == reused_address
    assert not torch.equal(second["blocks.0.hook_resid_pre"], kept)
    assert arena.nbytes > 0


def test_the_previous_cache_held_through_the_next_call_keeps_its_values(tiny):
    """``_, cache = model.run_with_cache(x)`` in a loop: the old cache is alive while the new one is filled."""
    tiny.cache_arena = CacheArena()
    results = []
    cache = None
    with torch.no_grad():
        for seed in range(4):
            _, cache = tiny.run_with_cache(pixels_for(tiny, seed=seed), reuse_buffers=True)
            results.append({name: t.clone() for name, t in cache.items()})
            if seed == 1:
                held = cache  # a second holder, two calls long
        for name, t in held.items():
            assert torch.equal(t, results[1][name]), name
        for name, t in cache.items():
            assert torch.equal(t, results[3][name]), name


def test_buffers_are_kept_per_name_shape_and_dtype_within_the_limit():
    arena = CacheArena(limit_bytes=1000)
    a = arena.copy("x", torch.ones(10, 10))  # 400 bytes
    address = a.data_ptr()
    del a
    assert arena.copy("x", torch.zeros(10, 10)).data_ptr() == address  # same key: reused
    assert arena.copy("x", torch.zeros(10, 5)).data_ptr() != address  # another shape: another buffer
    assert arena.copy("x", torch.zeros(10, 10, dtype=torch.float64)).data_ptr() != address
    assert arena.nbytes <= 1000
    big = arena.copy("y", torch.ones(30, 30))  # 3600 bytes: over the limit, handed out but not kept
    assert big.sum().item() == 900 and arena.nbytes <= 1000
    arena.release()
    assert arena.nbytes == 0


def test_at_most_two_generations_per_name():
    arena = CacheArena()
    held = [arena.copy("x", torch.full((4,), float(i))) for i in range(4)]
    assert [t[0].item() for t in held] == [0.0, 1.0, 2.0, 3.0]
    assert arena.nbytes == 2 * 4 * 4


def test_deepcopied_model_gets_its_own_empty_arena(tiny):
    with torch.no_grad():
        tiny.run_with_cache(pixels_for(tiny), "blocks.0.hook_resid_pre", reuse_buffers=True)
    clone = copy.deepcopy(tiny)
    assert clone.cache_arena is not tiny.cache_arena and clone.cache_arena.nbytes == 0
