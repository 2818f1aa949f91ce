"""AttentionGrid on a clip: every token frame side by side, so one query's attention over all frames shows at once.

A video model's tokens are laid out as a **film strip**: the prefix tokens, then one row of the strip holds row
``r`` of every frame, frame after frame (position ``(r, t * cols + c)`` of a ``rows x (frames * cols)`` grid is the
patch ``(t, r, c)``), over the frames' images side by side. The grid's thumbnails, hover and detail view then work
unchanged: hover a query at ``(t, r, c)`` and every thumbnail shows its attention over the keys of every frame.

Joint space-time attention (VideoMAE, ViViT) is one ``[tokens, tokens]`` pattern per head. Divided attention
(TimeSformer: a temporal and a spatial attention per block, hooked as ``attn_time.hook_pattern`` and
``attn.hook_pattern``) is shown one kind at a time, each spread over the clip's tokens:

* ``"time"``: a patch query attends to the same patch in every frame (its temporal pattern); the CLS token takes
  no temporal attention (its row is 1 on itself);
* ``"space"``: a patch query attends within its own frame (CLS included); CLS attends in every frame, and the
  model averages those, so its row is each frame's CLS row divided by the frames.

Every row sums to 1 in both cases.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .codec import to_numpy

ATTENTIONS = ("joint", "space", "time")


def strip_order(cfg: Any) -> list[int]:
    """Model token positions in film-strip order: prefix tokens, then rows of the strip (row, frame, column)."""
    rows, cols = cfg.grid
    strip = [cfg.token_index(t, r, c) for r in range(rows) for t in range(cfg.frames) for c in range(cols)]
    return list(range(cfg.n_prefix_tokens)) + strip


def strip_images(frames: np.ndarray) -> np.ndarray:
    """Clips' token-frame images ``[B, F, H, W, 3]`` side by side: ``[B, H, F * W, 3]``."""
    b, f, h, w, ch = frames.shape
    return np.ascontiguousarray(frames.transpose(0, 2, 1, 3, 4).reshape(b, h, f * w, ch))


def divided_kind(model: Any) -> bool:
    """Whether the model hooks a temporal attention apart from the spatial one (divided space-time attention)."""
    return any(name.endswith("attn_time.hook_pattern") for name in model.hook_names())


def expand_divided(pattern: np.ndarray, cfg: Any, kind: str) -> np.ndarray:
    """A divided attention's pattern spread over the clip's tokens, ``[B, H, N, N]`` in model token order.

    ``kind="time"``: ``pattern`` is ``[B, P, H, T, T]`` (per patch, over frames); ``"space"``: ``[B, T, H, 1 + P,
    1 + P]`` (per frame, the CLS token first). See the module docstring for where the CLS rows go.
    """
    rows, cols = cfg.grid
    n_patch, frames, prefix = rows * cols, cfg.frames, cfg.n_prefix_tokens
    tok = np.array([[cfg.token_index(t, p // cols, p % cols) for p in range(n_patch)] for t in range(frames)])
    if kind == "time":
        b, _, h, _, _ = pattern.shape
        out = np.zeros((b, h, cfg.n_tokens, cfg.n_tokens), np.float32)
        for i in range(prefix):
            out[:, :, i, i] = 1.0
        for p in range(n_patch):
            q = tok[:, p]  # the patch in every frame
            out[:, :, q[:, None], q[None, :]] = pattern[:, p]
        return out
    b, _, h, _, _ = pattern.shape
    out = np.zeros((b, h, cfg.n_tokens, cfg.n_tokens), np.float32)
    for t in range(frames):
        keys = np.concatenate([np.arange(prefix), tok[t]])  # this frame's CLS and patches
        out[:, :, tok[t][:, None], keys[None, :]] = pattern[:, t, :, prefix:, :]
        out[:, :, :prefix, tok[t]] += pattern[:, t, :, :prefix, prefix:] / frames
        out[:, :, :prefix, :prefix] += pattern[:, t, :, :prefix, :prefix] / frames
    return out


def clip_grid_parts(model: Any, clips: Any, layers: list[int], rollout: bool, attention: str | None
                    ) -> dict[str, Any]:
    """What :class:`~prisma_widgets.widgets.attention_grid.AttentionGrid` shows of a video model's clips, in
    film-strip order: ``patterns`` ``[B, L, H, N, N]``, ``rollout`` or ``None``, ``display`` ``[B, H, F * W, 3]``,
    ``grid`` ``(rows, frames * cols)``, ``token_labels``, ``attention``."""
    import torch

    from ..analysis.attention import attention_rollout
    from ..hooked.video import as_clip_list

    cfg = model.cfg
    divided = divided_kind(model)
    attention = attention or ("space" if divided else "joint")
    if attention not in ATTENTIONS or (attention == "joint") == divided:
        allowed = "'space' or 'time' (divided space-time attention)" if divided else "'joint' (or None)"
        raise ValueError(f"attention={attention!r} does not fit this model: pass attention={allowed}")
    if rollout and divided:
        raise ValueError("rollout needs one attention per block; this model divides space and time: pass rollout=False")
    batch = as_clip_list(clips)
    needed = list(range(max(layers) + 1)) if rollout else list(layers)
    hook = "attn_time.hook_pattern" if attention == "time" else "attn.hook_pattern"
    names = {f"blocks.{i}.{hook}" for i in needed}
    with torch.no_grad():
        _, cache = model.run_with_cache(batch, names_filter=lambda n: n in names)
    per_layer = []
    for i in needed:
        p = to_numpy(cache[f"blocks.{i}.{hook}"]).astype(np.float32)
        per_layer.append(expand_divided(p, cfg, attention) if divided else p)
    full = np.stack(per_layer, 1)  # [B, L, H, N, N], model token order
    roll = attention_rollout(full)[:, [needed.index(i) for i in layers]] if rollout else None
    order = strip_order(cfg)
    ix = np.ix_(order, order)
    shown = full[:, [needed.index(i) for i in layers]][..., ix[0], ix[1]]
    labels = [model.token_labels()[i] for i in order]
    frames = model.display_images(batch)[:, :: cfg.tubelet_size]  # one image per token frame
    return {"patterns": shown, "rollout": None if roll is None else roll[..., ix[0], ix[1]],
            "display": strip_images(frames), "grid": (cfg.grid[0], cfg.frames * cfg.grid[1]),
            "token_labels": labels, "attention": attention}


def strip_position(frame: int, row: int, col: int, grid: tuple[int, int], frames: int, n_prefix: int) -> int:
    """The film-strip token position of patch ``(frame, row, col)`` (``grid`` is the strip's).

    Example:
        >>> strip_position(1, 0, 2, (4, 16), 4, 0)   # frame 1, row 0, col 2 of 4x4 frames
        6
    """
    cols = grid[1] // max(frames, 1)
    return n_prefix + row * grid[1] + frame * cols + col


def strip_frame(position: int, grid: tuple[int, int], frames: int, n_prefix: int) -> int:
    """The token frame of a film-strip position (-1 for a prefix token)."""
    if position < n_prefix:
        return -1
    cols = grid[1] // max(frames, 1)
    return ((position - n_prefix) % grid[1]) // cols
