"""Damaged files of every kind we read, read-only destinations, leftover temporary files, and loading without a
network: each gets an error that names the file (or the place) and the fix, and a rerun of the same call repairs
what can be repaired, saying what it could not keep.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import torch

import prisma_widgets as pw
from prisma_widgets.files import DamagedFileError, DiskFullError, write_error
from prisma_widgets.zoo import registry

HOOK = "blocks.1.hook_resid_post"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mouse():
    return pw.load("mouse-vit")


@pytest.fixture(scope="module")
def images():
    return pw.zoo.shapes(6, seed=0)[0]


@pytest.fixture(scope="module")
def clean(mouse, images, tmp_path_factory):
    """A complete cache of the six images, its rows, and a saved SAE."""
    folder = tmp_path_factory.mktemp("clean")
    store = pw.cache_activations(mouse, images, HOOK, folder / "cache", tokens="patches", batch_size=2, progress=False)
    sae = pw.SAE(d_in=128, d_sae=32, k=4, hook=HOOK)
    sae.save(folder / "sae")
    return store, np.load(os.path.join(store.path, "activations.npy")), folder


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _damage(path, how):
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "empty": b"", "random": os.urandom(4096),
                      "head": data[:20]}[how])


# ---------------------------------------------------------------- SAE files
@pytest.mark.parametrize("how", ["truncate", "empty", "random", "head"])
def test_damaged_sae_weights(clean, tmp_path, how):
    folder = _copy(clean[2] / "sae", tmp_path / "sae")
    _damage(folder / "sae_weights.safetensors", how)
    with pytest.raises(DamagedFileError) as info:
        pw.SAE.load(folder)
    message = str(info.value)
    assert str(folder / "sae_weights.safetensors") in message and "cannot be read as safetensors" in message
    assert "Save the SAE again (sae.save(folder))" in message


@pytest.mark.parametrize("content, problem", [
    ('{"d_in": 128, "d_sae"', "not valid JSON"),
    ("", "not valid JSON"),
    ("[1, 2]", "holds a list, not an SAE config"),
    ('{"d_in": "wide", "d_sae": 32}', "d_in='wide' is not a width"),
    ('{"d_in": 128, "d_sae": 32, "activation_fn_kwargs": {"k": 64}}', "k=64 is larger than d_sae=32"),
])
def test_damaged_sae_config(clean, tmp_path, content, problem):
    folder = _copy(clean[2] / "sae", tmp_path / "sae")
    (folder / "cfg.json").write_text(content)
    with pytest.raises(DamagedFileError) as info:
        pw.SAE.load(folder)
    assert str(folder / "cfg.json") in str(info.value) and problem in str(info.value)
    assert "Save the SAE again" in str(info.value)


def test_sae_weights_with_nan_are_refused(clean, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = _copy(clean[2] / "sae", tmp_path / "sae")
    tensors = load_file(folder / "sae_weights.safetensors")
    tensors["W_dec"][3, 5] = float("nan")
    save_file(tensors, folder / "sae_weights.safetensors")
    with pytest.raises(DamagedFileError, match=r"W_dec in .*sae_weights\.safetensors holds 1 non-finite value "
                                               r"\(1 NaN, 0 inf\), the first at index \(3, 5\); SAE weights must be"):
        pw.SAE.load(folder)


# ---------------------------------------------------------------- the activation store
def test_truncated_data_file_is_refused_then_repaired(mouse, images, clean, tmp_path):
    store, rows, _ = clean
    path = _copy(store.path, tmp_path / "cache")
    data = path / "activations.npy"
    os.truncate(data, os.path.getsize(data) - 3 * 64 * 128 * 2 - 100)  # cuts into image 2's rows
    with pytest.raises(DamagedFileError, match=r"activations\.npy does not match the cache's manifest: it is "
                                               r"truncated: \d+ bytes of \d+\. Run the same pw\.cache_activations"):
        pw.ActivationStore(path)
    with pytest.warns(UserWarning, match=r"was truncated .*the rows of 4 finished image\(s\) were cut off and are "
                                         r"computed again"):
        repaired = pw.cache_activations(mouse, images, HOOK, path, tokens="patches", batch_size=2, progress=False)
    assert repaired.complete and np.array_equal(np.load(data), rows)


def test_truncated_manifest_is_refused_then_rebuilt(mouse, images, clean, tmp_path):
    store, rows, _ = clean
    path = _copy(store.path, tmp_path / "cache")
    (path / "manifest.json").write_text((path / "manifest.json").read_text()[:40])
    with pytest.raises(DamagedFileError, match=r"manifest\.json is damaged: the cache's manifest is not valid JSON "
                                               r".*Run the same pw\.cache_activations call again"):
        pw.ActivationStore(path)
    with pytest.warns(UserWarning, match=r"record of which rows were written is lost, so the cache is rebuilt"):
        rebuilt = pw.cache_activations(mouse, images, HOOK, path, tokens="patches", batch_size=2, progress=False)
    assert rebuilt.complete and np.array_equal(np.load(path / "activations.npy"), rows)


@pytest.mark.parametrize("edit, problem", [
    ({"shape": [100, 128]}, r"its shape says 100 rows, but 6 images x 64 tokens are 384 rows"),
    ({"done": [[0, 99]]}, r"its record of finished images \[\[0, 99\]\] does not fit 6 images"),
    ({"n_images": "six"}, r"its 'n_images' is 'six'"),
])
def test_manifest_that_disagrees_is_refused_then_repaired(mouse, images, clean, tmp_path, edit, problem):
    store, rows, _ = clean
    path = _copy(store.path, tmp_path / "cache")
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, **edit}))
    with pytest.raises(DamagedFileError, match=problem + r"\. Run the same pw\.cache_activations call again"):
        pw.ActivationStore(path)
    with pytest.warns(UserWarning, match="repaired the activation cache"):
        again = pw.cache_activations(mouse, images, HOOK, path, tokens="patches", batch_size=2, progress=False)
    assert again.complete and np.array_equal(np.load(path / "activations.npy"), rows)


def test_data_file_of_another_shape_is_rebuilt(mouse, images, clean, tmp_path):
    store, rows, _ = clean
    path = _copy(store.path, tmp_path / "cache")
    np.save(path / "activations.npy", np.zeros((10, 3), np.float16))
    with pytest.raises(DamagedFileError, match=r"its header says \[10, 3\] float16, but the manifest says \[384, 128\]"):
        pw.ActivationStore(path)
    with pytest.warns(UserWarning, match=r"it is rebuilt, and the 6 image\(s\) recorded as written are computed again"):
        again = pw.cache_activations(mouse, images, HOOK, path, tokens="patches", batch_size=2, progress=False)
    assert again.complete and np.array_equal(np.load(path / "activations.npy"), rows)


def test_damaged_progress_record_and_stale_temp_files(mouse, images, clean, tmp_path):
    store, rows, _ = clean
    path = _copy(store.path, tmp_path / "cache")
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "done": [[0, 2]], "complete": False}))
    (path / "progress.rank0.json").write_text('{"rank": 0, "done": [[2, ')  # a torn record
    (path / "manifest.json.tmp4242").write_text("{")  # what a killed write leaves
    (path / ".tmpAb12Cd").write_bytes(b"\0" * 10)
    with pytest.warns(UserWarning, match=r"progress\.rank0\.json was damaged: the images it recorded are computed"):
        again = pw.cache_activations(mouse, images, HOOK, path, tokens="patches", batch_size=2, progress=False)
    assert again.complete and np.array_equal(np.load(path / "activations.npy"), rows)
    assert sorted(os.listdir(path)) == ["activations.npy", "manifest.json"]


def test_a_manifest_that_is_not_ours_is_left_alone(mouse, images, tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"name": "my photos"}')
    with pytest.raises(ValueError, match=r"is not an activation-cache manifest .*choose another path, or pass "
                                         r"overwrite=True"):
        pw.cache_activations(mouse, images, HOOK, folder, progress=False)
    (folder / "manifest.json").write_text('{"name": "my pho')
    with pytest.raises(DamagedFileError, match=r"not next to an activations\.npy, so it may not be an activation cache"):
        pw.cache_activations(mouse, images, HOOK, folder, progress=False)
    assert sorted(os.listdir(folder)) == ["manifest.json"]


def test_inf_activations_in_a_float16_cache_are_refused(tmp_path):
    torch.manual_seed(0)
    model = pw.load("vit_tiny_patch16_224", pretrained=False, depth=2, img_size=64)
    with torch.no_grad():
        model.model.blocks[0].mlp.fc2.bias.fill_(1e5)  # beyond float16's 65504
    with pytest.raises(ValueError, match=r"activations at blocks\.1\.hook_resid_post of images 0\.\.1 holds \d+ "
                                         r"non-finite values .*cache with dtype='float32'"):
        pw.cache_activations(model, pw.zoo.shapes(2)[0], HOOK, tmp_path / "c", progress=False)
    assert pw.cache_activations(model, pw.zoo.shapes(2)[0], HOOK, tmp_path / "c32", dtype="float32",
                                progress=False).complete


# ---------------------------------------------------------------- checkpoints
@pytest.fixture
def checkpointed(tmp_path):
    x = torch.randn(400, 8, generator=torch.Generator().manual_seed(0))
    kwargs = dict(expansion=2, k=2, batch_size=64, steps=6, checkpoint_every=2, progress=False)
    sae = pw.train_sae(x, checkpoint_dir=tmp_path / "run", **kwargs)
    return x, kwargs, sae, tmp_path / "run"


@pytest.mark.parametrize("how", ["truncate", "empty", "random"])
def test_damaged_checkpoint(checkpointed, how):
    x, kwargs, _, run = checkpointed
    shutil.rmtree(run / "sae")  # unfinished: the next call resumes from the checkpoint
    _damage(run / "checkpoint.safetensors", how)
    with pytest.raises(DamagedFileError) as info:
        pw.train_sae(x, checkpoint_dir=run, **kwargs)
    message = str(info.value)
    assert str(run / "checkpoint.safetensors") in message and "is damaged" in message
    assert "Delete it (and checkpoint.json next to it) to train from the start" in message


def test_checkpoint_state_damaged_and_temp_files_cleared(checkpointed):
    from safetensors.torch import load_file, save_file

    x, kwargs, sae, run = checkpointed
    shutil.rmtree(run / "sae")
    (run / ".tmpXy12Zw").write_bytes(b"\0")  # safetensors' own temp file, left by a kill
    (run / "checkpoint.safetensors.tmp777").write_bytes(b"\0")
    tensors = load_file(run / "checkpoint.safetensors")
    save_file(tensors, run / "checkpoint.safetensors", metadata={"state": "{not json"})
    with pytest.raises(DamagedFileError, match=r"its run state is missing or unreadable"):
        pw.train_sae(x, checkpoint_dir=run, **kwargs)
    assert not [f for f in os.listdir(run) if ".tmp" in f]


def test_damaged_final_sae_is_written_again_from_the_checkpoint(checkpointed):
    x, kwargs, sae, run = checkpointed
    (run / "sae" / "sae_weights.safetensors").write_bytes(b"")
    with pytest.warns(UserWarning, match=r"is damaged.*written again from the run's final checkpoint"):
        again = pw.train_sae(x, checkpoint_dir=run, **kwargs)
    assert torch.equal(again.W_dec, sae.W_dec) and torch.equal(pw.SAE.load(run / "sae").W_enc, sae.W_enc)


# ---------------------------------------------------------------- feature statistics, zoo weights
@pytest.fixture(scope="module")
def stats_folder(mouse, images, tmp_path_factory):
    sae = pw.SAE(d_in=128, d_sae=16, k=2, hook="blocks.3.hook_resid_post")
    return pw.feature_stats(mouse, sae, images).save(tmp_path_factory.mktemp("stats") / "s")


@pytest.mark.parametrize("damage, problem", [
    (lambda f: _damage(f / "stats.json", "truncate"), r"stats\.json is damaged: feature statistics is not valid JSON"),
    (lambda f: _damage(f / "stats.safetensors", "truncate"), r"stats\.safetensors is damaged: .*cannot be read"),
    (lambda f: _damage(f / "stats.safetensors", "empty"), r"stats\.safetensors is damaged"),
    (lambda f: (f / "stats.json").write_text('{"format": "other"}'), r"does not hold feature statistics"),
    (lambda f: (f / "stats.json").write_text(json.dumps({**json.loads((f / "stats.json").read_text()),
                                                         "n_images": 2})), r"top_images refers to image 5, outside 0\.\.1"),
])
def test_damaged_feature_stats(stats_folder, tmp_path, damage, problem):
    folder = _copy(stats_folder, tmp_path / "s")
    damage(folder)
    with pytest.raises(DamagedFileError, match=problem + r".*Compute them again"):
        pw.FeatureStats.load(folder)


def test_feature_stats_arrays_that_disagree_or_hold_nan(stats_folder, tmp_path):
    from safetensors.numpy import load_file, save_file

    folder = _copy(stats_folder, tmp_path / "s")
    arrays = load_file(folder / "stats.safetensors")
    save_file({**arrays, "top_values": arrays["top_values"][:3]}, folder / "stats.safetensors")
    with pytest.raises(DamagedFileError, match=r"top_values has shape \[3, 8\], where the other arrays say \[16, 8\]"):
        pw.FeatureStats.load(folder)
    save_file({**arrays, "frequency": np.full_like(arrays["frequency"], np.nan)}, folder / "stats.safetensors")
    with pytest.raises(DamagedFileError, match=r"frequency in .* holds 16 non-finite values .*Compute them again"):
        pw.FeatureStats.load(folder)
    with pytest.raises(FileNotFoundError, match=r"no stats\.json in .*written by FeatureStats\.save"):
        pw.FeatureStats.load(tmp_path / "nothing")


def test_zoo_weights_truncated_or_nan(tmp_path):
    path = tmp_path / "mouse-vit.safetensors"
    shutil.copy(registry.weights_path("mouse-vit"), path)
    _damage(path, "truncate")
    with pytest.raises(registry.WeightsError, match=r"cannot read weights file .*truncated or corrupt; reinstall"):
        registry.build("mouse-vit", weights=path)
    from safetensors.torch import load_file, save_file

    state = load_file(registry.weights_path("mouse-vit"))
    state["head.weight"][0, 0] = float("inf")
    save_file(state, path)
    with pytest.raises(registry.WeightsError, match=r"holds NaN or inf in head\.weight.*reinstall prisma_widgets or "
                                                    r"retrain"):
        registry.build("mouse-vit", weights=path)


# ---------------------------------------------------------------- read-only places and write errors
@contextlib.contextmanager
def read_only_folder():
    """A folder this process cannot write to. As root, permissions do not bind, so the check runs as 'nobody'."""
    base = tempfile.mkdtemp()
    os.chmod(base, 0o755)
    folder = os.path.join(base, "locked")
    os.mkdir(folder, 0o555)
    os.chmod(folder, 0o555)
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    try:
        if root:
            os.seteuid(65534)
        yield folder
    finally:
        if root:
            os.seteuid(0)
        os.chmod(folder, 0o755)
        shutil.rmtree(base)


@pytest.mark.parametrize("write", ["cache", "sae", "stats", "checkpoints", "html"])
def test_read_only_destination_names_the_place_and_the_fix(mouse, images, write):
    sae = pw.SAE(d_in=128, d_sae=16, k=2, hook="blocks.3.hook_resid_post")
    stats = pw.feature_stats(mouse, sae, images[:2]) if write == "stats" else None
    widget = pw.AttentionGrid(mouse, images[0], layers=[0]) if write == "html" else None
    with read_only_folder() as folder:
        target = os.path.join(folder, "out")
        with pytest.raises(PermissionError) as info:
            if write == "cache":
                pw.cache_activations(mouse, images, HOOK, target, progress=False)
            elif write == "sae":
                sae.save(target)
            elif write == "stats":
                stats.save(target)
            elif write == "checkpoints":
                pw.train_sae(torch.randn(64, 8), steps=1, batch_size=32, checkpoint_dir=target, progress=False)
            else:
                widget.save_html(os.path.join(folder, "page.html"))
        message = str(info.value)
        assert folder in message and "read-only or not writable" in message, message
        assert "Choose a folder you can write to" in message
        assert os.listdir(folder) == []


def test_write_errors_are_mapped():
    full = write_error(OSError(errno.ENOSPC, "No space left on device"), "/data/x.json", "a record")
    assert isinstance(full, DiskFullError) and "the disk is full" in str(full) and "Free some space" in str(full)
    limit = write_error(OSError(errno.EFBIG, "File too large"), "/data/x.json", "a record")
    assert isinstance(limit, DiskFullError) and "file-size limit (ulimit -f)" in str(limit)
    ro = write_error(OSError(errno.EROFS, "Read-only file system"), "/mnt/ro/x.json", "a record")
    assert isinstance(ro, PermissionError) and "'/mnt/ro' is read-only" in str(ro) and "Choose a folder" in str(ro)
    other = OSError(errno.EIO, "I/O error")
    assert write_error(other, "/x", "a record") is other


def test_save_html_to_a_folder_or_nowhere(mouse, images, tmp_path):
    widget = pw.AttentionGrid(mouse, images[0], layers=[0])
    with pytest.raises(IsADirectoryError, match=r"is a folder; pass the path of the HTML file to write"):
        widget.save_html(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no folder .*missing.* create it first"):
        widget.save_html(tmp_path / "missing" / "page.html")


# ---------------------------------------------------------------- no network
PROBE = """
import json, sys, time, warnings
import prisma_widgets as pw
pw.load("mouse-vit")
start = time.monotonic()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model = pw.load("vit_tiny_patch16_224", fallback="mouse-vit")
print(json.dumps({"seconds": time.monotonic() - start, "name": model.name, "notice": model.notice,
                  "warned": any("Offline" in str(w.message) for w in caught)}))
