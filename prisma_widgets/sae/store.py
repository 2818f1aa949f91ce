"""Activations on disk: :class:`ActivationStore` reads a cache that ``pw.cache_activations`` wrote.

A cache is a folder holding

- ``activations.npy``: one row per (image, token), image ``i`` owning rows ``[i * t, (i + 1) * t)``, written
  through ``np.lib.format.open_memmap`` so it never has to fit in memory;
- ``manifest.json``: model id, hook, token mode, dtype, shape, image ids and rows written, replaced atomically;
  a cache of several hooks (one forward pass captured them all) also lists ``hooks`` and their ``widths``, its
  rows holding the hooks side by side (``hook`` is then their names joined by commas);
- ``progress.rank{r}.json`` while a run is under way: the image ranges each process has finished, rewritten
  atomically after every batch (the manifest, which may hold a long list of file names, is not). Rows are
  flushed before their range is recorded, so after a crash or a kill the recorded ranges are exactly the work
  that is safe to keep; the next run folds them into the manifest and continues from there.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ..files import DamagedFileError, read_json
from ..validate import check_int, check_seed
from .rows_file import rows_file_problem
from .source import ImageSource, as_image_source

DATA = "activations.npy"
MANIFEST = "manifest.json"
PROGRESS_FILES = "progress.rank*.json"
FORMAT = "prisma_widgets.activations"
DTYPES = {"float16": np.float16, "float32": np.float32}


def merge_ranges(ranges: Sequence[Sequence[int]]) -> list[list[int]]:
    """Half-open ``[a, b)`` ranges, sorted and merged where they touch or overlap; empty ones dropped."""
    out: list[list[int]] = []
    for a, b in sorted((int(a), int(b)) for a, b in ranges if b > a):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def count_ranges(ranges: Sequence[Sequence[int]]) -> int:
    """How many integers disjoint half-open ranges cover."""
    return sum(b - a for a, b in ranges)


REPAIR = ("Run the same pw.cache_activations call again: it repairs the cache and computes again what was lost "
          "(or pass overwrite=True to rebuild it from scratch).")


def manifest_problem(manifest: Any) -> str | None:
    """What makes ``manifest`` unusable (a missing or ill-typed field, a shape that disagrees with the image
    count), or ``None``."""
    if not isinstance(manifest, dict):
        return f"it holds a {type(manifest).__name__}, not an object"
    if manifest.get("format") != FORMAT:
        return f"its format is {manifest.get('format')!r}, not {FORMAT!r}"
    for key, kind in (("shape", list), ("n_images", int), ("tokens_per_image", int), ("dtype", str), ("hook", str),
                      ("tokens", str), ("done", list)):
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool):
            return f"its {key!r} is {manifest.get(key)!r}"
    shape, n, t = manifest["shape"], manifest["n_images"], manifest["tokens_per_image"]
    if manifest["dtype"] not in DTYPES:
        return f"its dtype {manifest['dtype']!r} is not one of {', '.join(DTYPES)}"
    if len(shape) != 2 or not all(isinstance(s, int) and s > 0 for s in shape) or n < 1 or t < 1:
        return f"its shape {shape} (n_images {n}, tokens_per_image {t}) is not a table of rows"
    if shape[0] != n * t:
        return f"its shape says {shape[0]} rows, but {n} images x {t} tokens are {n * t} rows"
    if valid_ranges(manifest["done"], n) != manifest["done"]:
        return f"its record of finished images {manifest['done']!r} does not fit {n} images"
    if "hooks" in manifest:  # a cache of several hooks, side by side in each row
        hooks, widths = manifest["hooks"], manifest.get("widths")
        if (not isinstance(hooks, list) or not hooks or not all(isinstance(h, str) for h in hooks)
                or not isinstance(widths, list) or len(widths) != len(hooks)
                or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths)):
            return f"its hooks {hooks!r} and widths {widths!r} are not one positive width per hook name"
        if sum(widths) != shape[1]:
            return f"its hook widths {widths} add up to {sum(widths)}, but its rows are {shape[1]} wide"
    return None


def valid_ranges(ranges: Any, n: int) -> list[list[int]]:
    """The well-formed ``[a, b)`` ranges inside ``[0, n)`` of ``ranges``, merged (damaged entries dropped)."""
    good = []
    for entry in ranges if isinstance(ranges, list) else []:
        if (isinstance(entry, list) and len(entry) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                               for v in entry) and 0 <= entry[0] < entry[1] <= n):
            good.append(entry)
    return merge_ranges(good)


def recorded_ranges(path: str, manifest: dict[str, Any]) -> tuple[list[list[int]], list[str]]:
    """The images recorded as written: the manifest's ranges and every readable ``progress.rank*.json``.

    Returns ``(ranges, damaged progress files)``; a damaged one only means its images are computed again.
    """
    n = int(manifest["n_images"])
    done = list(manifest.get("done", []))
    damaged = []
    for p in sorted(glob.glob(os.path.join(glob.escape(path), PROGRESS_FILES))):
        try:
            record = read_json(p, "a progress record", "")
            ranges = record["done"]
        except (OSError, ValueError, KeyError, TypeError):
            damaged.append(p)
            continue
        if valid_ranges(ranges, n) != merge_ranges(ranges if isinstance(ranges, list) else []):
            damaged.append(p)
        done += valid_ranges(ranges, n)
    return valid_ranges(done, n), damaged


class ActivationStore:
    """Cached activations of one hook, on disk, memory-mapped.

    ``len(store)`` rows of width ``store.d``; image ``i`` owns rows ``[i * t, (i + 1) * t)`` with
    ``t = store.tokens_per_image``.
    """

    def __init__(self, path: str, images: Any = None) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be the folder of an activation cache (str or pathlib.Path); got {path!r}")
        self.path = os.fspath(path)
        manifest_path = os.path.join(self.path, MANIFEST)
        if not os.path.exists(manifest_path):
            raise FileNotFoundError(
                f"no activation cache at {self.path!r} (no {MANIFEST}); make one with pw.cache_activations"
            )
        self._source = None if images is None else as_image_source(images)
        self._selected: list[str] | None = None  # a view of some of the hooks (see select)
        self.reload()

    def reload(self) -> None:
        """Read the manifest and progress records again, checking them and the data file against each other."""
        manifest_path = os.path.join(self.path, MANIFEST)
        manifest = read_json(manifest_path, "the cache's manifest", REPAIR)
        problem = manifest_problem(manifest)
        if problem:
            raise DamagedFileError(f"{manifest_path} is damaged: {problem}. {REPAIR}")
        self.manifest: dict[str, Any] = manifest
        self.done, _ = recorded_ranges(self.path, manifest)
        data_path = os.path.join(self.path, DATA)
        problem = rows_file_problem(data_path, tuple(manifest["shape"]), DTYPES[manifest["dtype"]])
        if problem:
            raise DamagedFileError(f"{data_path} does not match the cache's manifest: {problem}. {REPAIR}")
        self._mm: np.memmap | None = None

    # ----- shape -----
    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.manifest["shape"])  # type: ignore[return-value]

    @property
    def d(self) -> int:
        """The width of a row (of the selected hooks, side by side)."""
        return sum(self.widths)

    @property
    def all_hooks(self) -> list[str]:
        """Every hook the cache holds, in the order of its columns."""
        return list(self.manifest.get("hooks") or [self.manifest["hook"]])

    @property
    def hooks(self) -> list[str]:
        """The hooks this store reads (all of them, or those chosen with :meth:`select`)."""
        return list(self._selected) if self._selected is not None else self.all_hooks

    @property
    def widths(self) -> list[int]:
        """The width of each of :attr:`hooks`."""
        all_widths = dict(zip(self.all_hooks, self.manifest.get("widths") or [int(self.manifest["shape"][1])]))
        return [all_widths[h] for h in self.hooks]

    def columns(self, hook: str) -> tuple[int, int]:
        """The columns ``[start, stop)`` that ``hook`` occupies in the cache's rows."""
        if hook not in self.all_hooks:
            raise ValueError(f"the cache at {self.path!r} holds {', '.join(map(repr, self.all_hooks))}, not {hook!r}; "
                             "pass one of those (or cache this hook too: pw.cache_activations(model, images, [hooks], "
                             "path))")
        widths = self.manifest.get("widths") or [int(self.manifest["shape"][1])]
        i = self.all_hooks.index(hook)
        return sum(widths[:i]), sum(widths[:i + 1])

    def select(self, hooks: str | Sequence[str]) -> ActivationStore:
        """A view of this store that reads only ``hooks`` (one name, or several side by side in that order).

        >>> import tempfile
        >>> import prisma_widgets as pw
        >>> model = pw.load("mouse-vit")
        >>> images, _ = pw.zoo.shapes(2, seed=0)
        >>> store = pw.cache_activations(model, images, ["blocks.0.ln2.hook_normalized", "blocks.0.hook_mlp_out"],
        ...                              tempfile.mkdtemp(), progress=False)
        >>> store.hooks, store.widths
        (['blocks.0.ln2.hook_normalized', 'blocks.0.hook_mlp_out'], [128, 128])
        >>> view = store.select("blocks.0.hook_mlp_out")
        >>> view.d, view.hook, tuple(view.read(0, 3).shape)
        (128, 'blocks.0.hook_mlp_out', (3, 128))
        """
        names = [hooks] if isinstance(hooks, str) else list(hooks)
        if not names or not all(isinstance(h, str) for h in names):
            raise TypeError(f"hooks must be a hook name or a list of them; got {hooks!r}")
        for h in names:
            self.columns(h)  # an unknown hook is refused, naming those the cache holds
        view = object.__new__(ActivationStore)
        view.__dict__.update(self.__dict__)
        view._selected = names
        return view

    @property
    def tokens_per_image(self) -> int:
        return int(self.manifest["tokens_per_image"])

    @property
    def n_images(self) -> int:
        return int(self.manifest["n_images"])

    @property
    def hook(self) -> str:
        """The hook's name (of several: their names joined by commas)."""
        return ",".join(self.hooks)

    @property
    def tokens(self) -> str:
        return self.manifest["tokens"]

    @property
    def images_done(self) -> int:
        return count_ranges(self.done)

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
            f"ActivationStore({self.path!r}: {m['model']} {self.hook}, tokens={m['tokens']!r}, "
            f"{len(self)} x {self.d} {m['dtype']}, {state})"
        )

    # ----- reading -----
    @property
    def array(self) -> np.ndarray:
        """The memory-mapped ``[rows, d]`` array (read-only)."""
        if self._mm is None:
            self._mm = np.load(os.path.join(self.path, DATA), mmap_mode="r")
        return self._mm

    def check_complete(self) -> None:
        """Refuse to read an incomplete cache, saying how to finish it."""
        if not self.complete:
            raise RuntimeError(
                f"the cache at {self.path!r} is incomplete ({self.images_done} of {self.n_images} images written); "
                "run the same pw.cache_activations call again to finish it"
            )

    def read(self, start: int, stop: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Rows ``[start, stop)`` as a tensor (one sequential read), of the selected hooks side by side."""
        n = len(self)
        start = check_int(start, "start", at_least=0, at_most=n, fix=f"The cache holds rows 0..{n}.")
        stop = check_int(stop, "stop", at_least=start, at_most=n, fix=f"The cache holds rows 0..{n}; stop >= start.")
        rows = self.array[start:stop]
        if self._selected is not None or len(self.all_hooks) > 1:
            spans = [self.columns(h) for h in self.hooks]
            if len(spans) > 1 or spans[0] != (0, rows.shape[1]):
                rows = np.concatenate([rows[:, a:b] for a, b in spans], axis=1)
        return torch.from_numpy(np.array(rows)).to(dtype)

    def read_hook(self, hook: str, start: int, stop: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Rows ``[start, stop)`` of one of the cache's hooks."""
        return self.select(hook).read(start, stop, dtype)

    def to_tensor(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Every row in memory, ``[rows, d]``."""
        self.check_complete()
        return self.read(0, len(self), dtype)

    def chunks(self, chunk_rows: int = 1 << 18, dtype: torch.dtype = torch.float32) -> Iterator[torch.Tensor]:
        """Sequential chunks of rows, in file order."""
        chunk_rows = check_int(chunk_rows, "chunk_rows", at_least=1, example=1 << 18)
        self.check_complete()
        for start in range(0, len(self), chunk_rows):
            yield self.read(start, min(start + chunk_rows, len(self)), dtype)

    def iter_batches(
        self, batch_size: int = 4096, shuffle: bool = True, seed: int = 0, chunk_rows: int = 1 << 18,
        dtype: torch.dtype = torch.float32, drop_last: bool = False,
    ) -> Iterator[torch.Tensor]:
        """Batches for one pass: large sequential chunks read in a seeded random order, each shuffled in memory."""
        batch_size = check_int(batch_size, "batch_size", at_least=1, example=4096)
        chunk_rows = check_int(chunk_rows, "chunk_rows", at_least=1, example=1 << 18)
        seed = check_seed(seed)
        self.check_complete()
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
        if not np.issubdtype(rows.dtype, np.integer):
            raise TypeError(f"rows must be integer row indices; got {rows.dtype} values")
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"row {int(rows.min() if rows.min() < 0 else rows.max())} is out of range: the cache "
                             f"holds rows 0..{len(self) - 1}")
        return rows // self.tokens_per_image, rows % self.tokens_per_image

    def image_ids(self) -> list[Any]:
        ids = self.manifest["image_ids"]
        return list(range(ids["start"], ids["stop"])) if isinstance(ids, dict) else list(ids)

    def images(self, ids: Any) -> list[Any]:
        """The source images for image indices ``ids`` (as the source holds them; files are opened as PIL images)."""
        idx = [int(i) for i in np.atleast_1d(np.asarray(ids))]
        for i in idx:
            if not 0 <= i < self.n_images:
                raise IndexError(f"image index {i} out of range for {self.n_images} images; pass indices "
                                 f"0..{self.n_images - 1}")
        source = self._source
        if source is None:
            root = self.manifest.get("root")
            if self.manifest.get("source") == "folder" and root and os.path.isdir(root):
                source = self._source = ImageSource(root)
            else:
                raise RuntimeError(
                    f"this cache was made from a {self.manifest.get('source')} held in memory; pass it again: "
                    f"pw.ActivationStore({self.path!r}, images=...)"
                )
        from ..hooked.preprocess import to_pil

        return [to_pil(source.item(i)) if source.kind == "folder" else source.item(i) for i in idx]
