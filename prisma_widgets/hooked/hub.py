"""Can the model hub be reached? One short probe, so ``pw.load`` falls back in seconds without a network.

Without it, a machine with no network (and no ``PRISMA_WIDGETS_OFFLINE``) spends about a minute in the hub
client's retries before a download gives up. :func:`hub_reachable` asks the hub once, with a short timeout, in a
thread (so a hanging name lookup cannot hold it up either); any HTTP answer, even an error page, means reachable.
The answer is remembered for a minute.

Example:
    >>> from prisma_widgets.hooked.hub import hub_reachable
    >>> hub_reachable("http://127.0.0.1:9", timeout=1.0)     # nothing listens on port 9
    False
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator


def _probe_timeout() -> float:
    try:
        value = float(os.environ.get("PRISMA_WIDGETS_HUB_TIMEOUT", "") or 3.0)
    except ValueError:
        return 3.0
    return value if 0 < value < 3600 else 3.0


#: seconds the probe waits for the hub's first answer (a slow network: set PRISMA_WIDGETS_HUB_TIMEOUT=30)
PROBE_TIMEOUT = _probe_timeout()
_REMEMBER = 60.0
_answers: dict[str, tuple[float, bool]] = {}


def hub_endpoint() -> str:
    """The Hugging Face hub endpoint the downloads use (``HF_ENDPOINT``, as huggingface_hub read it)."""
    try:
        from huggingface_hub import constants

        return str(constants.ENDPOINT)
    except ImportError:
        return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def _ask(url: str, timeout: float, answer: list[bool]) -> None:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            answer.append(True)
    except urllib.error.HTTPError:  # the server answered, if only with an error
        answer.append(True)
    except (OSError, ValueError):
        answer.append(False)


def hub_reachable(endpoint: str | None = None, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether ``endpoint`` (default: the hub's) answers an HTTP request within ``timeout`` seconds."""
    url = endpoint or hub_endpoint()
    now = time.monotonic()
    known = _answers.get(url)
    if known is not None and now - known[0] < _REMEMBER:
        return known[1]
    answer: list[bool] = []
    probe = threading.Thread(target=_ask, args=(url, timeout, answer), daemon=True)
    probe.start()
    probe.join(timeout + 0.5)
    reachable = bool(answer and answer[0])
    _answers[url] = (time.monotonic(), reachable)
    return reachable


def offline() -> bool:
    """True when offline mode is switched on: ``PRISMA_WIDGETS_OFFLINE=1`` or Hugging Face's ``HF_HUB_OFFLINE=1``.

    Example:
        >>> import os, prisma_widgets as pw
        >>> before = os.environ.get("PRISMA_WIDGETS_OFFLINE")
        >>> os.environ["PRISMA_WIDGETS_OFFLINE"] = "1"; pw.offline()
        True
        >>> _ = os.environ.pop("PRISMA_WIDGETS_OFFLINE") if before is None else os.environ.update(PRISMA_WIDGETS_OFFLINE=before)
    """
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("PRISMA_WIDGETS_OFFLINE", "HF_HUB_OFFLINE"))


def stay_local(source: str | None = None) -> bool:
    """Whether a read from the hub should use the local cache only: offline mode, a ``source`` that is a local
    folder, or a hub that did not answer one short probe (so no client spends a minute in retries)."""
    if offline() or (source is not None and os.path.isdir(source)):
        return True
    return not hub_reachable()


@contextlib.contextmanager
def cache_only(active: bool = True) -> Iterator[None]:
    """Inside, while ``active``, Hugging Face hub downloads read the local cache only (what fetched earlier
    still loads; the rest fails at once with an ``OSError``). huggingface_hub reads ``HF_HUB_OFFLINE`` once, at
    import, so this sets its constant."""
    if not active:
        yield
        return
    try:
        from huggingface_hub import constants
    except ImportError:
        yield
        return
    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


_DAMAGED = ("SafetensorError", "UnpicklingError", "JSONDecodeError")


def damaged_download(name: str, err: BaseException) -> Exception | None:
    """A :class:`~prisma_widgets.files.DamagedFileError` naming ``name`` and the fix when ``err`` (or what caused
    it) says a downloaded file in the local hub cache is damaged (a truncated or garbled safetensors, pickle or
    JSON file); else ``None``."""
    from ..files import DamagedFileError

    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        text = f"{type(cause).__name__}: {cause}"
        if type(cause).__name__ in _DAMAGED or "PytorchStreamReader" in text or "not a valid JSON file" in text:
            return DamagedFileError(
                f"a downloaded file of {name!r} is damaged ({text}). Delete the local copy (`hf cache delete`, or "
                "remove its models--<user>--<name> folder from the hub cache) and load it again online.")
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None
