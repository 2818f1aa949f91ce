"""Attention analyses on patterns: attention rollout (more to come: per-head distance and entropy)."""

from __future__ import annotations

import numpy as np

from ..validate import check_finite, check_float


def attention_rollout(patterns: np.ndarray, residual: float = 0.5) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema, 2020) after every layer.

    ``patterns``: ``[..., layers, heads, tokens, tokens]``. Each layer's head-mean is mixed with the
    identity (``residual``) for the skip connection, rows renormalised, and the layers multiplied in
    order. Returns ``[..., layers, tokens, tokens]``: entry ``l`` is the rollout through layer ``l``.

    Example:
        >>> import numpy as np

from ..validate import check_finite, check_float
        >>> uniform = np.full((2, 3, 4, 4), 0.25)   # 2 layers, 3 heads, 4 tokens
        >>> attention_rollout(uniform)[-1].sum(-1)  # rows stay distributions
        array([1., 1., 1., 1.], dtype=float32)
    """
    residual = check_float(residual, "residual", at_least=0, at_most=1, example=0.5,
                           fix="Pass the weight of the skip connection, in [0, 1], e.g. residual=0.5.")
    a = np.asarray(patterns, dtype=np.float64)
    if a.ndim < 4 or a.shape[-1] != a.shape[-2] or 0 in a.shape:
        raise ValueError(f"patterns must be [..., layers, heads, tokens, tokens]; got shape {list(a.shape)}")
    check_finite(a, "the attention patterns", "patterns are probabilities: check the model and its input")
    a = a.mean(axis=-3)  # [..., L, T, T]
    n = a.shape[-1]
    eye = np.eye(n)
    out = np.empty_like(a)
    acc = np.broadcast_to(eye, a.shape[:-3] + (n, n)).copy()
    for layer in range(a.shape[-3]):
        mixed = residual * eye + (1.0 - residual) * a[..., layer, :, :]
        mixed = mixed / mixed.sum(axis=-1, keepdims=True)
        acc = mixed @ acc
        out[..., layer, :, :] = acc
    return out.astype(np.float32)
