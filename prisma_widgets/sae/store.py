"""Activations on disk: ``pw.cache_activations`` writes them, :class:`ActivationStore` reads them.

A cache is a folder holding

- ``activations.npy``: one row per (image, token), image ``i`` owning rows ``[i * t, (i + 1) * t)``, written
  through ``np.lib.format.open_memmap`` so it never has to fit in memory;
- ``manifest.json``: model id, hook, token mode, dtype, shape, image ids and rows written, replaced atomically;
- ``progress.rank{r}.json`` while a run is under way: the image ranges each process has finished, rewritten
  atomically after every batch (the manifest, which may hold a long list of file names, is not). Rows are
  flushed before their range is recorded, so after a crash or a kill the recorded ranges are exactly the work
  that is safe to keep; the next run folds them into the manifest and continues from there.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from .io import atomic_write_text

DATA = "activations.npy"
MANIFEST = "manifest.json"
FORMAT = "prisma_widgets.activations"
TOKEN_MODES = ("all", "patches", "cls")
DTYPES = {"float16": np.float16, "float32": np.float32}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")

# Settings that decide what the cache holds; a mismatch on resume is refused.
_SETTINGS = ("model", "model_fingerprint", "hook", "tokens", "dtype", "d", "tokens_per_image", "n_images", "image_ids")


# ---------------------------------------------------------------- helpers
def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def _dist() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside ``torch.distributed``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _hook_layer_stop(model: Any, hook: str) -> int | None:
    from ..hooked.hook_points import split_name

    if hook not in model.hook_names():
        from ..hooked.hook_points import unknown_name_error

        raise unknown_name_error(hook, model.hook_names(), model.cfg.n_layers)
    layer, rest = split_name(hook)
    if layer is not None:
        return layer + 1
    if hook in ("hook_embed", "hook_pos_embed"):
        return 0
    return None


def _capture(model: Any, pixels: torch.Tensor, hook: str) -> torch.Tensor:
    """The hook's activation for a batch, with the forward stopped after the hooked block."""
    kept: list[torch.Tensor] = []

    def keep(x: torch.Tensor, hook_point: Any) -> None:
        kept.append(x.detach())

    model.run_with_hooks(pixels, [(hook, keep)], stop_at_layer=_hook_layer_stop(model, hook))
    if not kept:
        raise RuntimeError(f"hook {hook!r} did not fire")
    return kept[0]


def _token_rows(model: Any, acts: torch.Tensor, hook: str, tokens: str) -> torch.Tensor:
    """``[batch, pos, ...]`` -> ``[batch, t, d]`` for the token mode."""
    cfg = model.cfg
    if acts.ndim < 3 or acts.shape[1] != cfg.n_tokens:
        raise ValueError(
            f"hook {hook!r} gives activations of shape {list(acts.shape)}; caching needs a per-token hook "
            f"[batch, {cfg.n_tokens} tokens, ...] such as 'blocks.0.hook_resid_post' or 'blocks.0.mlp.hook_post'"
        )
    acts = acts.reshape(acts.shape[0], acts.shape[1], -1)
    if tokens == "all":
        return acts
    if tokens == "patches":
        return acts[:, cfg.n_prefix_tokens:]
    if not cfg.has_cls:
        raise ValueError(
            f"tokens='cls' but {getattr(model, 'name', None) or 'this model'} has no CLS token "
            f"({cfg.n_prefix_tokens} prefix tokens, pooling {cfg.pooling!r}); use tokens='patches' or 'all'"
        )
    return acts[:, :1]


def tokens_per_image(model: Any, tokens: str) -> int:
    cfg = model.cfg
    if tokens not in TOKEN_MODES:
        raise ValueError(f"tokens must be one of {', '.join(map(repr, TOKEN_MODES))}; got {tokens!r}")
    if tokens == "cls" and not cfg.has_cls:
        raise ValueError(
            f"tokens='cls' but {getattr(model, 'name', None) or 'this model'} has no CLS token "
            f"({cfg.n_prefix_tokens} prefix tokens, pooling {cfg.pooling!r}); use tokens='patches' or 'all'"
        )
    return {"all": cfg.n_tokens, "patches": cfg.n_patches, "cls": 1}[tokens]


