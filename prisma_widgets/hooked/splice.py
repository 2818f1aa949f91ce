"""Splicing SAEs into the forward pass, and steering with their features.

``model.run_with_saes(images, saes=[sae])`` (or ``with model.saes([sae]):``) replaces the activation at each
SAE's hook by the SAE's reconstruction, on the tokens the SAE reads (its ``cfg.tokens``: ``"patches"``,
``"cls"`` or ``"all"``). With ``keep_error=True`` the reconstruction error is added back, so the output is
bit-identical to the plain model until a feature is edited; an edit then changes the activation by exactly
``decode(edited features) - decode(features)``.

A :class:`FeatureEdit` changes one feature at chosen token positions before decoding: ``"zero"`` it,
``"scale"`` it by ``value``, ``"clamp"`` it to ``value``, or ``"add"`` ``value`` to it (which adds ``value``
times its decoder direction). :func:`steer` is the one-call form.

An SAE is anything with ``encode``, ``decode``, ``d_in`` / ``d_sae`` and a hook name in its config (a
:class:`prisma_widgets.SAE`, or an SAE-Lens SAE); pass ``(hook, sae)`` to splice one at another hook, and
``(hook, sae, tokens)`` to choose the tokens it replaces (``"all"``, ``"patches"`` or ``"cls"``).

Example:
    >>> import prisma_widgets as pw
    >>> from prisma_widgets import zoo
    >>> model = pw.load("mouse-vit")
    >>> images, _ = zoo.shapes(2, seed=0)
    >>> sae = pw.SAE(d_in=128, d_sae=64, k=4, hook="blocks.1.hook_resid_post", tokens="patches")
    >>> plain = model(images)
    >>> bool((model.run_with_saes(images, saes=[sae], keep_error=True) == plain).all())
    True
    >>> steered = pw.steer(model, images, sae, feature=3, op="add", value=5.0)
    >>> bool((steered != plain).any())
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..validate import check_choice, check_int
from .hook_points import unknown_name_error

if TYPE_CHECKING:
    from .model import HookedViT

EDIT_OPS = ("zero", "scale", "clamp", "add")
TOKEN_MODES = ("all", "patches", "cls")


@dataclass(frozen=True)
class FeatureEdit:
    """Change one SAE feature before it is decoded.

    Args:
        feature: the feature index, ``0 <= feature < d_sae``.
        op: ``"zero"``, ``"scale"`` (multiply by ``value``), ``"clamp"`` (set to ``value``) or ``"add"``
            (add ``value``: the activation moves by ``value`` times the feature's decoder direction).
        value: the number ``op`` uses (ignored by ``"zero"``).
        positions: token positions along the hook's token axis (0 is the first token, prefix tokens
            included); ``None``: every token the SAE reads.
        hook: which spliced SAE it edits (needed only when several are spliced).

    >>> FeatureEdit(12, "scale", 2.0)
    FeatureEdit(feature=12, op='scale', value=2.0, positions=None, hook=None)
    """

    feature: int
    op: str = "zero"
    value: float = 0.0
    positions: Sequence[int] | None = None
    hook: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "feature", check_int(self.feature, "feature", at_least=0, example=12))
        check_choice(self.op, "op", EDIT_OPS)
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)) or not math.isfinite(self.value):
            raise ValueError(f"value must be a finite number (the scale, clamp level or amount to add); got {self.value!r}")
        object.__setattr__(self, "value", float(self.value))
        if self.positions is not None:
            if isinstance(self.positions, (str, bytes)) or not isinstance(self.positions, Sequence):
                raise TypeError(f"positions must be a list of token indices or None; got {self.positions!r}")
            pos = tuple(check_int(p, "positions[...]", at_least=0, example=1) for p in self.positions)
            object.__setattr__(self, "positions", pos)


def _hook_of(sae: Any) -> str | None:
    cfg = getattr(sae, "cfg", None)
    hook = getattr(cfg, "hook", None)
    if hook is None:  # an SAE-Lens SAE keeps it in its metadata
        hook = getattr(getattr(cfg, "metadata", None), "hook_name", None)
    return hook if isinstance(hook, str) and hook else None


def _entries(saes: Any) -> list[tuple[str, Any, str]]:
    if saes is None or isinstance(saes, (str, bytes)) or not isinstance(saes, Sequence):
        raise TypeError("saes must be a list of SAEs (or (hook, sae) pairs), e.g. saes=[sae]; got "
                        f"{type(saes).__name__}")
    out: list[tuple[str, Any, str]] = []
    for item in saes:
        hook, sae, tokens = (None, item, None) if not isinstance(item, tuple) else (*item, None)[:3]
        if isinstance(item, tuple) and len(item) not in (2, 3):
            raise TypeError(f"saes[...] entries are an SAE, (hook, sae) or (hook, sae, tokens); got a {len(item)}-tuple")
        if not all(hasattr(sae, a) for a in ("encode", "decode")):
            raise TypeError(f"saes[...] must be an SAE (with encode and decode) or a (hook, sae) pair; got "
                            f"{type(sae).__name__}")
        kind = getattr(getattr(sae, "cfg", None), "kind", "sae")
        if kind != "sae":
            raise ValueError(f"run_with_saes splices SAEs, which rebuild the activation they read; this is a {kind} "
                             "(it writes another hook or several layers). Measure its splice with "
                             "sae.evaluate(store, model=model, images=images)")
        hook = hook or _hook_of(sae)
        if not hook:
            raise ValueError("this SAE's config names no hook: pass saes=[(hook_name, sae)], e.g. "
                             "[('blocks.3.hook_resid_post', sae)]")
        if hook in [h for h, _, _ in out]:
            raise ValueError(f"two SAEs at {hook!r}: splice one SAE per hook")
        tokens = tokens or getattr(getattr(sae, "cfg", None), "tokens", None) or "all"
        out.append((hook, sae, check_choice(tokens, "tokens", TOKEN_MODES)))
    return out


def _span(model: HookedViT, tokens: str) -> tuple[int, int]:
    """The token positions ``[start, stop)`` of token mode ``tokens``."""
    cfg = model.cfg
    if tokens == "patches":
        return cfg.n_prefix_tokens, cfg.n_tokens
    if tokens == "cls":
        if not cfg.has_cls:
            raise ValueError(f"this SAE reads the CLS token, and {model.name!r} has none")
        return 0, 1
    return 0, cfg.n_tokens


def _edit(f: torch.Tensor, edits: Sequence[FeatureEdit], start: int, stop: int) -> torch.Tensor:
    f = f.clone()
    for e in edits:
        idx = slice(None) if e.positions is None else torch.tensor([p - start for p in e.positions], device=f.device)
        col = f[:, idx, e.feature]
        new = {"zero": torch.zeros_like(col), "scale": col * e.value, "clamp": torch.full_like(col, e.value),
               "add": col + e.value}[e.op]
        f[:, idx, e.feature] = new
    return f


def _splice(sae: Any, start: int, stop: int, keep_error: bool, edits: Sequence[FeatureEdit], hook: str) -> Callable:
    d_in = int(getattr(sae, "d_in", None) or sae.cfg.d_in)
    W = getattr(sae, "W_enc", None)

    def fn(x: torch.Tensor, point: Any) -> torch.Tensor | None:
        if keep_error and not edits:
            return None  # the reconstruction plus its error is the activation itself, bit for bit
        if x.ndim < 3:
            raise ValueError(f"{hook!r} has no token axis ({list(x.shape)}): SAEs splice into per-token hooks")
        rows = x[:, start:stop]
        flat = rows.reshape(rows.shape[0], rows.shape[1], -1)  # hook_z: heads side by side, as the SAE read them
        if flat.shape[-1] != d_in:
            raise ValueError(f"the SAE at {hook!r} reads {d_in}-wide activations, but that hook's are "
                             f"{flat.shape[-1]} wide (shape {list(x.shape)}). Splice it at the hook it was trained on.")
        inp = flat.to(W.device, W.dtype) if isinstance(W, torch.Tensor) else flat
        f = sae.encode(inp)
        g = _edit(f, edits, start, stop) if edits else f
        new = inp + (sae.decode(g) - sae.decode(f)) if keep_error else sae.decode(g)
        out = x.clone()
        out[:, start:stop] = new.to(x.device, x.dtype).reshape(rows.shape)
        return out

    return fn


def sae_hooks(model: HookedViT, saes: Any, keep_error: bool = False,
              edits: Sequence[FeatureEdit] | None = None) -> list[tuple[str, Callable]]:
    """The ``(hook, fn)`` pairs that splice ``saes`` into ``model`` (see the module docstring)."""
    if not isinstance(keep_error, bool):
        raise TypeError(f"keep_error must be True or False; got {keep_error!r}")
    entries = _entries(saes)
    edits = list(edits or [])
    for e in edits:
        if not isinstance(e, FeatureEdit):
            raise TypeError(f"edits must be FeatureEdit(...) entries; got {type(e).__name__}")
    names = model.hook_names()
    pairs = []
    for hook, sae, tokens in entries:
        if hook not in names:
            raise unknown_name_error(hook, names, model.cfg.n_layers)
        start, stop = _span(model, tokens)
        mine = [e for e in edits if e.hook in (None, hook)]
        d_sae = int(getattr(sae, "d_sae", None) or sae.cfg.d_sae)
        for e in mine:
            if e.feature >= d_sae:
                raise ValueError(f"feature {e.feature} does not exist: the SAE at {hook!r} has {d_sae} features "
                                 f"(0..{d_sae - 1})")
            bad = [p for p in (e.positions or ()) if not start <= p < stop]
            if bad:
                raise ValueError(f"positions {bad} are outside the tokens the SAE at {hook!r} reads ({start}..{stop - 1})")
        pairs.append((hook, _splice(sae, start, stop, keep_error, mine, hook)))
    hooks = [h for h, _, _ in entries]
    stray = [e for e in edits if e.hook is not None and e.hook not in hooks]
    if stray:
        raise ValueError(f"an edit names hook {stray[0].hook!r}, where no SAE is spliced (spliced: {hooks})")
    if len(entries) > 1 and any(e.hook is None for e in edits):
        raise ValueError(f"several SAEs are spliced ({hooks}): say which one each edit is for, FeatureEdit(..., hook=...)")
    return pairs


@torch.no_grad()
def steer(
    model: HookedViT,
    images: Any,
    sae: Any,
    feature: int,
    op: str = "add",
    value: float = 1.0,
    positions: Sequence[int] | None = None,
    *,
    keep_error: bool = True,
) -> torch.Tensor:
    """The model's output with one SAE feature edited (see :class:`FeatureEdit`) at ``positions``.

    With ``keep_error=True`` (default) only the edit changes the activation; ``False`` also replaces it by
    the SAE's reconstruction.

    >>> steered = pw.steer(model, images, sae, feature=3, op="clamp", value=10.0)   # doctest: +SKIP
    """
    edit = FeatureEdit(feature, op, value, positions)
    return model.run_with_saes(images, saes=[sae], keep_error=keep_error, edits=[edit])
