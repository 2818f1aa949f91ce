"""``pw.cache_activations``: run images through a model and write one hook's activations (or several hooks',
captured in one forward pass, side by side in each row) to disk, resumably.

The folder layout is :mod:`prisma_widgets.sae.store`'s. Rows are written as batches finish and recorded in a
per-process progress file only after they are flushed, so a run stopped at any moment (Ctrl-C, a crash,
``kill -9``) resumes from exactly what was safely written. Under ``torchrun`` every process writes its share
of the batches into the same memory-mapped file, and rank 0 folds their records into the manifest.
"""

from __future__ import annotations

import glob
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TYPE_CHECKING

import numpy as np
import torch

from ..files import atomic_write_json, write_error
from ..hooked.capture import check_token_mode, hook_width, stop_layer, token_rows, tokens_per_image
from ..validate import check_bool, check_choice, check_finite, check_int
from .cache_folder import header_offset, human_bytes, prepare_folder, resume_fix
from .distributed import barrier, rank_and_world
from .rows_file import write_rows
from .source import ImageSource, as_image_source
from .store import DATA, DTYPES, MANIFEST, PROGRESS_FILES, ActivationStore, count_ranges, merge_ranges

if TYPE_CHECKING:
    from ..hooked.model import HookedViT


def model_fingerprint(model: HookedViT) -> str:
    """A cheap id of the weights: name, shapes and a strided sample of every parameter."""
    h = hashlib.sha1(str(getattr(model, "name", "")).encode())
    with torch.no_grad():
        for name, p in model.named_parameters():
            flat = p.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // 16)][:16].float().cpu().numpy()
            h.update(name.encode() + str(tuple(p.shape)).encode() + sample.tobytes())
    return h.hexdigest()[:16]


def _settings(model: HookedViT, hooks: list[str], tokens: str, dtype: str, widths: list[int], t: int,
              source: ImageSource) -> dict[str, Any]:
    d = sum(widths)
    several = {"hooks": hooks, "widths": widths} if len(hooks) > 1 else {}
    return {
        **several,
        "model": getattr(model, "name", None),
        "model_fingerprint": model_fingerprint(model),
        "hook": ",".join(hooks),
        "tokens": tokens,
        "dtype": dtype,
        "d": d,
        "tokens_per_image": t,
        "n_images": len(source),
        "image_ids": source.ids(),
    }


def _check_hooks(hook: Any) -> list[str]:
    """One hook name, or a list of distinct ones."""
    hooks = list(hook) if isinstance(hook, (list, tuple)) else [hook]
    if not hooks or not all(isinstance(h, str) for h in hooks):
        raise TypeError(f"hook must be a hook name such as 'blocks.3.hook_resid_post', or a list of them; got "
                        f"{hook!r}")
    if len(set(hooks)) != len(hooks):
        raise ValueError(f"hook names {hooks} repeat one; name each hook once")
    return hooks


def capture_hooks(model: HookedViT, pixels: torch.Tensor, hooks: list[str]) -> list[torch.Tensor]:
    """The activations of every one of ``hooks`` from one forward pass, stopped after the last of them."""
    kept: dict[str, torch.Tensor] = {}

    def keep(x: torch.Tensor, hook_point: Any) -> None:
        kept[hook_point.name] = x.detach()

    stops = [stop_layer(model, h) for h in hooks]
    stop = None if any(s is None for s in stops) else max(stops)
    model.run_with_hooks(pixels, [(h, keep) for h in hooks], stop_at_layer=stop)
    missing = [h for h in hooks if h not in kept]
    if missing:
        raise RuntimeError(f"hook(s) {missing} did not fire")
    return [kept[h] for h in hooks]


def _check_arguments(hook: Any, path: Any, tokens: Any, dtype: Any, batch_size: Any, flags: dict[str, Any]) -> int | None:
    _check_hooks(hook)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a folder path (str or pathlib.Path); got {type(path).__name__}")
    check_token_mode(tokens)
    check_choice(dtype, "dtype", tuple(DTYPES))
    for name, value in flags.items():
        check_bool(value, name)
    return check_int(batch_size, "batch_size", at_least=1, example=32, none_ok=True)


