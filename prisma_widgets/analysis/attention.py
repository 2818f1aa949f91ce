"""Attention analyses on patterns: attention rollout, and per-head summaries (mean attention distance and
entropy), the standard way to tell local from global heads in a ViT."""

from __future__ import annotations

from collections.abc import Sequence

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


def head_summaries(patterns: np.ndarray, grid: Sequence[int], n_prefix_tokens: int) -> dict[str, np.ndarray]:
    """Per-head summaries of attention patterns ``[..., heads, tokens, tokens]``, over the patch queries.

    * ``"distance"``: mean attention distance in patches (Dosovitskiy et al., 2021): for each patch query,
      the Euclidean distance between patch centres weighted by its attention to the patches (renormalised
      over them: prefix tokens have no place on the grid), averaged over patch queries;
    * ``"entropy"``: the entropy (nats) of each patch query's whole attention row, prefix tokens included,
      averaged over patch queries (0: one token; ``log(tokens)``: uniform).

    Returns both as ``[..., heads]`` (float32); average over images yourself.

    Example:
        >>> import numpy as np
        >>> eye = np.eye(5)[None]                     # 1 head, CLS + 2x2 patches, each token on itself
        >>> s = head_summaries(eye, (2, 2), 1)
        >>> s["distance"].tolist(), s["entropy"].tolist()
        ([0.0], [0.0])
        >>> uniform = np.full((1, 5, 5), 0.2)
        >>> round(float(head_summaries(uniform, (2, 2), 1)["entropy"][0]), 4) == round(float(np.log(5)), 4)
        True
    """
    p = np.asarray(patterns)
    p = p if p.dtype in (np.float32, np.float64) else p.astype(np.float32)
    rows, cols = int(grid[0]), int(grid[1])
    n = int(n_prefix_tokens)
    if p.shape[-1] != n + rows * cols or p.shape[-2] != p.shape[-1]:
        raise ValueError(f"patterns of {p.shape[-1]} tokens do not fit {n} prefix tokens + a {rows}x{cols} grid")
    patch = p[..., n:, :]  # patch queries, every key
    r, c = np.divmod(np.arange(rows * cols), cols)
    dist = np.hypot(r[:, None] - r[None, :], c[:, None] - c[None, :]).astype(p.dtype)  # [patch, patch]
    to_patches = patch[..., n:]
    mass = to_patches.sum(-1, keepdims=True)
    weights = np.divide(to_patches, mass, out=np.zeros_like(to_patches), where=mass > 0)
    distance = np.einsum("...qk,qk->...q", weights, dist).mean(-1)
    safe = np.where(patch > 0, patch, 1.0)
    entropy = np.abs((patch * np.log(safe)).sum(-1).mean(-1))  # abs: no "-0.0"
    return {"distance": distance.astype(np.float32), "entropy": entropy.astype(np.float32)}
