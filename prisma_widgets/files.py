"""Files: atomic writes, checked reads, and errors that name the file and the fix.

Writes go to a temporary file next to the target, synced, then moved over it with ``os.replace``: a reader (another
process, or the next run after a crash) sees the old file or the new one, never half of one. A write that fails
removes its temporary file; :func:`remove_stale_temps` clears those a killed process left behind. A full disk
becomes :class:`DiskFullError`, a read-only place a ``PermissionError``, each naming the path and what to do.
Reads of JSON and safetensors files turn a truncated or garbled file into :class:`DamagedFileError`.

Example:
    >>> import os, tempfile
    >>> from prisma_widgets.files import atomic_write_json, atomic_write_text, read_json
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "state.json")
    >>> atomic_write_json(path, {"step": 3})
    >>> open(path).read()
    '{"step": 3}'
    >>> atomic_write_text(path, "replaced")
    >>> os.listdir(folder.name)                  # no temporary file left behind
    ['state.json']
    >>> read_json(path, "a run's state", "write it again")      # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    prisma_widgets.files.DamagedFileError: ...state.json is damaged: a run's state is not valid JSON (...). write it again
"""

from __future__ import annotations

import errno
import glob
import json
import os
import re
from collections.abc import Mapping
from typing import Any

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
# ours: "<name>.tmp<pid>"; safetensors' own (Rust tempfile): ".tmp" + 6 letters or digits
_TEMP_NAMES = (re.compile(r".+\.tmp\d+$"), re.compile(r"^\.tmp[A-Za-z0-9]{6}$"))


class DamagedFileError(ValueError):
    """A file is truncated, corrupt or not what it should be; the message names it and says what to do."""


class DiskFullError(OSError):
    """No room to write (a full disk, a quota or a file-size limit); what was written before is intact."""


def write_error(err: OSError, path: str, what: str, fix: str = "") -> OSError:
    """``err`` (from writing ``what`` at ``path``) as an error that names the path and the fix, when it is a
    full disk or a read-only place; any other error is returned as it is."""
    code = getattr(err, "errno", None)
    if code in _FULL:
        reason = "a file-size limit (ulimit -f) was reached" if code == errno.EFBIG else "the disk is full"
        new: OSError = DiskFullError(
            f"could not write {what} to {path!r}: {reason} ({os.strerror(code)}). "
            + (fix or "Free some space or choose a path on a larger disk, then try again.")
        )
    elif code in _READ_ONLY:
        where = os.path.dirname(os.path.abspath(path)) or path
        new = PermissionError(
            f"could not write {what} to {path!r}: {where!r} is read-only or not writable for this user "
            f"({os.strerror(code)}). Choose a folder you can write to (e.g. under your home directory), "
            "or change its permissions."
        )
    else:
        return err
    new.errno = code  # (no filename: OSError would then print "[Errno N] None: path" instead of the message)
    return new


def safetensors_write_error(err: Exception, path: str, what: str, fix: str = "") -> Exception:
    """safetensors reports I/O failures as its own error with ``(os error N)`` in the text: map N like an OSError."""
    found = re.search(r"os error (\d+)", str(err))
    if found:
        return write_error(OSError(int(found.group(1)), str(err)), path, what, fix)
    return err


def read_denied(path: str, what: str) -> PermissionError:
    """A file this user may not read (no errno: :func:`write_error` leaves it as it is)."""
    return PermissionError(f"cannot read {what} at {path!r}: permission denied for this user. Change its "
                           "permissions (and those of the folders above it), or copy it somewhere you can read.")


def check_writable(folder: str, what: str) -> str:
    """Create ``folder`` if needed and make sure a file can be written there, before any work starts."""
    folder = os.fspath(folder)
    probe = os.path.join(folder, f".prisma-write-test.tmp{os.getpid()}")
    try:
        os.makedirs(folder, exist_ok=True)
        with open(probe, "w") as fh:
            fh.write("ok")
        os.remove(probe)
    except NotADirectoryError as err:
        raise NotADirectoryError(
            f"cannot write {what} to {folder!r}: part of that path is a file, not a folder. Choose another path."
        ) from err
    except OSError as err:
        raise write_error(err, folder, what) from err
    return folder


