"""Activation caching: contents, resume after interrupt / SIGKILL, refusals, sources, data-parallel writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import prisma_widgets as pw
from prisma_widgets.sae import cache_folder as store_mod

HOOK = "blocks.1.hook_resid_post"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


pytestmark = pytest.mark.usefixtures("one_thread")


def _images(n: int = 12, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (n, 64, 64, 3), dtype=np.uint8)


class CountingDataset(torch.utils.data.Dataset):
    """(image, label) items; counts reads and can raise KeyboardInterrupt at one index."""

    def __init__(self, images: np.ndarray, interrupt_at: int | None = None) -> None:
        self.images, self.interrupt_at, self.reads = images, interrupt_at, 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        if i == self.interrupt_at:
            self.interrupt_at = None
            raise KeyboardInterrupt
        self.reads += 1
        return self.images[i], i % 3


def _load(path: str) -> np.ndarray:
    return np.load(os.path.join(path, "activations.npy"))


def test_cache_matches_run_with_cache_for_each_token_mode(tiny, tmp_path):
    images = _images(5)
    _, cache = tiny.run_with_cache(images, HOOK)
    full = cache[HOOK].float()
    n_prefix = tiny.cfg.n_prefix_tokens
    for tokens, expected in (("all", full), ("patches", full[:, n_prefix:]), ("cls", full[:, :1])):
        store = pw.cache_activations(tiny, images, HOOK, tmp_path / tokens, tokens=tokens, dtype="float32",
                                     batch_size=2, progress=False)
        assert store.complete and store.shape == (5 * expected.shape[1], tiny.cfg.d_model)
        torch.testing.assert_close(store.to_tensor(), expected.reshape(-1, tiny.cfg.d_model), rtol=1e-5, atol=1e-5)
        manifest = json.loads((tmp_path / tokens / "manifest.json").read_text())
        assert manifest["hook"] == HOOK and manifest["tokens"] == tokens and manifest["dtype"] == "float32"
        assert manifest["rows_written"] == 5 * expected.shape[1] and manifest["complete"]
        assert manifest["model"] == tiny.name and manifest["image_ids"] == {"start": 0, "stop": 5}
    img, tok = store.row_to_image([0, 4])
    assert img.tolist() == [0, 4] and tok.tolist() == [0, 0]


def test_finished_cache_is_reused_and_other_settings_refused(tiny, tmp_path):
    data = CountingDataset(_images(6))
    pw.cache_activations(tiny, data, HOOK, tmp_path, batch_size=4, progress=False)
    assert data.reads == 6
    again = pw.cache_activations(tiny, data, HOOK, tmp_path, batch_size=4, progress=False)
    assert data.reads == 6 and again.complete  # nothing recomputed
    with pytest.raises(ValueError, match=r"tokens='all'.*tokens='patches'.*overwrite=True"):
        pw.cache_activations(tiny, data, HOOK, tmp_path, tokens="patches", progress=False)
    with pytest.raises(ValueError, match=r"hook="):
        pw.cache_activations(tiny, data, "blocks.0.hook_resid_post", tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"n_images=6.*n_images=5"):
        pw.cache_activations(tiny, _images(5), HOOK, tmp_path, progress=False)
    rebuilt = pw.cache_activations(tiny, data, HOOK, tmp_path, tokens="patches", overwrite=True, progress=False)
    assert rebuilt.tokens == "patches" and rebuilt.complete


def test_disk_without_room_is_refused_before_any_work(tiny, tmp_path, monkeypatch):
    class Usage:
        total, used, free = 10**9, 10**9 - 1000, 1000

    monkeypatch.setattr(store_mod.shutil, "disk_usage", lambda path: Usage)
    data = CountingDataset(_images(4))
    with pytest.raises(OSError, match=r"not enough disk space.*needs .* KB more but only 1000 B is free"):
        pw.cache_activations(tiny, data, HOOK, tmp_path / "c", progress=False)
    assert data.reads == 0 and not (tmp_path / "c" / "activations.npy").exists()


def test_keyboard_interrupt_then_rerun_continues_where_it_stopped(tiny, tmp_path):
    images = _images(10)
    clean = pw.cache_activations(tiny, images, HOOK, tmp_path / "clean", batch_size=3, progress=False)
    data = CountingDataset(images, interrupt_at=7)
    with pytest.raises(KeyboardInterrupt):
        pw.cache_activations(tiny, data, HOOK, tmp_path / "c", batch_size=3, progress=False)
    partial = pw.ActivationStore(tmp_path / "c")
    assert partial.images_done == 6 and not partial.complete
    with pytest.raises(RuntimeError, match="incomplete"):
        partial.to_tensor()
    data.reads = 0
    done = pw.cache_activations(tiny, data, HOOK, tmp_path / "c", batch_size=3, progress=False)
    assert data.reads == 4  # images 6..9 only
    assert done.complete and np.array_equal(_load(tmp_path / "c"), _load(clean.path))


KILL_SCRIPT = """
import sys, time, numpy as np, torch
import prisma_widgets as pw
torch.manual_seed(0)
model = pw.load("vit_tiny_patch16_224", pretrained=False, depth=2, img_size=64)
images = np.random.RandomState(0).randint(0, 256, (16, 64, 64, 3), dtype=np.uint8)

