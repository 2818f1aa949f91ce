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

import os
import threading
import time
import urllib.error
import urllib.request


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
