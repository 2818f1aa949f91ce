"""What an SAE, a transcoder or a crosscoder trains (and is evaluated) on: the data, its kind and its hooks.

``pw.train_sae`` takes

- a tensor ``[rows, d]`` or a one-hook :class:`ActivationStore`: an SAE;
- a pair ``(inputs [rows, d_in], targets [rows, d_out])``, or a store of two hooks with ``kind="transcoder"``:
  a transcoder reading the first hook and predicting the second;
- a tensor ``[rows, n_layers, d]``, or a store of several hooks of one width with ``kind="crosscoder"``: a
  crosscoder over those layers.

Whatever the form, the rows reach the training loop as one 2-D table (the input's columns, then a
transcoder's target columns), so the seeded order, checkpoints and resume are the same for every kind.

Example:
    >>> import torch
    >>> from prisma_widgets.sae.family_data import resolve_training_data
    >>> td = resolve_training_data((torch.zeros(4, 3), torch.zeros(4, 5)), None, None)
    >>> td.kind, td.d_in, td.d_out, tuple(td.source.shape)
    ('transcoder', 3, 5, (4, 8))
    >>> resolve_training_data(torch.zeros(4, 2, 3), None, None).kind
    'crosscoder'
    >>> check_transcoder_pair("blocks.2.hook_mlp_out", "blocks.2.ln2.hook_normalized")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: a transcoder reads a hook and predicts a later one, but ... (input first), e.g. to stand in for ...
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..validate import check_choice
from .config import KINDS
from .store import ActivationStore
from .train_checks import check_training_data

#: the order in which a block's hooks fire
BLOCK_ORDER = ("hook_resid_pre", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k", "attn.hook_v",
               "attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z", "hook_attn_out", "hook_resid_mid",
               "ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out", "hook_resid_post")


@dataclass
class TrainingData:
    """The rows as one table (``source``: a 2-D tensor or a store view) and what they are."""

    source: Any
    kind: str
    d_in: int
    n_layers: int = 1
    d_out: int | None = None
    hooks: list[str] | None = None

    @property
    def width_in(self) -> int:
        return self.d_in * self.n_layers

    @property
    def hook(self) -> str | None:
        return self.hooks[0] if self.hooks else None

    @property
    def hook_out(self) -> str | None:
        return self.hooks[1] if self.kind == "transcoder" and self.hooks else None


def _position(hook: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"blocks\.(\d+)\.(.+)", hook)
    if m is None:
        return None
    rest = m.group(2)
    return int(m.group(1)), BLOCK_ORDER.index(rest) if rest in BLOCK_ORDER else -1


def check_transcoder_pair(hook_in: str, hook_out: str) -> None:
    """Refuse a transcoder whose output hook does not come after its input hook in the forward pass."""
    if hook_in == hook_out:
        raise ValueError(f"a transcoder reads one hook and predicts another, but both are {hook_in!r}; to "
                         "reconstruct a hook, train an SAE (kind='sae')")
    a, b = _position(hook_in), _position(hook_out)
    if a is None or b is None or -1 in (a[1], b[1]):
        return  # hooks outside the blocks, or unknown to this table: the model checks them when it runs
    if b <= a:
        layer = b[0]
        raise ValueError(f"a transcoder reads a hook and predicts a later one, but {hook_out!r} comes before "
                         f"{hook_in!r} in the forward pass. Pass hooks=[{hook_out!r}, {hook_in!r}] (input first), "
                         f"e.g. to stand in for block {layer}'s MLP.")


def _names(hooks: Sequence[str] | None, count: int, what: str) -> list[str] | None:
    if hooks is None:
        return None
    names = [hooks] if isinstance(hooks, str) else list(hooks)
    if len(names) != count or not all(isinstance(h, str) for h in names):
        raise ValueError(f"{what} takes {count} hook names (to record in its config); got {hooks!r}")
    return names


def resolve_training_data(data: Any, kind: str | None, hooks: Sequence[str] | None) -> TrainingData:
    """Check ``data`` against ``kind`` (``None``: inferred) and ``hooks``, and give its rows as one table."""
    if kind is not None:
        kind = check_choice(kind, "kind", KINDS)
    if isinstance(data, ActivationStore):
        return _from_store(data, kind, hooks)
    if isinstance(data, (tuple, list)):
        if kind not in (None, "transcoder") or len(data) != 2:
            raise TypeError(f"a pair of tensors (inputs, targets) trains a transcoder; got {len(data)} item(s) with "
                            f"kind={kind!r}. Pass (inputs [rows, d_in], targets [rows, d_out]), or one tensor.")
        x, y = data
        for part, name in ((x, "inputs"), (y, "targets")):
            try:
                check_training_data(part)
            except (TypeError, ValueError) as err:
                raise type(err)(f"the transcoder's {name}: {err}") from None
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"the transcoder's inputs have {x.shape[0]} rows but its targets {y.shape[0]}; pass one "
                             "target row per input row (the same tokens of the same images)")
        names = _names(hooks, 2, "a transcoder")
        if names:
            check_transcoder_pair(*names)
        table = torch.cat([x.float(), y.float()], dim=1)
        return TrainingData(table, "transcoder", int(x.shape[1]), d_out=int(y.shape[1]), hooks=names)
    if isinstance(data, torch.Tensor) and data.ndim == 3:
        if kind not in (None, "crosscoder"):
            raise ValueError(f"a tensor [rows, n_layers, d] {list(data.shape)} trains a crosscoder, not a {kind}; "
                             "pass kind='crosscoder' (or a 2-D tensor [rows, d] for an SAE)")
        if data.shape[1] < 2:
            raise ValueError(f"a crosscoder reads two layers or more; got {data.shape[1]} in {list(data.shape)}. "
                             "For one layer, train an SAE on a 2-D tensor [rows, d].")
        check_training_data(data.reshape(data.shape[0], -1))
        names = _names(hooks, data.shape[1], f"a crosscoder over {data.shape[1]} layers")
        return TrainingData(data.reshape(data.shape[0], -1), "crosscoder", int(data.shape[2]),
                            n_layers=int(data.shape[1]), hooks=names)
    check_training_data(data)
    if kind == "transcoder":
        raise TypeError("a transcoder trains on pairs: pass (inputs [rows, d_in], targets [rows, d_out]), or a "
                        "store of two hooks (pw.cache_activations(model, images, [hook_in, hook_out], path))")
    if kind == "crosscoder":
        raise TypeError("a crosscoder trains on several layers at once: pass a tensor [rows, n_layers, d], or a store "
                        "of several hooks (pw.cache_activations(model, images, [hook_a, hook_b], path))")
    names = _names(hooks, 1, "an SAE")
    return TrainingData(data, "sae", int(data.shape[1]), hooks=names)


def _from_store(store: ActivationStore, kind: str | None, hooks: Sequence[str] | None) -> TrainingData:
    view = store.select(hooks) if hooks is not None else store
    names, widths = view.hooks, view.widths
    if kind is None:
        if len(names) > 1:
            raise ValueError(
                f"the cache at {store.path!r} holds {len(names)} hooks ({', '.join(names)}); say what to train: "
                "kind='transcoder' (reads the first hook, predicts the second), kind='crosscoder' (all of them), "
                "or hooks=[one of them] for an SAE")
        kind = "sae"
    if kind == "sae":
        if len(names) != 1:
            raise ValueError(f"an SAE reads one hook, but {len(names)} are selected ({', '.join(names)}); pass "
                             "hooks=[one of them]")
        return TrainingData(view, "sae", widths[0], hooks=names)
    if kind == "transcoder":
        if len(names) != 2:
            raise ValueError(f"a transcoder reads one hook and predicts another: pass hooks=[hook_in, hook_out]; the "
                             f"selection holds {len(names)} ({', '.join(names)})")
        check_transcoder_pair(*names)
        return TrainingData(view, "transcoder", widths[0], d_out=widths[1], hooks=names)
    if len(names) < 2:
        raise ValueError(f"a crosscoder reads two layers or more; the selection holds {names}. Cache several hooks "
                         "(pw.cache_activations(model, images, [hook_a, hook_b], path)) or train an SAE.")
    if len(set(widths)) != 1:
        sizes = ", ".join(f"{h} is {w}" for h, w in zip(names, widths))
        raise ValueError(f"a crosscoder reads layers of one width, but {sizes} wide; pick hooks of the same width "
                         "(e.g. the residual stream of several blocks)")
    return TrainingData(view, "crosscoder", widths[0], n_layers=len(names), hooks=names)


def evaluation_batches(sae: Any, data: Any, batch_size: int, max_rows: int | None):
    """``(inputs, targets)`` batches of flat rows for evaluating a transcoder or a crosscoder ``sae`` on ``data``
    (a store holding its hooks, ``(inputs, targets)``, or ``[rows, n_layers, d]``)."""
    c = sae.cfg
    if isinstance(data, ActivationStore):
        wanted = [c.hook, c.hook_out] if c.kind == "transcoder" else list(c.hooks or [])
        if all(h in data.all_hooks for h in wanted if h) and all(wanted):
            data = data.select(wanted)
        td = _from_store(data, c.kind, None)
    else:
        td = resolve_training_data(data, c.kind, None)
    if (td.d_in, td.n_layers, td.d_out) != (c.d_in, c.n_layers, c.d_out):
        have = f"{td.n_layers} layers of {td.d_in}" if c.kind == "crosscoder" else f"{td.d_in} -> {td.d_out}"
        want = f"{c.n_layers} layers of {c.d_in}" if c.kind == "crosscoder" else f"{c.d_in} -> {c.d_out}"
        raise ValueError(f"this {c.kind} reads {want} wide activations, but the data holds {have}; evaluate on the "
                         f"hooks it was trained on ({', '.join(h for h in (c.hooks or [c.hook, c.hook_out]) if h)})")
    n = len(td.source) if max_rows is None else min(len(td.source), max_rows)
    if isinstance(td.source, ActivationStore):
        td.source.check_complete()
    w = td.width_in
    for start in range(0, n, batch_size):
        rows = td.source.read(start, min(start + batch_size, n)) if isinstance(td.source, ActivationStore) \
            else td.source[start:min(start + batch_size, n)].float()
        yield (rows[:, :w], rows[:, w:]) if c.kind == "transcoder" else (rows, rows)
