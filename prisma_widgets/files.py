"""Atomic file writes: a reader (another process, or the next run after a crash) sees the old file or the new
one, never half of one. Each writes a temporary file next to the target and moves it over with ``os.replace``.

Example:
    >>> import os, tempfile
    >>> from prisma_widgets.files import atomic_write_json, atomic_write_text
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "state.json")
    >>> atomic_write_json(path, {"step": 3})
    >>> open(path).read()
    '{"step": 3}'
    >>> atomic_write_text(path, "replaced")
    >>> os.listdir(folder.name)                  # no temporary file left behind
    ['state.json']
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, synced to disk before it replaces ``path``."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: str, value: Any, indent: int | None = None) -> None:
    """``json.dumps(value, indent=indent)`` written with :func:`atomic_write_text`."""
    atomic_write_text(path, json.dumps(value, indent=indent))


def atomic_save_safetensors(
    tensors: Mapping[str, torch.Tensor], path: str, metadata: dict[str, str] | None = None
) -> None:
    """Torch ``tensors`` (and string ``metadata``) written as safetensors to ``path`` via ``path + ".tmp"``."""
    from safetensors.torch import save_file

    tmp = path + ".tmp"
    save_file(dict(tensors), tmp, metadata=metadata)
    os.replace(tmp, path)
