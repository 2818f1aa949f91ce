"""Hook names, name filters and the did-you-mean errors.

Names follow TransformerLens / ViT-Prisma so that their users feel at home:
``blocks.{l}.hook_resid_pre``, ``blocks.{l}.attn.hook_pattern``, ``ln_final.hook_normalized`` ...
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Union

import torch

HookFn = Callable[[torch.Tensor, "HookPoint"], Union[torch.Tensor, None]]
NameFilter = Union[str, Callable[[str], bool], Sequence[Union[str, Callable[[str], bool]]], None]

# Per-block hook points in execution order: (short key, name suffix after "blocks.{l}.").
BLOCK_POINTS: tuple[tuple[str, str], ...] = (
    ("resid_pre", "hook_resid_pre"),
    ("ln1", "ln1.hook_normalized"),
    ("q", "attn.hook_q"),
    ("k", "attn.hook_k"),
    ("v", "attn.hook_v"),
    ("attn_scores", "attn.hook_attn_scores"),
    ("pattern", "attn.hook_pattern"),
    ("z", "attn.hook_z"),
    ("attn_out", "hook_attn_out"),
    ("resid_mid", "hook_resid_mid"),
    ("ln2", "ln2.hook_normalized"),
    ("mlp_pre", "mlp.hook_pre"),
    ("mlp_pre_linear", "mlp.hook_pre_linear"),  # gated MLPs only: the value half (hook_pre is the gate's)
    ("mlp_post", "mlp.hook_post"),
    ("mlp_out", "hook_mlp_out"),
    ("resid_post", "hook_resid_post"),
)
BLOCK_SUFFIX = dict(BLOCK_POINTS)
# Short keys whose hooks need the attention internals to be computed by us.
ATTN_INNER = frozenset({"q", "k", "v", "attn_scores", "pattern", "z"})
# Short keys that need the explicit (unfused) attention path.
EXPLICIT_ATTN = frozenset({"attn_scores", "pattern"})
MLP_INNER = frozenset({"mlp_pre", "mlp_pre_linear", "mlp_post"})
# Hooks that sit outside the block call itself: with only these, the block runs as built.
BLOCK_EDGES = frozenset({"resid_pre", "resid_post"})

_BLOCK_NAME = re.compile(r"^blocks\.(\d+)\.(.+)$")

# Aliases accepted by ``act_name`` and by cache look-ups such as ``cache["pattern", 3]``.
_ALIASES = {
    "resid_pre": "hook_resid_pre", "resid_mid": "hook_resid_mid", "resid_post": "hook_resid_post",
    "attn_out": "hook_attn_out", "mlp_out": "hook_mlp_out",
    "q": "attn.hook_q", "k": "attn.hook_k", "v": "attn.hook_v", "z": "attn.hook_z",
    "pattern": "attn.hook_pattern", "attn": "attn.hook_pattern",
    "scores": "attn.hook_attn_scores", "attn_scores": "attn.hook_attn_scores",
    "pre": "mlp.hook_pre", "mlp_pre": "mlp.hook_pre", "post": "mlp.hook_post", "mlp_post": "mlp.hook_post",
    "pre_linear": "mlp.hook_pre_linear", "mlp_pre_linear": "mlp.hook_pre_linear",
    "ln1": "ln1.hook_normalized", "ln2": "ln2.hook_normalized",
    # TimeSformer's temporal attention (divided space-time blocks)
    "pattern_time": "attn_time.hook_pattern", "attn_time": "attn_time.hook_pattern",
    "scores_time": "attn_time.hook_attn_scores", "q_time": "attn_time.hook_q", "k_time": "attn_time.hook_k",
    "v_time": "attn_time.hook_v", "z_time": "attn_time.hook_z", "attn_time_out": "hook_attn_time_out",
    "resid_mid_time": "hook_resid_mid_time", "ln_time": "ln_time.hook_normalized",
}
_GLOBAL_ALIASES = {
    "embed": "hook_embed", "pos_embed": "hook_pos_embed", "ln_final": "ln_final.hook_normalized",
    "logits": "hook_logits", "image_embed": "hook_image_embed", "pooled": "hook_pooled",
    "time_embed": "hook_time_embed",
}


def act_name(kind: str, layer: int | None = None) -> str:
    """The full hook name for a short name, TransformerLens style.

    >>> act_name("pattern", 3)
    'blocks.3.attn.hook_pattern'
    >>> act_name("embed")
    'hook_embed'
    """
    if layer is None:
        if kind in _GLOBAL_ALIASES:
            return _GLOBAL_ALIASES[kind]
        if kind in _ALIASES:
            raise ValueError(f"{kind!r} is a per-layer hook: pass a layer, e.g. act_name({kind!r}, 0)")
        return kind
    if kind not in _ALIASES:
        raise ValueError(f"unknown short hook name {kind!r}; choose one of {sorted(_ALIASES)}")
    return f"blocks.{int(layer)}.{_ALIASES[kind]}"


def split_name(name: str) -> tuple[int | None, str]:
    """``"blocks.3.attn.hook_q"`` -> ``(3, "attn.hook_q")``; global names -> ``(None, name)``."""
    match = _BLOCK_NAME.match(name)
    if match is None:
        return None, name
    return int(match.group(1)), match.group(2)


class HookPoint:
    """A named place in the forward pass. Hook functions receive ``(tensor, hook)``.

    ``hook.name`` is the full name and ``hook.layer()`` the block index (``None`` outside blocks).
    """

    __slots__ = ("name", "_layer")

    def __init__(self, name: str) -> None:
        self.name = name
        self._layer = split_name(name)[0]

    def layer(self) -> int | None:
        return self._layer

    def __repr__(self) -> str:
        return f"HookPoint({self.name!r})"


class HookNameError(KeyError):
    """An unknown hook name; the message lists the nearest valid names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def nearest_names(name: str, valid: Iterable[str], n: int = 5) -> list[str]:
    valid = list(valid)
    close = difflib.get_close_matches(name, valid, n=n, cutoff=0.55)
    if close:
        return close
    # Fall back on a shared suffix ("hook_resid" -> every "...hook_resid_*")
    tail = name.rsplit(".", 1)[-1]
    return [v for v in valid if tail and tail in v][:n]


