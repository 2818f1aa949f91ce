"""A disk that fills while ``pw.cache_activations`` runs: a Python error that names the fix (never SIGBUS, which
kills a notebook's kernel), the rows already written intact, no temporary files left, and a bit-identical
resume once there is room again.

Two ways to run out of room, each in a subprocess so a signal would show as a negative exit code:

- a real, small tmpfs (mounted in a private mount namespace with ``unshare``; skipped where that is not allowed),
  filled by another file in the middle of the run;
- a file-size limit (``RLIMIT_FSIZE``, works anywhere, root or not) switched on in the middle of the run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import prisma_widgets as pw

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOOK = "blocks.1.hook_resid_post"
N = 48

# The run: 48 random images through a 2-block ViT, batch 4. At image FILL_AT (once) the dataset makes the disk
# full: FILL=tmpfs writes a file that takes every free byte, FILL=rlimit caps the process's file size.
SCRIPT = """
import json, os, resource, sys, numpy as np, torch
import prisma_widgets as pw
from prisma_widgets.files import DiskFullError
torch.manual_seed(0)
torch.set_num_threads(1)
model = pw.load("vit_tiny_patch16_224", pretrained=False, depth=2, img_size=64)
images = np.random.RandomState(0).randint(0, 256, (%(n)d, 64, 64, 3), dtype=np.uint8)
path, fill, fill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])

