"""``activations.npy`` on disk: created with its space reserved, checked against what it should hold, and written
with positioned writes.

Why not a memory map for writing: a memory-mapped file on a disk that fills up kills the process with SIGBUS (in a
notebook, the kernel) the moment a page cannot be backed. Here the space is reserved up front (``fallocate``,
where the filesystem has it), and rows go in through ``os.pwrite``, so a full disk is an ``OSError`` the caller
turns into a message, and the rows already written stay where they are. Reading still memory-maps the file, after
:func:`check_rows_file` has made sure it is as long as its header says.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> from prisma_widgets.sae.rows_file import create_rows_file, intact_rows, read_header, write_rows
    >>> path = os.path.join(tempfile.mkdtemp(), "activations.npy")
    >>> create_rows_file(path, (4, 3), np.float32)
    >>> shape, dtype, offset = read_header(path)
    >>> fd = os.open(path, os.O_RDWR)
    >>> write_rows(fd, offset + 2 * 3 * 4, np.ones((2, 3), np.float32)); os.close(fd)
    >>> float(np.load(path).sum()), intact_rows(path, (4, 3), np.float32)
    (6.0, 4)
    >>> os.truncate(path, offset + 5 * 4)          # cut inside row 1
    >>> intact_rows(path, (4, 3), np.float32)
    1
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from typing import Any

import numpy as np

from ..files import DamagedFileError, read_denied


def read_header(path: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, data offset)`` from an ``.npy`` header; a damaged header is a :class:`DamagedFileError`."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            offset = fh.tell()
    except (ValueError, EOFError, SyntaxError) as err:
        raise DamagedFileError(f"{path} has no readable .npy header ({err})") from None
    except PermissionError:
        raise read_denied(path, "an activation cache") from None
    if fortran:
        raise DamagedFileError(f"{path} is stored in Fortran order; activation caches are C-ordered")
    return tuple(int(s) for s in shape), np.dtype(dtype), offset


def expected_size(path: str) -> int:
    """Header plus data: how many bytes a complete file with this header has."""
    shape, dtype, offset = read_header(path)
    return offset + int(np.prod(shape)) * dtype.itemsize


def rows_file_problem(path: str, shape: tuple[int, int], dtype: Any) -> str | None:
    """What is wrong with the file against the expected ``shape`` and ``dtype`` (``None``: nothing)."""
    if not os.path.exists(path):
        return "it is missing"
    try:
        found_shape, found_dtype, offset = read_header(path)
    except DamagedFileError as err:
        return str(err).split(" ", 1)[1]
    if found_shape != tuple(shape) or found_dtype != np.dtype(dtype):
        return (f"its header says {list(found_shape)} {found_dtype}, but the manifest says {list(shape)} "
                f"{np.dtype(dtype)}")
    size, full = os.path.getsize(path), offset + int(np.prod(shape)) * np.dtype(dtype).itemsize
    if size < full:
        return f"it is truncated: {size} bytes of {full}"
    return None


def intact_rows(path: str, shape: tuple[int, int], dtype: Any) -> int:
    """How many leading rows lie wholly inside the file (all of them when it is complete)."""
    _, _, offset = read_header(path)
    row_bytes = shape[1] * np.dtype(dtype).itemsize
    return max(0, min(shape[0], (os.path.getsize(path) - offset) // max(row_bytes, 1)))


def _fallocate() -> Any:
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.fallocate
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fn.restype = ctypes.c_int
    return fn


def reserve_space(fd: int, size: int) -> bool:
    """Allocate ``size`` bytes of ``fd`` on the disk for real (``fallocate``), so writes there cannot run out of
    space; existing data is kept. Returns whether the filesystem could reserve (some cannot; then writes still
    fail cleanly, just later). A full disk raises ``OSError(ENOSPC)``."""
    fn = _fallocate()
    if fn is None or size <= 0:
        return False
    if fn(fd, 0, 0, size) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(code, os.strerror(code))


def allocated_bytes(path: str) -> int:
    """Bytes the file already holds on the disk (a reserved or written file: its size; a sparse one: less)."""
    try:
        return os.stat(path).st_blocks * 512
    except (OSError, AttributeError):
        return 0


def create_rows_file(path: str, shape: tuple[int, int], dtype: Any) -> None:
    """A new ``.npy`` file of ``shape`` zero rows, its space reserved; a full disk leaves no file behind."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(int(s) for s in shape)}
    try:
        with open(path, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            fh.flush()
            size = fh.tell() + int(np.prod(shape)) * np.dtype(dtype).itemsize
            reserve_space(fh.fileno(), size)
            os.ftruncate(fh.fileno(), size)
    except BaseException:
        try:
            os.remove(path)
        except OSError:
            pass
        raise


def extend_rows_file(path: str) -> None:
    """Grow a truncated file back to the length its header asks for (the lost rows read as zeros), reserved."""
    size = expected_size(path)
    fd = os.open(path, os.O_RDWR)
    try:
        reserve_space(fd, size)
        if os.fstat(fd).st_size < size:
            os.ftruncate(fd, size)
    finally:
        os.close(fd)


def write_rows(fd: int, offset: int, rows: np.ndarray) -> None:
    """Write ``rows`` (C-ordered) at byte ``offset`` of ``fd``; a short write continues, a full disk raises."""
    view = memoryview(np.ascontiguousarray(rows)).cast("B")
    done = 0
    while done < len(view):
        if hasattr(os, "pwrite"):
            done += os.pwrite(fd, view[done:], offset + done)
        else:  # Windows: one writer thread per process, so seek + write is as good
            os.lseek(fd, offset + done, os.SEEK_SET)
            done += os.write(fd, view[done:])
