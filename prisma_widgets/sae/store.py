"""Activations on disk: :class:`ActivationStore` reads a cache that ``pw.cache_activations`` wrote.

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
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

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
        self._source = None if images is None else as_image_source(images)
        self.reload()

    def reload(self) -> None:
        with open(os.path.join(self.path, MANIFEST)) as fh:
            self.manifest: dict[str, Any] = json.load(fh)
        done = list(self.manifest.get("done", []))
        for p in glob.glob(os.path.join(self.path, PROGRESS_FILES)):
            try:
                with open(p) as fh:
                    done += json.load(fh)["done"]
            except (OSError, ValueError, KeyError):
                pass
        self.done = merge_ranges(done)
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

    def check_complete(self) -> None:
        """Refuse to read an incomplete cache, saying how to finish it."""
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
        self.check_complete()
        return self.read(0, len(self), dtype)

    def chunks(self, chunk_rows: int = 1 << 18, dtype: torch.dtype = torch.float32) -> Iterator[torch.Tensor]:
        """Sequential chunks of rows, in file order."""
        self.check_complete()
        for start in range(0, len(self), chunk_rows):
            yield self.read(start, min(start + chunk_rows, len(self)), dtype)

    def iter_batches(
        self, batch_size: int = 4096, shuffle: bool = True, seed: int = 0, chunk_rows: int = 1 << 18,
        dtype: torch.dtype = torch.float32, drop_last: bool = False,
    ) -> Iterator[torch.Tensor]:
        """Batches for one pass: large sequential chunks read in a seeded random order, each shuffled in memory."""
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
                source = self._source = ImageSource(root)
            else:
                raise RuntimeError(
                    f"this cache was made from a {self.manifest.get('source')} held in memory; pass it again: "
                    f"pw.ActivationStore({self.path!r}, images=...)"
                )
        from ..hooked.preprocess import to_pil

        return [to_pil(source.item(i)) if source.kind == "folder" else source.item(i) for i in idx]
