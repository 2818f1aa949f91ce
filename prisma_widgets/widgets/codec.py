"""The binary array codec and uint8 quantisation every widget uses.

* An array travels in a synced trait as ``{"view": memoryview, "dtype": str, "shape": [int, ...]}``.
  ipywidgets lifts the memoryview out of the JSON and sends it as a binary buffer (no base64, no copies in
  the JSON); the TypeScript side (``js/src/shared/codec.ts``) turns it back into a typed array, honouring
  the buffer's ``byteOffset``.
* Quantisation to ``uint8`` with one ``float32`` scale per row (:func:`quantize_rows`): the value ``x`` is
  sent as ``q = round(x / s)`` with ``s = max(row) / 255`` and read back as ``q * s``, so
  ``|x - q * s| <= s / 2 = max(row) / 510``. Colour maps have 256 entries, so when the colour range is the
  row's own range this is at most half a colour step: nothing visible is lost.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import traitlets

#: dtypes the TypeScript codec understands (``js/src/shared/codec.ts``)
SUPPORTED_DTYPES = (
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "float16",
    "float32",
    "float64",
)


# --------------------------------------------------------------------------------------------------
# codec
# --------------------------------------------------------------------------------------------------
def to_numpy(x: Any) -> np.ndarray:
    """A numpy array from a numpy array, a torch tensor (any device, any dtype) or a nested list."""
    if isinstance(x, np.ndarray):
        return x
    detach = getattr(x, "detach", None)
    if detach is not None:  # torch.Tensor, without importing torch
        t = detach().cpu()
        if str(t.dtype) in ("torch.bfloat16",):
            t = t.float()
        return t.numpy()
    return np.asarray(x)


def encode_array(x: Any, dtype: str | np.dtype | None = None) -> dict[str, Any]:
    """Pack an array for a synced trait: ``{"view": memoryview, "dtype": "float32", "shape": [...]}``.

    The bytes are C-contiguous and little-endian, whatever the input. ``dtype`` casts first.
    """
    a = to_numpy(x)
    if dtype is not None:
        a = a.astype(dtype, copy=False)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    name = a.dtype.name
    if name not in SUPPORTED_DTYPES:
        raise TypeError(f"dtype {name!r} cannot be sent to the front end; use one of {SUPPORTED_DTYPES}")
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    return {"view": memoryview(a.reshape(-1).view(np.uint8)), "dtype": name, "shape": [int(s) for s in a.shape]}


def decode_array(obj: dict[str, Any] | None) -> np.ndarray | None:
    """Inverse of :func:`encode_array`. ``view`` may be a memoryview, bytes, bytearray or base64 text."""
    if obj is None or not obj:
        return None
    view = obj["view"]
    if isinstance(view, str):
        raw: bytes | memoryview = base64.b64decode(view)
    elif isinstance(view, memoryview):
        raw = view.cast("B") if view.format != "B" or view.ndim != 1 else view
    else:
        raw = bytes(view)
    dt = np.dtype(obj["dtype"]).newbyteorder("<")
    return np.frombuffer(raw, dtype=dt).reshape(obj["shape"]).astype(dt.newbyteorder("="), copy=False)


def ArrayTrait(**kwargs: Any) -> traitlets.Dict:  # noqa: N802  (reads like a trait type)
    """A synced trait holding one encoded array (or ``{}`` for none)."""
    return traitlets.Dict(default_value={}, **kwargs).tag(sync=True)


# --------------------------------------------------------------------------------------------------
# quantisation
# --------------------------------------------------------------------------------------------------
def quantize_rows(x: Any, levels: int = 255) -> tuple[np.ndarray, np.ndarray]:
    """Quantise non-negative values along the last axis to ``uint8``, one ``float32`` scale per row.

    Returns ``(q, scale)`` with ``q.shape == x.shape`` and ``scale.shape == x.shape[:-1]``. The value is
    recovered as ``q * scale[..., None]`` with ``|error| <= scale / 2 = max(row) / 510`` (plus float32
    rounding, below ``1e-7`` relative). A row of zeros gets ``scale = 0``. Negative inputs are clipped
    to zero (attention patterns and probabilities never have them).
    """
    a = np.asarray(to_numpy(x), dtype=np.float32)
    a = np.clip(a, 0.0, None)
    top = a.max(axis=-1) if a.shape[-1] else np.zeros(a.shape[:-1], np.float32)
    scale = (top / np.float32(levels)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1.0))
    q = np.rint(a / safe[..., None])
    q = np.clip(q, 0, levels).astype(np.uint8)
    return q, scale


def dequantize_rows(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``q * scale`` as float32 (inverse of :func:`quantize_rows`, up to its bound)."""
    return q.astype(np.float32) * np.asarray(scale, dtype=np.float32)[..., None]