def fill_disk(folder):
    # Unbuffered writes, smaller and smaller, until the kernel refuses a single byte: statvfs's free count is
    # not what a write can take everywhere (huge pages, accounting), and a buffered write that fails keeps
    # its tail in the buffer. Then record whether a new file can still get data.
    fd = os.open(os.path.join(folder, "filler"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    for size in (1 << 20, 1 << 16, 1 << 12, 1):
        while True:
            try:
                if os.write(fd, b"x" * size) < size:
                    break
            except OSError:
                break
    os.close(fd)
    try:
        with open(os.path.join(folder, "probe"), "wb", buffering=0) as fh:
            fh.write(b"x" * 4096)
        room = True
    except OSError:
        room = False
    print("FILLED " + json.dumps({"room_after_filling": room}), file=sys.stderr)  # the disk has no room for it

class Filling(torch.utils.data.Dataset):
    def __len__(self):
        return len(images)
    def __getitem__(self, i):
        if i == fill_at and fill in ("tmpfs", "rlimit"):
            if fill == "tmpfs":
                fill_disk(os.path.dirname(path))
            else:
                resource.setrlimit(resource.RLIMIT_FSIZE, (16, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        return images[i]

if fill == "before":
    resource.setrlimit(resource.RLIMIT_FSIZE, (16, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    pw.cache_activations(model, Filling(), "%(hook)s", path, batch_size=4, dtype="float32", progress=False)
    print(json.dumps({"error": None}))
except DiskFullError as err:
    print(json.dumps({"error": type(err).__name__, "message": str(err)}))
"""


def _run(script, path, fill, fill_at, prefix=()):
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*prefix, sys.executable, str(script), str(path), fill, str(fill_at)], env=env,
                          capture_output=True, text=True, timeout=300)
    return proc


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The script's model and images in this process (same seed, same weights), and the uninterrupted cache."""
    import torch

    torch.manual_seed(0)
    model = pw.load("vit_tiny_patch16_224", pretrained=False, depth=2, img_size=64)
    images = np.random.RandomState(0).randint(0, 256, (N, 64, 64, 3), dtype=np.uint8)

    def cache(path):
        return pw.cache_activations(model, images, HOOK, path, batch_size=4, dtype="float32", progress=False)

    reference = cache(tmp_path_factory.mktemp("reference") / "cache")
    return cache, np.load(os.path.join(reference.path, "activations.npy"))


def _check_after_failure(proc, path, reference):
    assert proc.returncode == 0, f"killed by a signal or crashed: rc={proc.returncode}\n{proc.stderr[-3000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["error"] == "DiskFullError", result
    message = result["message"]
    assert str(path) in message and ("disk is full" in message or "file-size limit" in message), message
    assert "images are written and kept" in message and "run the same pw.cache_activations call again" in message
    store = pw.ActivationStore(path)  # opens: the manifest and the data file agree
    assert 0 < store.images_done < N
    rows = np.load(os.path.join(path, "activations.npy"), mmap_mode="r")
    t = store.tokens_per_image
    for a, b in store.done:  # every row recorded as written is the reference's row
        assert np.array_equal(rows[a * t:b * t], reference[a * t:b * t])
    leftovers = [f for f in os.listdir(path) if ".tmp" in f]
    assert not leftovers, leftovers
    return store.images_done


def _can_mount_tmpfs(tmp_path) -> list[str] | None:
    """The ``unshare`` prefix that gives a private mount namespace here, or None."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return None
    target = tmp_path / "probe-mount"
    target.mkdir()
    for prefix in (["unshare", "--mount", "--propagation", "private"], ["unshare", "-Urm"]):
        # the size must hold: 2 MB into a 1 MB tmpfs is refused
        probe = subprocess.run([*prefix, "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {target} && "
                                f"touch {target}/x && ! head -c 2000000 /dev/zero > {target}/y"],
                               capture_output=True, timeout=30)
        if probe.returncode == 0:
            return prefix
    return None


@pytest.mark.slow
def test_tmpfs_filling_mid_run_is_a_python_error_and_resumes_bit_identically(tmp_path, run):
    prefix = _can_mount_tmpfs(tmp_path)
    if prefix is None:
        pytest.skip("no private mount namespace here (unshare/mount not permitted); the RLIMIT_FSIZE test covers it")
    _, reference = run
    script = tmp_path / "cache.py"
    script.write_text(SCRIPT % {"n": N, "hook": HOOK})
    mount = tmp_path / "small"
    mount.mkdir()
    cache = mount / "cache"
    # one shell in one mount namespace: mount a 2 MB tmpfs, fill it mid-run, free it, run the same call again
    shell = (
        f"mount -t tmpfs -o size=2m tmpfs {mount} && "
        f"{sys.executable} {script} {cache} tmpfs 20 > {tmp_path}/first.json 2> {tmp_path}/first.err; "
        f"echo $? > {tmp_path}/first.rc; "
        f"{sys.executable} -c 'import prisma_widgets as pw; print(pw.ActivationStore(\"{cache}\").images_done)' "
        f"> {tmp_path}/kept.txt; "
        f"ls -a {cache} > {tmp_path}/files.txt; rm -f {mount}/filler {mount}/probe; "
        f"{sys.executable} {script} {cache} none 0 > {tmp_path}/second.json 2> {tmp_path}/second.err; "
        f"cp {cache}/activations.npy {tmp_path}/resumed.npy"
    )
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    subprocess.run([*prefix, "sh", "-c", shell], env=env, timeout=600, check=True)
    filled = [line for line in (tmp_path / "first.err").read_text().splitlines() if line.startswith("FILLED ")]
    assert filled, "the dataset never filled the disk"
    if json.loads(filled[0][len("FILLED "):])["room_after_filling"]:
        pytest.skip("this tmpfs takes new data after a write was refused for lack of room (its size is not "
                    "enforced here); the RLIMIT_FSIZE test covers the full disk")
    rc = int((tmp_path / "first.rc").read_text())
    assert rc == 0, f"the full disk killed the process (rc={rc}): {(tmp_path / 'first.err').read_text()[-3000:]}"
    first = json.loads((tmp_path / "first.json").read_text().strip().splitlines()[-1])
    assert first["error"] == "DiskFullError" and "disk is full" in first["message"], first
    assert "Free some space" in first["message"] and str(cache) in first["message"]
    kept = int((tmp_path / "kept.txt").read_text())
    assert 0 < kept < N, kept
    assert not [f for f in (tmp_path / "files.txt").read_text().split() if ".tmp" in f]
    second = json.loads((tmp_path / "second.json").read_text().strip().splitlines()[-1])
    assert second["error"] is None, (tmp_path / "second.err").read_text()[-3000:]
    assert np.array_equal(np.load(tmp_path / "resumed.npy"), reference)


@pytest.mark.slow
def test_file_size_limit_mid_run_is_a_python_error_and_resumes_bit_identically(tmp_path, run):
    cache, reference = run
    script = tmp_path / "cache.py"
    script.write_text(SCRIPT % {"n": N, "hook": HOOK})
    path = tmp_path / "limited"
    proc = _run(script, path, "rlimit", 20)
    kept = _check_after_failure(proc, path, reference)  # some batches before the limit are kept, all intact
    # resumed while the disk is still full: the manifest update fails cleanly too, and loses nothing
    assert list(path.glob("progress.rank0.json"))  # the run's record, not yet folded into the manifest
    again = _run(script, path, "before", 0)
    assert again.returncode == 0, again.stderr[-3000:]
    result = json.loads(again.stdout.strip().splitlines()[-1])
    assert result["error"] == "DiskFullError" and f"{kept} of {N} images are written and kept" in result["message"]
    assert not [f for f in os.listdir(path) if ".tmp" in f] and pw.ActivationStore(path).images_done == kept
    # room again: the same call (here, in this process) finishes; the file is the uninterrupted run's
    assert cache(path).complete
    assert np.array_equal(np.load(path / "activations.npy"), reference)
    assert not [f for f in os.listdir(path) if ".tmp" in f or f.startswith("progress")]


@pytest.mark.slow
def test_no_room_for_the_file_at_all_leaves_nothing_behind(tmp_path, run):
    script = tmp_path / "cache.py"
    script.write_text(SCRIPT % {"n": N, "hook": HOOK})
    path = tmp_path / "none"
    proc = _run(script, path, "before", 0)  # the limit is on before the call: the file cannot be made
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["error"] == "DiskFullError" and "file-size limit" in result["message"], result
    assert "Free some space" in result["message"]
    assert os.listdir(path) == []  # no half-made activations.npy, no manifest, no temporary file
    cache, reference = run  # the same call with room makes the cache
    assert cache(path).complete and np.array_equal(np.load(path / "activations.npy"), reference)