def cache_activations(
    model: HookedViT,
    images: Any,
    hook: str | list[str],
    path: str,
    tokens: str = "all",
    dtype: str = "float16",
    batch_size: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    prefetch: bool = True,
) -> ActivationStore:
    """Run ``images`` through ``model`` and write the activations at ``hook`` to ``path``; returns the store.

    ``hook`` may be a list: one forward pass captures them all and each row holds the hooks side by side
    (``store.hooks``, ``store.widths``, ``store.select(hook)``), what transcoders and crosscoders train on.

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
    batch_size = _check_arguments(hook, path, tokens, dtype, batch_size,
                                  {"overwrite": overwrite, "progress": progress, "prefetch": prefetch})
    rank, world = rank_and_world()
    hooks = _check_hooks(hook)
    source = as_image_source(images)
    t = tokens_per_image(model, tokens)
    widths = [hook_width(model, h) for h in hooks]
    d = sum(widths)
    hook = ",".join(hooks)  # (what messages name)
    settings = _settings(model, hooks, tokens, dtype, widths, t, source)
    path = os.fspath(path)
    data_path = os.path.join(path, DATA)
    n = len(source)

    # ---- rank 0 prepares (or checks and repairs) the folder; the others wait
    error: BaseException | None = None
    if rank == 0:
        try:
            prepare_folder(path, settings, source, batch_size, overwrite, progress)
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
        stored = store.manifest.get("batch_size")
        valid = isinstance(stored, int) and not isinstance(stored, bool) and stored >= 1
        batch_size = stored if valid else (256 if model.device.type == "cuda" else 32)
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

    # positioned writes into the reserved file, not a memory map: a full disk is an OSError, never a SIGBUS
    fd = os.open(data_path, os.O_RDWR)
    offset = header_offset(path)
    row_bytes = d * np.dtype(DTYPES[dtype]).itemsize
    progress_path = os.path.join(path, f"progress.rank{rank}.json")
    my_done: list[list[int]] = []

    def record() -> None:  # rows first, then the claim that they are there
        getattr(os, "fdatasync", os.fsync)(fd)
        atomic_write_json(progress_path, {"rank": rank, "done": merge_ranges(my_done)}, what="a progress record")

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
        check_finite(rows, f"the activations at {hook} of images {start}..{stop - 1}",
                     "inf in a float16 cache means activations beyond float16's range (65504): cache with "
                     "dtype='float32'. NaN comes from the model itself: check its weights and these images.")
        try:
            write_rows(fd, offset + start * t * row_bytes, rows)
            my_done.append([start, stop])
            record()
        except OSError as err:  # a full disk or a folder made read-only: say what is kept and how to go on
            raise write_error(err, path, "the activation cache", resume_fix(path)) from err
        written[0] += rows.nbytes
        if bar is not None:
            bar.update((stop - start) * world)
            bar.set_postfix_str(f"{human_bytes(written[0] * world)} written", refresh=False)

    try:
        with torch.inference_mode():
            future = pool.submit(load, mine[0]) if (pool and mine) else None
            for j, (start, stop) in enumerate(mine):
                pixels = future.result() if future is not None else load((start, stop))
                future = pool.submit(load, mine[j + 1]) if (pool and j + 1 < len(mine)) else None
                parts = [token_rows(model, a, h, tokens) for h, a in zip(hooks, capture_hooks(model, pixels, hooks))]
                acts = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
                acts = acts.reshape(-1, d).to(np_dtype)  # on the model's device: a smaller copy to the host
                while len(pending) >= 2:  # bounded: at most two batches in flight
                    pending.pop(0).result()
                pending.append(writer.submit(write, acts, start, stop))
            for fut in pending:
                fut.result()
    except BaseException:
        failed = True
        raise
    else:
        failed = False
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        writer.shutdown(wait=True)  # batches already computed are still written and recorded
        if bar is not None:
            bar.close()
        os.close(fd)
        if world == 1:  # finished or interrupted: fold the progress into the manifest
            _fold(path, failed)

    # ---- merge the manifests
    if world > 1:
        barrier()
        if rank == 0:
            _fold(path, False)
        barrier()
    store.reload()
    return store


def _fold(path: str, failed: bool) -> None:
    """:func:`merge_progress`, after a run. When the run already failed and the disk is full, the progress
    files stay (they are whole, and the next run folds them in) and the run's own error is the one raised."""
    try:
        merge_progress(path)
    except OSError as err:
        if failed:
            return
        mapped = write_error(err, path, "the activation cache", resume_fix(path))
        if mapped is err:
            raise
        raise mapped from err


def merge_progress(path: str) -> None:
    """Fold every ``progress.rank*.json`` into ``manifest.json`` (atomically), then remove them."""
    merged = ActivationStore(path)
    manifest = dict(merged.manifest)
    manifest["done"] = merged.done
    manifest["rows_written"] = merged.rows_written
    manifest["complete"] = merged.complete
    atomic_write_json(os.path.join(path, MANIFEST), manifest, what="the cache's manifest")
    for p in glob.glob(os.path.join(glob.escape(path), PROGRESS_FILES)):
        os.remove(p)