"""


@pytest.mark.slow
def test_load_with_fallback_and_no_network_falls_back_in_seconds(tmp_path):
    import socket
    import threading

    silent = socket.socket()  # accepts connections, never answers: the worst case for a hub client
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    accepted = []

    def hold() -> None:
        with contextlib.suppress(OSError):  # the socket closes at the end of the test
            while True:
                accepted.append(silent.accept()[0])

    threading.Thread(target=hold, daemon=True).start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connections are refused
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "PRISMA_WIDGETS_OFFLINE")}
    env.update(PYTHONPATH=REPO, HF_HOME=str(tmp_path / "hf"), OMP_NUM_THREADS="1")
    for endpoint in (f"http://127.0.0.1:{silent.getsockname()[1]}", f"http://127.0.0.1:{closed_port}"):
        proc = subprocess.run([sys.executable, str(script)], env={**env, "HF_ENDPOINT": endpoint},
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["name"] == "mouse-vit" and result["warned"], result
        assert f"the model hub ({endpoint}) did not answer within 3 s" in result["notice"]
        assert "PRISMA_WIDGETS_OFFLINE=1" in result["notice"]
        # one 3 s probe, then the local cache only: seconds, where the hub client alone retried for minutes
        assert result["seconds"] < 15, result
    silent.close()
    for conn in accepted:
        conn.close()



HUB_NAMES = """
import json, sys, time, warnings
import prisma_widgets as pw
from prisma_widgets.hooked.coverage import catalog
out = {}
for key, call in [("hf", lambda: pw.load("hf:openai/clip-vit-base-patch32", fallback="mouse-vit")),
                  ("open_clip hf-hub", lambda: pw.load("open_clip:hf-hub:timm/ViT-B-16-SigLIP", fallback="mouse-vit")),
                  ("hf config", lambda: pw.load("hf:facebook/dinov2-small", pretrained=False)),
                  ("tokenizer", lambda: pw.HookedViT(catalog.open_clip_small("ViT-B-16-SigLIP", image_size=32),
                                                     name="open_clip:ViT-B-16-SigLIP").tokenizer)]:
    start = time.monotonic()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        try:
            result = "loaded " + str(getattr(call(), "name", ""))
        except Exception as err:
            result = type(err).__name__ + ": " + str(err)
    out[key] = [time.monotonic() - start, result]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_hugging_face_names_without_network_fall_back_in_seconds(tmp_path):
    """hf: repositories, open_clip hf-hub: names and Hugging Face tokenizers: one short probe, then the local
    cache only (before: a minute and more of the hub client's retries for each)."""
    closed = __import__("socket").socket()
    closed.bind(("127.0.0.1", 0))
    endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()  # nothing listens there
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "PRISMA_WIDGETS_OFFLINE")}
    env.update(PYTHONPATH=REPO, HF_HOME=str(tmp_path / "hf"), OMP_NUM_THREADS="1", HF_ENDPOINT=endpoint)
    proc = subprocess.run([sys.executable, "-c", HUB_NAMES], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["hf"][1] == out["open_clip hf-hub"][1] == "loaded mouse-vit", out
    assert out["hf config"][1].startswith("OfflineError: could not fetch the configuration of 'hf:facebook/dinov2-small'")
    assert "Hugging Face tokenizer that could not be loaded" in out["tokenizer"][1], out
    assert all(seconds < 15 for seconds, _ in out.values()), out


def _tiny_hf_folder(folder: pathlib.Path) -> pathlib.Path:
    from prisma_widgets.hooked.coverage import catalog

    torch.manual_seed(0)
    catalog.hf_builders()["ViTForImageClassification"]().save_pretrained(folder)
    return folder


def test_hugging_face_model_folders_name_the_damaged_file(tmp_path):
    good = _tiny_hf_folder(tmp_path / "good")
    assert pw.load(f"hf:{good}").cfg.n_classes == 7

    def variant(name, change):
        folder = tmp_path / name
        shutil.copytree(good, folder)
        change(folder)
        return f"hf:{folder}"

    half = lambda f: f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])  # noqa: E731
    cases = [
        (variant("config", lambda d: half(d / "config.json")), DamagedFileError, r"config\.json is damaged: the "
         r"model's configuration is not valid JSON", r"model\.save_pretrained"),
        (variant("weights", lambda d: half(d / "model.safetensors")), DamagedFileError, r"model\.safetensors is "
         r"damaged: a weights file of this model cannot be read as safetensors", r"download it again"),
        (variant("empty", lambda d: (d / "model.safetensors").write_bytes(b"")), DamagedFileError, r"0 bytes", r"again"),
        (variant("no-weights", lambda d: (d / "model.safetensors").unlink()), FileNotFoundError,
         r"holds a configuration but no weights", r"pretrained=False for random weights"),
        (variant("no-config", lambda d: (d / "config.json").unlink()), FileNotFoundError, r"holds no config\.json",
         r"model\.save_pretrained\(folder\) holds config\.json"),
    ]
    for name, kind, problem, fix in cases:
        with pytest.raises(kind, match=problem) as info:
            pw.load(name)
        assert re.search(fix, str(info.value)), str(info.value)
    assert pw.load(cases[1][0], pretrained=False).cfg.n_layers == 2  # random weights never read the weights file


