"""``pw.cache_activations``: run images through a model and write one hook's activations to disk, resumably.

The folder layout is :mod:`prisma_widgets.sae.store`'s. Rows are written as batches finish and recorded in a
per-process progress file only after they are flushed, so a run stopped at any moment (Ctrl-C, a crash,
``kill -9``) resumes from exactly what was safely written. Under ``torchrun`` every process writes its share
of the batches into the same memory-mapped file, and rank 0 folds their records into the manifest.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TYPE_CHECKING

import numpy as np
import torch

from ..files import atomic_write_json
from ..hooked.capture import capture, check_token_mode, hook_width, token_rows, tokens_per_image
from .distributed import barrier, rank_and_world
from .source import ImageSource, as_image_source
from .store import DATA, DTYPES, FORMAT, MANIFEST, PROGRESS_FILES, ActivationStore, count_ranges, merge_ranges

if TYPE_CHECKING:
    from ..hooked.model import HookedViT

# Settings that decide what the cache holds; a mismatch on resume is refused.
_SETTINGS = ("model", "model_fingerprint", "hook", "tokens", "dtype", "d", "tokens_per_image", "n_images", "image_ids")


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def model_fingerprint(model: HookedViT) -> str:
    """A cheap id of the weights: name, shapes and a strided sample of every parameter."""
    h = hashlib.sha1(str(getattr(model, "name", "")).encode())
    with torch.no_grad():
        for name, p in model.named_parameters():
            flat = p.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // 16)][:16].float().cpu().numpy()
            h.update(name.encode() + str(tuple(p.shape)).encode() + sample.tobytes())
    return h.hexdigest()[:16]


def _settings(model: HookedViT, hook: str, tokens: str, dtype: str, d: int, t: int, source: ImageSource) -> dict[str, Any]:
    return {
        "model": getattr(model, "name", None),
        "model_fingerprint": model_fingerprint(model),
        "hook": hook,
        "tokens": tokens,
        "dtype": dtype,
        "d": d,
        "tokens_per_image": t,
        "n_images": len(source),
        "image_ids": source.ids(),
    }


def _refuse_mismatch(path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    for key in _SETTINGS:
        if old.get(key) != new.get(key):
            a, b = old.get(key), new.get(key)
            if key == "image_ids":
                a, b = "(other images)", "(these images)"
            if key == "model_fingerprint":
                a, b = "(other weights)", "(these weights)"
            raise ValueError(
                f"the activation cache at {path!r} was made with {key}={a!r}, but this call asks for {key}={b!r}. "
                f"Pass the same {key} to reuse it, choose another path to keep both, "
                "or pass overwrite=True to rebuild it."
            )


def cache_activations(
    model: HookedViT,
    images: Any,
    hook: str,
    path: str,
    tokens: str = "all",
    dtype: str = "float16",
    batch_size: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    prefetch: bool = True,
) -> ActivationStore:
    """Run ``images`` through ``model`` and write the activations at ``hook`` to ``path``; returns the store.

    Resumable: rerunning the same call after an interruption continues where it stopped, a finished cache is
    reused, a cache made with other settings is refused. Under ``torchrun`` each process writes its own
    share of the rows into the same file and the manifests merge.

    Example:
        >>> import tempfile
        >>> import prisma_widgets as pw
        >>> model = pw.load("mouse-vit")
        >>> images, labels = pw.zoo.shapes(6, seed=0)
        >>> folder = tempfile.TemporaryDirectory()
        >>> store = pw.cache_activations(model, images, "blocks.1.hook_resid_post", folder.name,
        ...                              tokens="patches", progress=False)
        >>> store.shape, store.complete        # 6 images x 64 patches, d_model 128
        ((384, 128), True)
        >>> store.row_to_image([70])           # row 70 is patch 6 of image 1
        (array([1]), array([6]))
    """
    check_token_mode(tokens)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(map(repr, DTYPES))}; got {dtype!r}")
    rank, world = rank_and_world()
    source = as_image_source(images)
    t = tokens_per_image(model, tokens)
    d = hook_width(model, hook)
    settings = _settings(model, hook, tokens, dtype, d, t, source)
    path = os.fspath(path)
    manifest_path = os.path.join(path, MANIFEST)
    data_path = os.path.join(path, DATA)
    n = len(source)
    itemsize = np.dtype(DTYPES[dtype]).itemsize
    total_bytes = n * t * d * itemsize

    # ---- rank 0 prepares (or checks) the folder; the others wait
    error: BaseException | None = None
    if rank == 0:
        try:
            if overwrite and os.path.exists(manifest_path):
                for p in [manifest_path, data_path, *glob.glob(os.path.join(path, PROGRESS_FILES))]:
                    if os.path.exists(p):
                        os.remove(p)
            if os.path.exists(manifest_path):
                with open(manifest_path) as fh:
                    old = json.load(fh)
                if old.get("format") != FORMAT:
                    raise ValueError(f"{manifest_path} is not an activation-cache manifest")
                _refuse_mismatch(path, old, settings)
                merge_progress(path)  # live progress files from a stopped run become one record
                store = ActivationStore(path)
                remaining = (n - store.images_done) * t * d * itemsize
            else:
                remaining = total_bytes
            if remaining > 0:
                os.makedirs(path, exist_ok=True)
                free = shutil.disk_usage(path).free
                if progress:
                    print(
                        f"caching {n} images x {t} tokens x {d} ({dtype}) at {hook}: {_human(total_bytes)} in all, "
                        f"{_human(remaining)} to write to {path} ({_human(free)} free)"
                    )
                if remaining > free:
                    raise OSError(
                        f"not enough disk space at {path!r}: this cache needs {_human(remaining)} more but only "
                        f"{_human(free)} is free. Free some space, choose a path on a larger disk, or cache less "
                        f"(tokens='cls' or 'patches', dtype='float16', fewer images)."
                    )
            if not os.path.exists(manifest_path):
                mm = np.lib.format.open_memmap(data_path, mode="w+", dtype=DTYPES[dtype], shape=(n * t, d))
                del mm
                manifest = {
                    "format": FORMAT, "version": 1, **settings, "shape": [n * t, d],
                    "source": source.kind, "root": os.path.abspath(source.root) if source.root else None,
                    "batch_size": batch_size, "done": [], "rows_written": 0, "complete": False,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                }
                atomic_write_json(manifest_path, manifest)
        except BaseException as err:  # noqa: BLE001 - re-raised below, after telling the other ranks
            error = err
    if world > 1:
        import torch.distributed as dist

        flag = [error is not None]
        dist.broadcast_object_list(flag, src=0)
        if flag[0]:
            if error is not None:
                raise error
            raise RuntimeError("rank 0 could not prepare the activation cache; see its error")
    elif error is not None:
        raise error

    store = ActivationStore(path, images=source)
    if batch_size is None:
        batch_size = store.manifest.get("batch_size") or (256 if model.device.type == "cuda" else 32)
    if store.complete:
        return store

    # ---- the batches still to do: aligned to absolute multiples of batch_size, split into contiguous runs per rank
    done = store.done
    pending: list[tuple[int, int]] = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        covered = sum(max(0, min(b, stop) - max(a, start)) for a, b in done)
        if covered < stop - start:
            # partial coverage can only come from a different batch size; redo the uncovered pieces
            pieces = [(start, stop)]
            for a, b in done:
                pieces = [q for (s, e) in pieces for q in ((s, min(e, a)), (max(s, b), e)) if q[1] > q[0]]
            pending += pieces
    share = [pending[i * len(pending) // world:(i + 1) * len(pending) // world] for i in range(world)]
    mine = share[rank]

    mm = np.load(data_path, mmap_mode="r+")
    progress_path = os.path.join(path, f"progress.rank{rank}.json")
    my_done: list[list[int]] = []

    def record() -> None:  # rows first, then the claim that they are there
        mm.flush()
        atomic_write_json(progress_path, {"rank": rank, "done": merge_ranges(my_done)})

    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, initial=count_ranges(done), unit="img", desc="caching", dynamic_ncols=True)
    written = [0]
    pool = ThreadPoolExecutor(max_workers=1) if prefetch else None  # reads and preprocesses the next batch
    writer = ThreadPoolExecutor(max_workers=1)  # copies to the host and writes, while the next forward runs
    pending: list[Any] = []
    np_dtype = torch.float32 if dtype == "float32" else torch.float16

    def load(piece: tuple[int, int]) -> torch.Tensor:
        return source.pixels(model, *piece)

    def write(acts: torch.Tensor, start: int, stop: int) -> None:  # one thread, so batches land in order
        rows = acts.cpu().numpy()
        mm[start * t:stop * t] = rows
        my_done.append([start, stop])
        record()
        written[0] += rows.nbytes
        if bar is not None:
            bar.update((stop - start) * world)
            bar.set_postfix_str(f"{_human(written[0] * world)} written", refresh=False)

    try:
        with torch.inference_mode():
            future = pool.submit(load, mine[0]) if (pool and mine) else None
            for j, (start, stop) in enumerate(mine):
                pixels = future.result() if future is not None else load((start, stop))
                future = pool.submit(load, mine[j + 1]) if (pool and j + 1 < len(mine)) else None
                acts = token_rows(model, capture(model, pixels, hook), hook, tokens)
                acts = acts.reshape(-1, d).to(np_dtype)  # on the model's device: a smaller copy to the host
                while len(pending) >= 2:  # bounded: at most two batches in flight
                    pending.pop(0).result()
                pending.append(writer.submit(write, acts, start, stop))
            for fut in pending:
                fut.result()
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        writer.shutdown(wait=True)  # batches already computed are still written and recorded
        if bar is not None:
            bar.close()
        mm.flush()
        del mm
        if world == 1:  # finished or interrupted: fold the progress into the manifest
            merge_progress(path)

    # ---- merge the manifests
    if world > 1:
        barrier()
        if rank == 0:
            merge_progress(path)
        barrier()
    store.reload()
    return store


def merge_progress(path: str) -> None:
    """Fold every ``progress.rank*.json`` into ``manifest.json`` (atomically), then remove them."""
    merged = ActivationStore(path)
    manifest = dict(merged.manifest)
    manifest["done"] = merged.done
    manifest["rows_written"] = merged.rows_written
    manifest["complete"] = merged.complete
    atomic_write_json(os.path.join(path, MANIFEST), manifest)
    for p in glob.glob(os.path.join(path, PROGRESS_FILES)):
        os.remove(p)