class Slow(torch.utils.data.Dataset):
    def __len__(self): return len(images)
    def __getitem__(self, i):
        time.sleep(float(sys.argv[2]))
        return images[i]

pw.cache_activations(model, Slow(), "blocks.1.hook_resid_post", sys.argv[1], batch_size=2, progress=False)
print("finished")
"""


def test_cache_killed_mid_run_resumes_to_identical_cache(tmp_path):
    script = tmp_path / "cache.py"
    script.write_text(KILL_SCRIPT)
    path = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(path), "0.15"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    manifest = path / "manifest.json"
    deadline = time.time() + 60
    try:
        while time.time() < deadline:
            if manifest.exists() and pw.ActivationStore(path).rows_written >= 4 * 17:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        else:
            pytest.fail("the caching subprocess made no progress")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    written = pw.ActivationStore(path).rows_written
    assert 0 < written < 16 * 17, "the kill must land mid-run"
    assert list(path.glob("progress.rank0.json"))  # the killed run's record, merged by the next run
    # run the same call again (in-process this time), then an uninterrupted one
    torch.manual_seed(0)
    model = pw.load("vit_tiny_patch16_224", pretrained=False, depth=2, img_size=64)
    images = np.random.RandomState(0).randint(0, 256, (16, 64, 64, 3), dtype=np.uint8)
    resumed = pw.cache_activations(model, list(images), HOOK, path, batch_size=2, progress=False)
    clean = pw.cache_activations(model, images, HOOK, tmp_path / "clean", batch_size=2, progress=False)
    assert resumed.complete and resumed.manifest["rows_written"] == 16 * 17
    assert not list(path.glob("progress.rank*.json"))
    assert np.array_equal(_load(path), _load(clean.path))


def test_sources_folder_loader_and_hf_style_give_the_same_cache(tiny, tmp_path):
    from PIL import Image

    images = _images(5)
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / ("sub" if i % 2 else "") / f"{i:02d}.png")
    ref = pw.cache_activations(tiny, list(images), HOOK, tmp_path / "list", progress=False)
    from_folder = pw.cache_activations(tiny, folder, HOOK, tmp_path / "folder", progress=False)
    ids = from_folder.image_ids()
    assert sorted(ids) == ids and len(ids) == 5 and ids[0] == "00.png"
    order = [int(os.path.basename(p)[:2]) for p in ids]
    rows = np.concatenate([np.arange(i * 17, (i + 1) * 17) for i in order])
    assert np.array_equal(_load(from_folder.path), _load(ref.path)[rows])

    loader = torch.utils.data.DataLoader(CountingDataset(images), batch_size=2)
    hf_like = [{"image": img, "label": 0} for img in images]

    class HFLike:  # duck-typed datasets.Dataset
        def __len__(self): return len(hf_like)
        def __getitem__(self, i): return hf_like[i]

    for name, src in (("loader", loader), ("hf", HFLike())):
        store = pw.cache_activations(tiny, src, HOOK, tmp_path / name, progress=False)
        assert np.array_equal(_load(store.path), _load(ref.path)), name

    # back to the source images, from a store opened with no images in hand (folder) and with them (list)
    reopened = pw.ActivationStore(from_folder.path)
    back = reopened.images([order.index(3)])
    assert np.array_equal(np.asarray(back[0]), images[3])
    assert np.array_equal(pw.ActivationStore(ref.path, images=list(images)).images([2])[0], images[2])
    with pytest.raises(RuntimeError, match="pass it again"):
        pw.ActivationStore(ref.path).images([0])


def test_iteration_is_shuffled_in_chunks_seeded_and_complete(tiny, tmp_path):
    store = pw.cache_activations(tiny, _images(6), HOOK, tmp_path, dtype="float32", progress=False)
    full = store.to_tensor()
    a = torch.cat(list(store.iter_batches(batch_size=7, chunk_rows=40, seed=1)))
    b = torch.cat(list(store.iter_batches(batch_size=7, chunk_rows=40, seed=1)))
    c = torch.cat(list(store.iter_batches(batch_size=7, chunk_rows=40, seed=2)))
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, full)
    key = lambda t: t[torch.argsort(t[:, 0] * 1e3 + t[:, 1])]  # noqa: E731
    assert torch.equal(key(a), key(full))  # every row exactly once
    assert torch.equal(torch.cat(list(store.chunks(chunk_rows=40))), full)


DIST_SCRIPT = """
import os, sys, numpy as np, torch, torch.distributed as dist, torch.multiprocessing as mp
import prisma_widgets as pw

