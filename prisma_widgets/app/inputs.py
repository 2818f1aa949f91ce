"""What the workshop app takes in: models by name and uploaded images, with errors a reader understands."""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Any

import numpy as np

#: the offline models shipped in the wheel, offered first in the model menu
BUNDLED_MODELS: tuple[str, ...] = ("mouse-vit", "mouse-clip")
#: what the file input accepts (PIL format names, and the browser's ``accept`` filter)
IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG")
ACCEPT = ".png,.jpg,.jpeg,image/png,image/jpeg"
#: uploads larger than this are refused before decoding
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: and so are images with more pixels than this (a decompression bomb guard)
MAX_PIXELS = 40_000_000


class BadImageError(ValueError):
    """An upload that is not a PNG or JPEG image the app can read (the message says why)."""


class ModelLoadError(RuntimeError):
    """A model name that could not be loaded (the message says why and what to do)."""


def read_image(data: bytes | None, filename: str | None = None) -> np.ndarray:
    """Decode an uploaded PNG or JPEG into uint8 ``[H, W, 3]`` RGB, or raise :class:`BadImageError`.

    Example:
        >>> import io
        >>> from PIL import Image
        >>> buf = io.BytesIO(); Image.new("RGB", (5, 4), "red").save(buf, format="PNG")
        >>> read_image(buf.getvalue(), "red.png").shape
        (4, 5, 3)
        >>> read_image(b"hello", "notes.txt")
        Traceback (most recent call last):
        ...
        prisma_widgets.app.inputs.BadImageError: notes.txt is not a PNG or JPEG image the app can read.
    """
    from PIL import Image, UnidentifiedImageError

    name = filename or "the upload"
    if not data:
        raise BadImageError(f"{name} is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise BadImageError(f"{name} is {len(data) / 2**20:.1f} MiB; the limit is {MAX_UPLOAD_BYTES // 2**20} MiB.")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in IMAGE_FORMATS:
                raise BadImageError(f"{name} is a {img.format} image; upload a PNG or JPEG.")
            if img.width * img.height > MAX_PIXELS:
                raise BadImageError(f"{name} is {img.width}x{img.height} pixels; that is too large.")
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except BadImageError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise BadImageError(f"{name} is not a PNG or JPEG image the app can read.") from err


def default_image() -> np.ndarray:
    """The image shown before anything is uploaded: a synthetic scene the mice were trained on (uint8 64x64x3)."""
    from prisma_widgets import zoo

    return zoo.scenes(1, seed=0).images[0]


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the model hub (``HF_ENDPOINT``, default huggingface.co) answers a TCP connection quickly."""
    import os
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _check_name(name: str) -> None:
    """Refuse a name that is neither a timm model nor an open_clip spec, before any download."""
    from prisma_widgets.hooked.loading import OPEN_CLIP_PREFIX, is_timm_name, unknown_model_error

    if not name.startswith(OPEN_CLIP_PREFIX) and not is_timm_name(name):
        raise ModelLoadError(str(unknown_model_error(name, BUNDLED_MODELS)))


@lru_cache(maxsize=4)
def load_model(name: str) -> Any:
    """``pw.load(name)``, cached, with a :class:`ModelLoadError` that says what went wrong.

    Bundled mice always load. A hub name needs the network, or, in offline mode (``PRISMA_WIDGETS_OFFLINE=1``
    or ``HF_HUB_OFFLINE=1``), its weights in the local cache (then nothing is fetched). Without a network
    the answer comes at once, not after the hub client's retries.
    """
    import prisma_widgets as pw

    name = name.strip()
    bundled = ", ".join(BUNDLED_MODELS)
    if not name:
        raise ModelLoadError("type a model name, e.g. vit_base_patch16_224 or open_clip:ViT-B-32/openai")
    if name not in BUNDLED_MODELS:
        _check_name(name)
    if name not in BUNDLED_MODELS and not pw.offline() and not hub_reachable():
        raise ModelLoadError(
            f"{name!r} needs its pretrained weights, but the model hub cannot be reached: this machine "
            f"seems to be offline. The bundled models ({bundled}) work without a network; weights already "
            "in the local cache load when the app is started with PRISMA_WIDGETS_OFFLINE=1."
        )
    try:
        return pw.load(name)
    except pw.OfflineError as err:
        raise ModelLoadError(f"{name!r} could not be loaded offline: {err}") from err
    except (ValueError, KeyError, RuntimeError, pw.UnsupportedModelError) as err:
        raise ModelLoadError(f"{name!r} could not be loaded: {err}") from err