def unknown_name_error(name: str, valid: Sequence[str], n_layers: int) -> HookNameError:
    layer, suffix = split_name(name)
    if layer is not None and layer >= n_layers and f"blocks.0.{suffix}" in valid:
        return HookNameError(
            f"hook {name!r}: layer {layer} is out of range, the model has {n_layers} layers "
            f"(blocks.0 ... blocks.{n_layers - 1})."
        )
    suggestions = nearest_names(name, valid)
    hint = f" Did you mean: {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
    return HookNameError(f"unknown hook name {name!r}.{hint} model.hook_names() lists all {len(valid)}.")


def resolve_filter(names_filter: NameFilter, valid: Sequence[str], n_layers: int) -> list[str]:
    """The hook names selected by a filter, in execution order.

    A filter is ``None`` (every hook), an exact name, a glob (``"blocks.*.hook_resid_post"``),
    a predicate ``fn(name) -> bool`` (``lambda n: "resid" in n``), or a list of these.
    Exact names and globs that select nothing raise :class:`HookNameError` with suggestions.
    """
    if names_filter is None:
        return list(valid)
    parts: Sequence[Any] = names_filter if isinstance(names_filter, (list, tuple, set, frozenset)) else [names_filter]
    chosen: set[str] = set()
    for part in parts:
        if callable(part):
            chosen.update(n for n in valid if part(n))
        elif isinstance(part, str):
            if any(ch in part for ch in "*?["):
                hits = fnmatch.filter(valid, part)
                if not hits:
                    raise unknown_name_error(part, valid, n_layers)
                chosen.update(hits)
            elif part in valid:
                chosen.add(part)
            else:
                raise unknown_name_error(part, valid, n_layers)
        else:
            raise TypeError(
                f"names_filter entries must be hook names, globs or callables; got {type(part).__name__}"
            )
    return [n for n in valid if n in chosen]


class ActiveHooks:
    """The hook functions of one forward pass, keyed by full name.

    Adapters call ``hooks(name, tensor)`` at each hook point; it returns the tensor unchanged when
    nothing is registered there, so an inactive point costs one dict look-up. ``prefix`` (``"text."`` for a
    text tower) says whose blocks ``block_keys`` describes: names without it belong to another tower.
    """

    __slots__ = ("fns", "points", "block_keys")

    def __init__(
        self, fns: dict[str, list[HookFn]], points: dict[str, HookPoint], n_layers: int, prefix: str = ""
    ) -> None:
        self.fns = fns
        self.points = points
        keys: list[set[str]] = [set() for _ in range(n_layers)]
        suffix_to_key = {suffix: key for key, suffix in BLOCK_POINTS}
        for name in fns:
            if not name.startswith(prefix):
                continue
            layer, suffix = split_name(name[len(prefix):])
            if layer is not None and suffix in suffix_to_key:
                keys[layer].add(suffix_to_key[suffix])
        self.block_keys = [frozenset(k) for k in keys]

    def __bool__(self) -> bool:
        return bool(self.fns)

    def active(self, name: str) -> bool:
        return name in self.fns

    def __call__(self, name: str, x: torch.Tensor) -> torch.Tensor:
        fns = self.fns.get(name)
        if not fns:
            return x
        point = self.points[name]
        for fn in fns:
            out = fn(x, point)
            if out is not None:
                if not isinstance(out, torch.Tensor):
                    raise TypeError(
                        f"hook function {getattr(fn, '__name__', fn)!r} at {name!r} returned "
                        f"{type(out).__name__}; return a tensor to replace the activation, or None"
                    )
                if out.shape != x.shape:
                    raise ValueError(
                        f"hook function {getattr(fn, '__name__', fn)!r} at {name!r} returned shape "
                        f"{list(out.shape)}, but the activation has shape {list(x.shape)}; "
                        "a replacement must keep the shape"
                    )
                x = out
        return x

    def view(self, name: str, x: torch.Tensor, dims: tuple[int, int]) -> torch.Tensor:
        """Hook ``x.transpose(*dims)`` (the TransformerLens layout) and return it in ``x``'s layout."""
        if name not in self.fns:
            return x
        seen = x.transpose(*dims)
        out = self(name, seen)
        return x if out is seen else out.transpose(*dims)