def build():
    torch.manual_seed(0)
    return pw.load("vit_tiny_patch16_224", pretrained=False, depth=2, img_size=64)

IMAGES = np.random.RandomState(0).randint(0, 256, (10, 64, 64, 3), dtype=np.uint8)

def run(rank, world, out):
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", init_method="file://" + os.path.join(out, "rendezvous"), rank=rank,
                                world_size=world)
    model = build()
    reads = []

    class Counted(torch.utils.data.Dataset):
        def __len__(self): return len(IMAGES)
        def __getitem__(self, i):
            reads.append(i)
            return IMAGES[i]

    store = pw.cache_activations(model, Counted(), "blocks.1.hook_resid_post", os.path.join(out, "cache"),
                                 batch_size=2, progress=False)
    assert store.complete
    with open(os.path.join(out, f"reads{rank}.txt"), "w") as fh:
        fh.write(",".join(map(str, sorted(reads))))
    sae = pw.train_sae(store, expansion=2, k=4, batch_size=64, steps=6, seed=3, progress=False)
    if rank == 0:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in sae.state_dict().items()}, os.path.join(out, "sae.safetensors"))
    if world > 1:
        dist.destroy_process_group()

if __name__ == "__main__":
    world, out = int(sys.argv[1]), sys.argv[2]
    if world == 1:
        run(0, 1, out)
    else:
        mp.spawn(run, args=(world, out), nprocs=world)
"""


def test_two_process_gloo_gives_the_same_cache_and_sae_as_one(tiny, tmp_path):
    script = tmp_path / "dist.py"
    script.write_text(DIST_SCRIPT)
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    outs = {2: tmp_path / "w2", 1: tmp_path / "w1"}
    outs[2].mkdir()
    res = subprocess.run([sys.executable, str(script), "2", str(outs[2])], env=env, capture_output=True, text=True,
                         timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    # the same work in this one process (tiny is the script's model: same name, seed and size)
    images = np.random.RandomState(0).randint(0, 256, (10, 64, 64, 3), dtype=np.uint8)
    store = pw.cache_activations(tiny, images, "blocks.1.hook_resid_post", outs[1] / "cache", batch_size=2,
                                 progress=False)
    sae = pw.train_sae(store, expansion=2, k=4, batch_size=64, steps=6, seed=3, progress=False)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sae.state_dict().items()}, outs[1] / "sae.safetensors")
    two, one = pw.ActivationStore(outs[2] / "cache"), pw.ActivationStore(outs[1] / "cache")
    assert two.complete and two.manifest["done"] == [[0, 10]]
    assert not list((outs[2] / "cache").glob("progress.rank*.json"))  # merged into the manifest
    assert np.array_equal(_load(two.path), _load(one.path))
    shares = [(outs[2] / f"reads{r}.txt").read_text() for r in (0, 1)]
    assert shares == ["0,1,2,3", "4,5,6,7,8,9"]  # each process ran (and wrote) only its own images
    from safetensors.torch import load_file

    a, b = load_file(outs[2] / "sae.safetensors"), load_file(outs[1] / "sae.safetensors")
    for key in a:  # all-reduced gradients: equal up to the order of the float sums
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


def test_token_layouts_registers_and_no_cls(tmp_path):
    from conftest import build

    reg = build("vit_small_patch14_reg4_dinov2")  # CLS + 4 registers
    imgs = np.random.RandomState(2).randint(0, 256, (3, 56, 56, 3), dtype=np.uint8)
    store = pw.cache_activations(reg, imgs, "blocks.0.hook_resid_post", tmp_path / "reg", tokens="patches",
                                 dtype="float32", progress=False)
    _, cache = reg.run_with_cache(imgs, "blocks.0.hook_resid_post")
    expected = cache["blocks.0.hook_resid_post"][:, 5:].reshape(-1, reg.cfg.d_model)
    assert store.tokens_per_image == reg.cfg.n_patches == 16
    torch.testing.assert_close(store.to_tensor(), expected, rtol=1e-5, atol=1e-5)
    gap = build("vit_medium_patch16_gap_256")  # no CLS token at all
    with pytest.raises(ValueError, match="has no CLS token"):
        pw.cache_activations(gap, _images(2), "blocks.0.hook_resid_post", tmp_path / "gap", tokens="cls",
                             progress=False)
    assert not (tmp_path / "gap").exists()
