"""Checks on what users hand the public API: numbers, arrays and tensors.

Each check returns the value in a clean form (an ``int``, a ``float``) or raises with a message that names the
argument, what it got, what it expects and a value that works. A wrong kind of value (a string, a bool, a
list) is a ``TypeError``; a value of the right kind but out of range (zero, negative, NaN, a fraction where a
count belongs) is a ``ValueError``. Public functions call these first, before they touch a file.

Example:
    >>> from prisma_widgets.validate import check_int, check_float, check_finite
    >>> check_int(32, "batch_size", at_least=1)
    32
    >>> check_int(1e4, "steps", at_least=1)        # a whole float is a count too
    10000
    >>> check_int(-4, "batch_size", at_least=1, example=32)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be an integer >= 1; got -4. Pass e.g. batch_size=32.
    >>> check_float(float("nan"), "lr", above=0, example=1e-3)
    Traceback (most recent call last):
    ...
    ValueError: lr must be a finite number > 0; got nan. Pass e.g. lr=0.001.
    >>> import numpy as np
    >>> check_finite(np.array([[0.0, np.nan], [1.0, 2.0]]), "the image", "replace the NaNs first")
    Traceback (most recent call last):
    ...
    ValueError: the image holds 1 non-finite value (1 NaN, 0 inf), the first at index (0, 1); replace the NaNs first
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bounds(at_least: float | None, above: float | None, at_most: float | None) -> str:
    def show(v: float) -> str:
        return str(v) if isinstance(v, int) else f"{v:g}"

    parts = []
    if at_least is not None:
        parts.append(f">= {show(at_least)}")
    if above is not None:
        parts.append(f"> {show(above)}")
    if at_most is not None:
        parts.append(f"<= {show(at_most)}")
    return " and ".join(parts)


def _fix(name: str, example: Any, fix: str | None) -> str:
    if fix:
        return f" {fix}"
    return f" Pass e.g. {name}={example!r}." if example is not None else ""


def check_int(
    value: Any,
    name: str,
    *,
    at_least: int | None = None,
    at_most: int | None = None,
    example: Any = None,
    fix: str | None = None,
    none_ok: bool = False,
) -> int | None:
    """``value`` as an ``int`` within the bounds (a whole float such as ``1e4`` counts); ``None`` when allowed."""
    if value is None and none_ok:
        return None
    if example is None and at_least is not None:
        example = max(at_least, 1) if at_most is None or at_most >= 1 else at_least
    kind = f"an integer {_bounds(at_least, None, at_most)}".rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        none = " or None" if none_ok else ""
        raise TypeError(f"{name} must be {kind}{none}; got {_describe(value)} ({type(value).__name__})."
                        + _fix(name, example, fix))
    if not isinstance(value, numbers.Integral):
        as_float = float(value)
        if not (math.isfinite(as_float) and as_float.is_integer()):
            raise ValueError(f"{name} must be {kind}; got {_describe(value)}." + _fix(name, example, fix))
    number = int(value)
    if (at_least is not None and number < at_least) or (at_most is not None and number > at_most):
        raise ValueError(f"{name} must be {kind}; got {number}." + _fix(name, example, fix))
    return number


def check_float(
    value: Any,
    name: str,
    *,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    example: Any = None,
    fix: str | None = None,
    none_ok: bool = False,
) -> float | None:
    """``value`` as a finite ``float`` within the bounds; ``None`` when allowed."""
    if value is None and none_ok:
        return None
    kind = f"a finite number {_bounds(at_least, above, at_most)}".rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        none = " or None" if none_ok else ""
        raise TypeError(f"{name} must be {kind}{none}; got {_describe(value)} ({type(value).__name__})."
                        + _fix(name, example, fix))
    number = float(value)
    if (
        not math.isfinite(number)
        or (at_least is not None and number < at_least)
        or (above is not None and number <= above)
        or (at_most is not None and number > at_most)
    ):
        raise ValueError(f"{name} must be {kind}; got {_describe(value)}." + _fix(name, example, fix))
    return number


def check_seed(value: Any, name: str = "seed") -> int:
    """A random seed: an integer in ``[0, 2**63)``."""
    return check_int(value, name, at_least=0, at_most=2**63 - 1, example=0,  # type: ignore[return-value]
                     fix=f"Pass a whole number from 0 to 2**63 - 1, e.g. {name}=0.")


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {_describe(value)}")
    return value


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is a bool (numpy's included)."""
    import numpy as np

    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {_describe(value)} ({type(value).__name__})")
    return bool(value)


def check_strings(value: Any, name: str, *, example: str = "['a photo of a cat', 'a photo of a dog']") -> list[str]:
    """A non-empty list of non-empty strings (a single string is refused: it would be read letter by letter)."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of strings; got {_describe(value)} ({type(value).__name__}). "
                        f"Pass e.g. {name}={example}.")
    items = list(value)
    if not items:
        raise ValueError(f"{name} is empty. Pass at least one, e.g. {name}={example}.")
    bad = [i for i, s in enumerate(items) if not isinstance(s, str) or not s.strip()]
    if bad:
        raise ValueError(f"{name}[{bad[0]}] must be a non-empty string; got {_describe(items[bad[0]])}. "
                         f"Pass e.g. {name}={example}.")
    return items


def check_finite(values: Any, what: str, fix: str) -> None:
    """Refuse NaN or inf in a numpy array or torch tensor, naming how many and where the first one sits.

    Integer arrays pass untouched (they cannot hold either).
    """
    import numpy as np

    if hasattr(values, "detach"):  # a torch tensor: reduce where it lives, move one flag
        import torch

        if not values.is_floating_point() and not values.is_complex():
            return
        bad = ~torch.isfinite(values)
        if not bool(bad.any()):
            return
        n_nan = int(torch.isnan(values).sum())
        n_bad = int(bad.sum())
        first = tuple(int(i) for i in bad.nonzero()[0].tolist())
    else:
        array = np.asarray(values)
        if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.complexfloating):
            return
        bad = ~np.isfinite(array)
        if not bad.any():
            return
        n_nan = int(np.isnan(array).sum())
        n_bad = int(bad.sum())
        first = tuple(int(i) for i in np.argwhere(bad)[0])
    plural = "s" if n_bad > 1 else ""
    raise ValueError(
        f"{what} holds {n_bad} non-finite value{plural} ({n_nan} NaN, {n_bad - n_nan} inf), the first at index "
        f"{first if len(first) != 1 else first[0]}; {fix}"
    )


def check_device(device: Any) -> Any:
    """``device`` as a ``torch.device`` that exists on this machine."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:0', 'mps' or a torch.device; got {_describe(device)}") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device={str(dev)!r} but torch sees no CUDA GPU on this machine; pass device='cpu'")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device={str(dev)!r} but torch sees {count} CUDA GPU(s); pass an index below {count}")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device='mps' but Apple's Metal backend is not available here; pass device='cpu'")
    return dev