def remove_stale_temps(folder: str, names: tuple[str, ...] | None = None) -> list[str]:
    """Remove temporary files an interrupted write left in ``folder``; returns them.

    Without ``names`` (a folder that is ours alone: a cache, a checkpoint folder) every ``<name>.tmp<pid>`` and
    safetensors' hidden ``.tmpXXXXXX``; with ``names``, only ``<name>.tmp<pid>`` of those files (a folder the user
    chose, where other programs' temporary files may live).
    """
    removed = []
    root = glob.escape(os.fspath(folder))
    for path in glob.glob(os.path.join(root, "*")) + glob.glob(os.path.join(root, ".tmp*")):
        name = os.path.basename(path)
        if names is not None:
            ours = any(re.fullmatch(re.escape(n) + r"\.tmp\d+", name) for n in names)
        else:
            ours = any(p.match(name) for p in _TEMP_NAMES)
        if os.path.isfile(path) and ours:
            try:
                os.remove(path)
                removed.append(path)
            except OSError:
                pass
    return removed


def _discard(tmp: str) -> None:
    try:
        os.remove(tmp)
    except OSError:
        pass


def atomic_write_text(path: str, text: str, what: str = "a file") -> None:
    """Write ``text`` to ``path`` through a temporary file, synced to disk before it replaces ``path``."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        _discard(tmp)
        if isinstance(err, OSError):
            raise write_error(err, path, what) from err
        raise


def atomic_write_json(path: str, value: Any, indent: int | None = None, what: str = "a JSON file") -> None:
    """``json.dumps(value, indent=indent)`` written with :func:`atomic_write_text`."""
    atomic_write_text(path, json.dumps(value, indent=indent), what)


def atomic_save_safetensors(
    tensors: Mapping[str, Any], path: str, metadata: dict[str, str] | None = None, what: str = "weights",
    framework: str = "pt",
) -> None:
    """Torch (or, with ``framework="numpy"``, numpy) ``tensors`` and string ``metadata`` written as safetensors
    to ``path`` via a temporary file; readable by the group and others as the umask allows (safetensors alone
    leaves 0600)."""
    if framework == "numpy":
        from safetensors.numpy import save_file
    else:
        from safetensors.torch import save_file

    tmp = f"{path}.tmp{os.getpid()}"
    try:
        save_file(dict(tensors), tmp, metadata=metadata)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as err:
        _discard(tmp)
        if isinstance(err, OSError):
            raise write_error(err, path, what) from err
        if isinstance(err, Exception):
            mapped = safetensors_write_error(err, path, what)
            if mapped is not err:
                raise mapped from err
        raise


def _size(path: str) -> str:
    try:
        return f"{os.path.getsize(path)} bytes"
    except OSError:
        return "unreadable"


def read_json(path: str, what: str, fix: str) -> Any:
    """The JSON value in ``path``; a truncated or garbled file is a :class:`DamagedFileError` naming it.

    A missing file raises ``FileNotFoundError`` (callers say what belongs there).
    """
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except PermissionError:
        raise read_denied(path, what) from None
    except UnicodeDecodeError as err:
        raise DamagedFileError(f"{path} is damaged: {what} is not text ({err}; {_size(path)}). {fix}") from None
    try:
        return json.loads(text)
    except ValueError as err:
        raise DamagedFileError(
            f"{path} is damaged: {what} is not valid JSON ({err}; {_size(path)}, truncated or overwritten). {fix}"
        ) from None


def read_safetensors(path: str, what: str, fix: str, framework: str = "pt") -> tuple[dict[str, Any], dict[str, str]]:
    """``(tensors, metadata)`` of a safetensors file; an empty, truncated or garbled one is a
    :class:`DamagedFileError` naming it."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework=framework) as fh:
            metadata = dict(fh.metadata() or {})
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    except FileNotFoundError:
        raise
    except PermissionError:
        raise read_denied(path, what) from None
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types for bad headers
        raise DamagedFileError(
            f"{path} is damaged: {what} cannot be read as safetensors ({err}; {_size(path)}: empty, truncated "
            f"or not a safetensors file). {fix}"
        ) from None
    return tensors, metadata


def check_safetensors(path: str, what: str, fix: str) -> None:
    """Open a safetensors file's header without reading its tensors: an empty, truncated (the header's
    tensors past the end of the file) or garbled one is a :class:`DamagedFileError` naming it."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as fh:
            list(fh.keys())
    except FileNotFoundError:
        raise
    except PermissionError:
        raise read_denied(path, what) from None
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types for bad headers
        raise DamagedFileError(
            f"{path} is damaged: {what} cannot be read as safetensors ({err}; {_size(path)}: empty, truncated "
            f"or not a safetensors file). {fix}"
        ) from None


def checked_tensors(tensors: Mapping[str, Any], path: str, what: str, fix: str) -> None:
    """Refuse NaN or inf in loaded weights, naming the file and the tensor."""
    from .validate import check_finite

    for key, value in tensors.items():
        try:
            check_finite(value, f"{key} in {path}", f"{what} must be finite. {fix}")
        except ValueError as err:
            raise DamagedFileError(str(err)) from None

