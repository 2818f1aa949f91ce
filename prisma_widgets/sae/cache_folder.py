"""The folder of an activation cache, made ready before any batch runs: created, or checked against the call and
repaired.

What a rerun of the same ``pw.cache_activations`` call repairs, and says it did (a warning):

- temporary files a killed run left behind are removed;
- progress records are folded into the manifest; a damaged one only means its images are computed again;
- a manifest whose shape or record of finished images is damaged is rewritten from what the call knows;
- a truncated ``activations.npy`` is grown back, and the images whose rows were cut are computed again;
- an ``activations.npy`` that is missing or holds another shape or dtype is rebuilt, every image computed again;
- an unreadable ``manifest.json`` next to our ``activations.npy``: the record of which rows were written is lost,
  so the cache is rebuilt.

What it cannot repair it refuses, naming the file and the fix: a ``manifest.json`` that belongs to something else,
a cache made with other settings.

Example:
    >>> human_bytes(3 * 1024 ** 2)
    '3.0 MB'
"""

from __future__ import annotations

import glob
import os
import shutil
import time
import warnings
from typing import Any

import numpy as np

from ..files import DamagedFileError, DiskFullError, atomic_write_json, read_json, remove_stale_temps, write_error
from .rows_file import (
    allocated_bytes,
    create_rows_file,
    expected_size,
    extend_rows_file,
    intact_rows,
    read_header,
    reserve_space,
    rows_file_problem,
)
from .source import ImageSource
from .store import DATA, DTYPES, FORMAT, MANIFEST, PROGRESS_FILES, count_ranges, recorded_ranges, valid_ranges

# Settings that decide what the cache holds; a mismatch on resume is refused.
SETTINGS = ("model", "model_fingerprint", "hook", "tokens", "dtype", "d", "tokens_per_image", "n_images", "image_ids")
_KINDS: dict[str, Any] = {"model": (str, type(None)), "model_fingerprint": str, "hook": str, "tokens": str,
                          "dtype": str, "d": int, "tokens_per_image": int, "n_images": int, "image_ids": (dict, list)}


def human_bytes(n: float) -> str:
    """``n`` bytes for people: ``"816.0 KB"``."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def refuse_mismatch(path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Refuse to reuse the cache at ``path`` when its settings ``old`` differ from this call's ``new``."""
    for key in SETTINGS:
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


def remove_cache_files(path: str) -> None:
    for p in [os.path.join(path, MANIFEST), os.path.join(path, DATA),
              *glob.glob(os.path.join(glob.escape(path), PROGRESS_FILES))]:
        if os.path.exists(p):
            os.remove(p)


def _repair_data(path: str, shape: tuple[int, int], dtype: Any, t: int, done: list[list[int]],
                 notes: list[str]) -> list[list[int]]:
    """Make ``activations.npy`` fit ``shape`` / ``dtype``; returns the finished ranges whose rows survived."""
    data_path = os.path.join(path, DATA)
    problem = rows_file_problem(data_path, shape, dtype)
    if problem is None:
        return done
    truncated = problem.startswith("it is truncated")
    if truncated:
        kept_images = intact_rows(data_path, shape, dtype) // t
        kept = valid_ranges([[a, min(b, kept_images)] for a, b in done if a < kept_images], kept_images)
        lost = count_ranges(done) - count_ranges(kept)
        extend_rows_file(data_path)
        notes.append(f"{data_path} was truncated ({problem[len('it is truncated: '):]}): the rows of {lost} finished "
                     "image(s) were cut off and are computed again")
        return kept
    written = count_ranges(done)
    if os.path.exists(data_path):
        os.remove(data_path)
    create_rows_file(data_path, shape, dtype)
    notes.append(f"{data_path} did not fit the manifest ({problem}): it is rebuilt"
                 + (f", and the {written} image(s) recorded as written are computed again" if written else ""))
    return []