_D_MODEL_HOOKS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out",
                  "ln1.hook_normalized", "ln2.hook_normalized")


def hook_width(model: Any, hook: str) -> int:
    """The per-token width of a hook's activation (``d_model`` for the residual stream; else from one tiny forward)."""
    from ..hooked.hook_points import split_name

    layer, rest = split_name(hook)
    if hook in model.hook_names() and layer is not None and rest in _D_MODEL_HOOKS:
        return int(model.cfg.d_model)
    pixels = torch.zeros(1, 3, *model.cfg.image_size, device=model.device, dtype=model.dtype)
    with torch.inference_mode():
        acts = _capture(model, pixels, hook)
    return int(acts.reshape(acts.shape[0], acts.shape[1], -1).shape[-1]) if acts.ndim >= 3 else int(acts.shape[-1])


def model_fingerprint(model: Any) -> str:
    """A cheap id of the weights: name, shapes and a strided sample of every parameter."""
    h = hashlib.sha1(str(getattr(model, "name", "")).encode())
    with torch.no_grad():
        for name, p in model.named_parameters():
            flat = p.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // 16)][:16].float().cpu().numpy()
            h.update(name.encode() + str(tuple(p.shape)).encode() + sample.tobytes())
    return h.hexdigest()[:16]


def _merge(ranges: Sequence[Sequence[int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for a, b in sorted((int(a), int(b)) for a, b in ranges if b > a):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def _count(ranges: Sequence[Sequence[int]]) -> int:
    return sum(b - a for a, b in ranges)


# ---------------------------------------------------------------- image sources
class _Source:
    """Random access to images of any accepted kind: ``len``, ``item(i)``, ``ids``."""

    def __init__(self, images: Any) -> None:
        self.images = images
        self.root: str | None = None
        self.paths: list[str] | None = None
        if isinstance(images, (str, os.PathLike)):
            root = os.fspath(images)
            if not os.path.isdir(root):
                raise FileNotFoundError(f"no folder at {root!r}; pass a folder of image files, a list or an array")
            paths = sorted(
                os.path.relpath(p, root)
                for p in glob.glob(os.path.join(root, "**", "*"), recursive=True)
                if p.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(p)
            )
            if not paths:
                raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {root!r}")
            self.kind, self.root, self.paths, self.n = "folder", root, paths, len(paths)
            return
        if isinstance(images, torch.utils.data.DataLoader):
            images = images.dataset
            self.images = images
        if isinstance(images, torch.utils.data.IterableDataset):
            raise TypeError(
                "an IterableDataset has no random access, so a cache could not resume; pass a map-style dataset"
            )
        if isinstance(images, (np.ndarray, torch.Tensor)):
            if images.ndim == 3:
                images = images[None]
                self.images = images
            self.kind = "array"
        elif isinstance(images, (list, tuple)):
            self.kind = "list"
        elif hasattr(images, "__getitem__") and hasattr(images, "__len__"):
            self.kind = "dataset"
        else:
            raise TypeError(
                f"cannot read images from a {type(images).__name__}; pass a list of images, an array [n, H, W, 3], "
                "a folder, a torch Dataset / DataLoader, or a Hugging Face datasets.Dataset"
            )
        self.n = len(images)
        if self.n == 0:
            raise ValueError("got no images")

    def __len__(self) -> int:
        return self.n

    def ids(self) -> Any:
        return list(self.paths) if self.paths is not None else {"start": 0, "stop": self.n}

    @staticmethod
    def _unwrap(item: Any) -> Any:
        if isinstance(item, dict):
            for key in ("image", "img", "pixel_values"):
                if key in item:
                    return item[key]
            raise KeyError(f"dataset items are dicts without an 'image' key (keys: {sorted(item)})")
        if isinstance(item, (tuple, list)) and len(item) >= 1:
            return item[0]  # (image, label, ...)
        return item

    def item(self, i: int) -> Any:
        if self.paths is not None:
            return os.path.join(self.root, self.paths[i])
        if self.kind in ("array", "list"):
            return self.images[i]
        return self._unwrap(self.images[i])

    def pixels(self, model: Any, start: int, stop: int) -> torch.Tensor:
        if self.kind == "array" and isinstance(self.images, torch.Tensor) and self.images.is_floating_point():
            return model.to_pixels(self.images[start:stop])
        items = [self.item(i) for i in range(start, stop)]
        if all(isinstance(x, torch.Tensor) and x.is_floating_point() and x.ndim == 3 for x in items):
            return model.to_pixels(torch.stack(items))
        return model.preprocess(items)


# ---------------------------------------------------------------- the store
class ActivationStore:
    """Cached activations of one hook, on disk, memory-mapped.

    ``len(store)`` rows of width ``store.d``; image ``i`` owns rows ``[i * t, (i + 1) * t)`` with
    ``t = store.tokens_per_image``.
    """

    def __init__(self, path: str, images: Any = None) -> None:
        self.path = os.fspath(path)
        manifest_path = os.path.join(self.path, MANIFEST)
        if not os.path.exists(manifest_path):
            raise FileNotFoundError(
                f"no activation cache at {self.path!r} (no {MANIFEST}); make one with pw.cache_activations"
            )
        self._source = images if images is None or isinstance(images, _Source) else _Source(images)
        self.reload()

    def reload(self) -> None:
        with open(os.path.join(self.path, MANIFEST)) as fh:
            self.manifest: dict[str, Any] = json.load(fh)
        done = list(self.manifest.get("done", []))
        for p in glob.glob(os.path.join(self.path, "progress.rank*.json")):
            try:
                with open(p) as fh:
                    done += json.load(fh)["done"]
            except (OSError, ValueError, KeyError):
                pass
        self.done = _merge(done)
        self._mm: np.memmap | None = None

    # ----- shape -----
    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.manifest["shape"])  # type: ignore[return-value]

    @property
    def d(self) -> int:
        return int(self.manifest["shape"][1])

    @property
    def tokens_per_image(self) -> int:
        return int(self.manifest["tokens_per_image"])

    @property
    def n_images(self) -> int:
        return int(self.manifest["n_images"])

    @property
    def hook(self) -> str:
        return self.manifest["hook"]

    @property
    def tokens(self) -> str:
        return self.manifest["tokens"]

    @property
    def images_done(self) -> int:
        return _count(self.done)

    @property
    def rows_written(self) -> int:
        return self.images_done * self.tokens_per_image

    @property
    def complete(self) -> bool:
        return self.images_done == self.n_images

    def __len__(self) -> int:
        return int(self.manifest["shape"][0])

    def __repr__(self) -> str:
        m = self.manifest
        state = "complete" if self.complete else f"{self.images_done}/{self.n_images} images written"
        return (
            f"ActivationStore({self.path!r}: {m['model']} {m['hook']}, tokens={m['tokens']!r}, "
            f"{len(self)} x {self.d} {m['dtype']}, {state})"
        )

    # ----- reading -----
    @property
    def array(self) -> np.ndarray:
        """The memory-mapped ``[rows, d]`` array (read-only)."""
        if self._mm is None:
            self._mm = np.load(os.path.join(self.path, DATA), mmap_mode="r")
        return self._mm

    def _check_complete(self) -> None:
        if not self.complete:
            raise RuntimeError(
                f"the cache at {self.path!r} is incomplete ({self.images_done} of {self.n_images} images written); "
                "run the same pw.cache_activations call again to finish it"
            )

    def read(self, start: int, stop: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Rows ``[start, stop)`` as a tensor (one sequential read)."""
        return torch.from_numpy(np.array(self.array[start:stop])).to(dtype)

    def to_tensor(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Every row in memory, ``[rows, d]``."""
        self._check_complete()
        return self.read(0, len(self), dtype)

    def chunks(self, chunk_rows: int = 1 << 18, dtype: torch.dtype = torch.float32) -> Iterator[torch.Tensor]:
        """Sequential chunks of rows, in file order."""
        self._check_complete()
        for start in range(0, len(self), chunk_rows):
            yield self.read(start, min(start + chunk_rows, len(self)), dtype)

    def iter_batches(
        self, batch_size: int = 4096, shuffle: bool = True, seed: int = 0, chunk_rows: int = 1 << 18,
        dtype: torch.dtype = torch.float32, drop_last: bool = False,
    ) -> Iterator[torch.Tensor]:
        """Batches for one pass: large sequential chunks read in a seeded random order, each shuffled in memory."""
        self._check_complete()
        n = len(self)
        starts = list(range(0, n, chunk_rows))
        g = torch.Generator().manual_seed(int(seed))
        if shuffle:
            starts = [starts[i] for i in torch.randperm(len(starts), generator=g).tolist()]
        for start in starts:
            chunk = self.read(start, min(start + chunk_rows, n), dtype)
            if shuffle:
                chunk = chunk[torch.randperm(len(chunk), generator=g)]
            for b in range(0, len(chunk), batch_size):
                batch = chunk[b:b + batch_size]
                if drop_last and len(batch) < batch_size:
                    continue
                yield batch

    def __iter__(self) -> Iterator[torch.Tensor]:
        return self.iter_batches()

    # ----- back to the images -----
    def row_to_image(self, rows: Any) -> tuple[np.ndarray, np.ndarray]:
        """Row indices -> (image index, token position within the cached tokens)."""
        rows = np.asarray(rows)
        return rows // self.tokens_per_image, rows % self.tokens_per_image

    def image_ids(self) -> list[Any]:
        ids = self.manifest["image_ids"]
        return list(range(ids["start"], ids["stop"])) if isinstance(ids, dict) else list(ids)

    def images(self, ids: Any) -> list[Any]:
        """The source images for image indices ``ids`` (as the source holds them; files are opened as PIL images)."""
        idx = [int(i) for i in np.atleast_1d(np.asarray(ids))]
        for i in idx:
            if not 0 <= i < self.n_images:
                raise IndexError(f"image index {i} out of range for {self.n_images} images")
        source = self._source
        if source is None:
            root = self.manifest.get("root")
            if self.manifest.get("source") == "folder" and root and os.path.isdir(root):
                source = self._source = _Source(root)
            else:
                raise RuntimeError(
                    f"this cache was made from a {self.manifest.get('source')} held in memory; pass it again: "
                    f"pw.ActivationStore({self.path!r}, images=...)"
                )
        from ..hooked.preprocess import to_pil

        return [to_pil(source.item(i)) if source.kind == "folder" else source.item(i) for i in idx]


# ---------------------------------------------------------------- caching
def _settings(model: Any, hook: str, tokens: str, dtype: str, d: int, t: int, source: _Source) -> dict[str, Any]:
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
    model: Any,
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
    """
    if tokens not in TOKEN_MODES:
        raise ValueError(f"tokens must be one of {', '.join(map(repr, TOKEN_MODES))}; got {tokens!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(map(repr, DTYPES))}; got {dtype!r}")
    rank, world = _dist()
    source = images if isinstance(images, _Source) else _Source(images)
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
                for p in [manifest_path, data_path, *glob.glob(os.path.join(path, "progress.rank*.json"))]:
                    if os.path.exists(p):
                        os.remove(p)
            if os.path.exists(manifest_path):
                with open(manifest_path) as fh:
                    old = json.load(fh)
                if old.get("format") != FORMAT:
                    raise ValueError(f"{manifest_path} is not an activation-cache manifest")
                _refuse_mismatch(path, old, settings)
                _merge_manifest(path)  # live progress files from a stopped run become one record
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
                atomic_write_text(manifest_path, json.dumps(manifest))
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
        atomic_write_text(progress_path, json.dumps({"rank": rank, "done": _merge(my_done)}))

    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, initial=_count(done), unit="img", desc="caching", dynamic_ncols=True)
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
                acts = _token_rows(model, _capture(model, pixels, hook), hook, tokens)
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
            _merge_manifest(path)

    # ---- merge the manifests
    if world > 1:
        _barrier()
        if rank == 0:
            _merge_manifest(path)
        _barrier()
    store.reload()
    return store


def _merge_manifest(path: str) -> None:
    """Fold every ``progress.rank*.json`` into ``manifest.json`` (atomically), then remove them."""
    merged = ActivationStore(path)
    manifest = dict(merged.manifest)
    manifest["done"] = merged.done
    manifest["rows_written"] = merged.rows_written
    manifest["complete"] = merged.complete
    atomic_write_text(os.path.join(path, MANIFEST), json.dumps(manifest))
    for p in glob.glob(os.path.join(path, "progress.rank*.json")):
        os.remove(p)