def test_a_damaged_download_in_the_hub_cache_is_named(tmp_path, monkeypatch):
    from huggingface_hub import constants

    good = _tiny_hf_folder(tmp_path / "good")
    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    for repo, files in {"user/tiny": ("config.json", "model.safetensors"),
                        "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k": ("model.safetensors",)}.items():
        root = cache / f"models--{repo.replace('/', '--')}"
        (root / "snapshots" / "abc").mkdir(parents=True)
        (root / "refs").mkdir()
        (root / "refs" / "main").write_text("abc")
        for name in files:
            data = (good / name).read_bytes()
            (root / "snapshots" / "abc" / name).write_bytes(data if name.endswith(".json") else data[:1000])
    for name in ("hf:user/tiny", "vit_tiny_patch16_224.augreg_in21k_ft_in1k"):
        with pytest.raises(DamagedFileError, match=rf"a downloaded file of '{re.escape(name)}' is damaged "
                                                   r"\(SafetensorError.*Delete the local copy .*load it again online"):
            pw.load(name)


def test_a_finished_cache_in_a_read_only_folder_is_reused(mouse, images, clean):
    """A shared, finished cache on a read-only disk is reused as it is: nothing to write, so nothing written."""
    store, rows, _ = clean
    base = tempfile.mkdtemp()
    os.chmod(base, 0o755)
    path = _copy(store.path, os.path.join(base, "shared"))
    os.chmod(path, 0o555)
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    try:
        if root:
            os.seteuid(65534)
        again = pw.cache_activations(mouse, images, HOOK, path, tokens="patches", batch_size=2, progress=False)
    finally:
        if root:
            os.seteuid(0)
        os.chmod(path, 0o755)
    assert again.complete and np.array_equal(again.to_tensor(torch.float16).numpy(), rows)
    shutil.rmtree(base)


def test_an_unreadable_cache_says_read_not_write(clean):
    store, _, _ = clean
    base = tempfile.mkdtemp()
    os.chmod(base, 0o755)
    path = _copy(store.path, pathlib.Path(base) / "private")
    os.chmod(path / "manifest.json", 0o000)
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    try:
        if root:
            os.seteuid(65534)
        with pytest.raises(PermissionError, match=r"cannot read the cache's manifest at .*manifest\.json.*: permission "
                                                  r"denied for this user\. Change its permissions"):
            pw.ActivationStore(path)
    finally:
        if root:
            os.seteuid(0)
        shutil.rmtree(base)