def _open_existing(path: str, settings: dict[str, Any], notes: list[str]) -> dict[str, Any] | None:
    """The checked, repaired manifest of the cache at ``path``, or ``None`` when it has to be built anew."""
    manifest_path, data_path = os.path.join(path, MANIFEST), os.path.join(path, DATA)
    try:
        old = read_json(manifest_path, "the cache's manifest", "")
    except DamagedFileError as err:
        if not os.path.exists(data_path):
            raise DamagedFileError(f"{err} It is not next to an activations.npy, so it may not be an activation "
                                   "cache: choose another path, or pass overwrite=True to replace it.") from None
        notes.append(f"{manifest_path} was damaged ({str(err).split(' is damaged: ', 1)[-1]}): the record of which "
                     "rows were written is lost, so the cache is rebuilt and every image computed again")
        remove_cache_files(path)
        return None
    if not isinstance(old, dict) or old.get("format") != FORMAT:
        raise ValueError(f"{manifest_path} is not an activation-cache manifest (no format {FORMAT!r}); choose "
                         "another path, or pass overwrite=True to replace it")
    missing = [key for key in SETTINGS if key not in old or not isinstance(old[key], _KINDS[key])
               or isinstance(old[key], bool)]
    if missing:
        notes.append(f"{manifest_path} was damaged (its {', '.join(missing)} missing or of the wrong kind): the "
                     "cache is rebuilt and every image computed again")
        remove_cache_files(path)
        return None
    refuse_mismatch(path, old, settings)
    n, t, d = settings["n_images"], settings["tokens_per_image"], settings["d"]
    manifest = {**old, "shape": [n * t, d]}
    if old.get("shape") != manifest["shape"]:
        notes.append(f"{manifest_path} said shape {old.get('shape')!r}; {n} images x {t} tokens x {d} is "
                     f"{manifest['shape']}, which it says now")
    if valid_ranges(old.get("done"), n) != old.get("done"):
        notes.append(f"{manifest_path} had a damaged record of finished images ({old.get('done')!r}); the damaged "
                     "entries are computed again")
    manifest["done"] = valid_ranges(old.get("done"), n)
    done, damaged = recorded_ranges(path, manifest)
    for p in damaged:
        notes.append(f"{p} was damaged: the images it recorded are computed again")
    manifest["done"] = _repair_data(path, (n * t, d), DTYPES[settings["dtype"]], t, done, notes)
    manifest["rows_written"] = count_ranges(manifest["done"]) * t
    manifest["complete"] = count_ranges(manifest["done"]) == n
    progress_files = glob.glob(os.path.join(glob.escape(path), PROGRESS_FILES))
    if manifest != old or progress_files:  # a finished cache on a read-only disk is reused without a write
        atomic_write_json(manifest_path, manifest, what="the cache's manifest")
    for p in progress_files:
        os.remove(p)
    return manifest


def _check_room(path: str, needed: int, total: int, settings: dict[str, Any], progress: bool) -> None:
    free = shutil.disk_usage(path).free
    if progress:
        print(f"caching {settings['n_images']} images x {settings['tokens_per_image']} tokens x {settings['d']} "
              f"({settings['dtype']}) at {settings['hook']}: {human_bytes(total)} in all, {human_bytes(needed)} to "
              f"reserve at {path} ({human_bytes(free)} free)")
    if needed > free:
        raise DiskFullError(
            f"not enough disk space at {path!r}: this cache needs {human_bytes(needed)} more but only "
            f"{human_bytes(free)} is free. Free some space, choose a path on a larger disk, or cache less "
            f"(tokens='cls' or 'patches', dtype='float16', fewer images)."
        )


def prepare_folder(path: str, settings: dict[str, Any], source: ImageSource, batch_size: int | None,
                   overwrite: bool, progress: bool) -> None:
    """Rank 0: create the cache at ``path`` for ``settings``, or check and repair the one there; reserve its space."""
    manifest_path, data_path = os.path.join(path, MANIFEST), os.path.join(path, DATA)
    n, t, d = settings["n_images"], settings["tokens_per_image"], settings["d"]
    dtype = DTYPES[settings["dtype"]]
    total = n * t * d * np.dtype(dtype).itemsize
    notes: list[str] = []
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"{path!r} is a file; an activation cache is a folder: choose another path")
    try:
        if overwrite and os.path.exists(manifest_path):
            remove_cache_files(path)
        if os.path.isdir(path):
            remove_stale_temps(path)
        manifest = _open_existing(path, settings, notes) if os.path.exists(manifest_path) else None
        os.makedirs(path, exist_ok=True)
        if manifest is None:
            remove_cache_files(path)  # progress records without a manifest belong to no cache: never trust them
            _check_room(path, total, total, settings, progress)
            create_rows_file(data_path, (n * t, d), dtype)
            atomic_write_json(manifest_path, {
                "format": FORMAT, "version": 1, **settings, "shape": [n * t, d],
                "source": source.kind, "root": os.path.abspath(source.root) if source.root else None,
                "batch_size": batch_size, "done": [], "rows_written": 0, "complete": False,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }, what="the cache's manifest")
        elif not manifest["complete"]:
            needed = max(0, expected_size(data_path) - allocated_bytes(data_path))
            if needed:
                _check_room(path, needed, total, settings, progress)
            fd = os.open(data_path, os.O_RDWR)
            try:
                reserve_space(fd, expected_size(data_path))
            finally:
                os.close(fd)
    except OSError as err:
        mapped = write_error(err, path, "the activation cache", resume_fix(path))
        if mapped is err:
            raise
        raise mapped from err
    for note in notes:
        warnings.warn(f"repaired the activation cache: {note}", stacklevel=3)


def resume_fix(path: str) -> str:
    """What to say after a failed write: how much is kept, and how to continue."""
    try:
        manifest = read_json(os.path.join(path, MANIFEST), "the cache's manifest", "")
        done, _ = recorded_ranges(path, manifest)
        kept = f"{count_ranges(done)} of {manifest['n_images']} images are written and kept. "
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        kept = ""
    return (f"{kept}Free some space (or choose a path on a larger disk) and run the same pw.cache_activations call "
            "again: it resumes where it stopped.")


def header_offset(path: str) -> int:
    """Where the rows of ``activations.npy`` in the cache folder ``path`` start."""
    return read_header(os.path.join(path, DATA))[2]
