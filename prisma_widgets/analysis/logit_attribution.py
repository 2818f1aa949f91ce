"""Direct logit attribution: how much each head, MLP and the embedding wrote directly into one score.

The residual stream after the last block is a sum of what wrote it: the embedding (patches, positions,
prefix tokens), every head's write (``hook_z`` through its slice of the output projection, from the
adapter's ``head_writes``), every attention output bias, every MLP's output. With the readout's norm scales
frozen at their values in the run (:class:`~prisma_widgets.analysis.frozen_readout.FrozenReadout`), the score
is affine in that stream, so it splits exactly into one value per part plus the constant (the norms' and
the projection's biases, and the attention biases: ``"bias"``). ``values.sum(-1) == logit`` up to float
rounding, for classifiers with CLS or average pooling and for CLIP image embeddings (whose length is frozen).

Position-resolved (``by_position=True``): where each part's contribution comes from. The embedding, MLPs and
bias contribute at the tokens the readout pools (the CLS token, or every patch for average pooling); a head
contributes through its attention from those tokens, so its value is split over the *source* tokens:
``sum_q w_q pattern[q, k] * (v_k W_O^h) . direction``.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..hooked.adapters.base import UnsupportedModelError
from ..hooked.attribution import head_results
from ..validate import check_bool, check_int, check_strings
from .frozen_readout import FrozenReadout
from .readout import Readout, needs_prompts

if TYPE_CHECKING:
    from ..hooked.model import HookedViT

Target = Any  # int | str | tuple[int | str, int | str] | Sequence[int] | torch.Tensor | None


@dataclass
class DirectLogitAttribution:
    """The result of :func:`direct_logit_attribution`.

    Attributes:
        values: ``[batch, component]``: each component's direct contribution to the target's score.
        labels: one per component: ``"embed"``, ``"L{l}H{h}"`` (or ``"L{l} attn"`` with ``heads=False``),
            ``"L{l} MLP"``, ``"bias"``.
        logit: ``[batch]``: the target's actual score (a difference for a pair); ``values.sum(-1)`` equals it.
        target, versus: ``[batch]`` class indices (``versus`` is ``None`` unless the target is a pair).
        class_names: the classes (a classifier's labels) or the prompts (CLIP).
        scores: ``[batch, classes]``: every class's actual score.
        class_values: ``[batch, component, classes]``: every class's decomposition (linear, so a pair is a
            difference of two columns).
        by_position: ``[batch, pos, component]`` with ``by_position=True``: where each contribution comes
            from (source tokens for heads, pooled tokens for the rest); sums over ``pos`` to ``values``.
        pooled_attention: ``[batch, layer, head, pos]`` with ``by_position=True``: each head's attention
            from the pooled token (the pooling weights times the pattern).
        position_classes, class_by_position: the extra classes asked for, and ``[batch, k, pos, component]``.
    """

    values: torch.Tensor
    labels: list[str]
    logit: torch.Tensor
    target: torch.Tensor
    versus: torch.Tensor | None
    class_names: list[str]
    scores: torch.Tensor
    class_values: torch.Tensor
    n_layers: int
    n_heads: int
    token_labels: list[str]
    grid: tuple[int, int]
    n_prefix_tokens: int
    by_position: torch.Tensor | None = None
    pooled_attention: torch.Tensor | None = None
    position_classes: list[int] = field(default_factory=list)
    class_by_position: torch.Tensor | None = None

    def index(self, label: str) -> int:
        """The component axis position of ``label`` (``"L3H2"``, ``"L3 MLP"``, ``"embed"``, ``"bias"``)."""
        try:
            return self.labels.index(label)
        except ValueError:
            close = difflib.get_close_matches(label, self.labels, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise KeyError(f"no component {label!r}{hint}") from None

    def head_values(self) -> torch.Tensor:
        """The heads' values as ``[batch, layer, head]`` (models decomposed with ``heads=False`` have none)."""
        idx = [self.index(f"L{l}H{h}") for l in range(self.n_layers) for h in range(self.n_heads)]
        if not idx:
            raise ValueError("this attribution has no per-head components (made with heads=False)")
        return self.values[:, idx].reshape(-1, self.n_layers, self.n_heads)

    def top(self, k: int = 5, image: int = 0) -> list[tuple[str, float]]:
        """The ``k`` largest contributions (by absolute value) for one image, as ``(label, value)``."""
        row = self.values[image]
        order = row.abs().argsort(descending=True)[:k]
        return [(self.labels[int(i)], float(row[i])) for i in order]

    def target_name(self, image: int = 0) -> str:
        a = self.class_names[int(self.target[image])]
        return a if self.versus is None else f"{a} − {self.class_names[int(self.versus[image])]}"

    def __repr__(self) -> str:
        top = ", ".join(f"{name} {value:+.3g}" for name, value in self.top(4))
        return (f"DirectLogitAttribution({self.values.shape[0]} image(s), {len(self.labels)} components; image 0: "
                f"{self.target_name(0)!r} = {float(self.logit[0]):.4g}; largest: {top})")


# --------------------------------------------------------------------------------------------------
def direct_logit_attribution(
    model: HookedViT,
    images: Any,
    target: Target = None,
    *,
    prompts: Sequence[str] | None = None,
    by_position: bool = False,
    heads: bool = True,
    position_classes: Sequence[int] | None = None,
) -> DirectLogitAttribution:
    """Split each image's score for ``target`` into the direct contributions of the embedding, every head,
    every MLP and the biases, exactly (``values.sum(-1) == logit``).

    Args:
        model: a :class:`~prisma_widgets.HookedViT` with a readout: a classifier, or CLIP with prompts.
        images: images (anything ``model.to_pixels`` takes).
        target: ``None`` (each image's top class), a class index, a class name, a CLIP prompt (added to
            ``prompts`` if new), a tuple ``(a, b)`` for the difference ``score(a) - score(b)``, or a list /
            tensor with one class index per image.
        prompts: CLIP only: the texts to score against.
        by_position: also split every contribution over token positions (``by_position`` and
            ``pooled_attention`` in the result; asks for every layer's attention pattern).
        heads: one component per head (default), or one per layer's attention (``"L{l} attn"``) for models
            whose heads have no separate writes.
        position_classes: with ``by_position``, also split these classes' scores (``class_by_position``;
            indices or names).

    The norms' scales are frozen at their values in this run (TransformerLens' ``apply_ln_to_stack``): the
    final norm per token (or per pooled vector), the head norm per image, and for CLIP the image embedding's
    length per image. Models whose pooling is not a weighted sum of tokens (timm's attention-pool ``map``
    head: its MLP is not linear) are refused rather than approximated.

    Example:
        >>> import prisma_widgets as pw
        >>> model = pw.load("mouse-vit")
        >>> images, classes = pw.zoo.shapes(4, seed=0)
        >>> dla = pw.analysis.direct_logit_attribution(model, images)
        >>> dla.labels[:3], dla.labels[-2:]
        (['embed', 'L0H0', 'L0H1'], ['L3 MLP', 'bias'])
        >>> torch.allclose(dla.values.sum(-1), dla.logit, rtol=1e-4, atol=1e-4)
        True
        >>> dla.head_values().shape              # [image, layer, head]
        torch.Size([4, 4, 4])
        >>> diff = pw.analysis.direct_logit_attribution(model, images, target=("circle", "square"))
        >>> torch.allclose(diff.logit, diff.scores[:, 0] - diff.scores[:, 1])
        True
    """
    by_position, heads = check_bool(by_position, "by_position"), check_bool(heads, "heads")
    prompts = _with_target_prompts(model, target, check_strings(prompts, "prompts") if prompts is not None else None)
    readout = Readout(model, prompts=prompts)
    if by_position:
        _check_by_position(model, heads)
    cfg = model.cfg
    L = cfg.n_layers
    final = f"blocks.{L - 1}.hook_resid_post"
    names = {"blocks.0.hook_resid_pre", final}
    for l in range(L):
        names |= {f"blocks.{l}.attn.hook_z" if heads else f"blocks.{l}.hook_attn_out", f"blocks.{l}.hook_mlp_out"}
        names |= {f"blocks.{l}.{extra}" for extra in model.adapter.extra_writes(l)}
        if by_position:
            names |= {f"blocks.{l}.attn.hook_v", f"blocks.{l}.attn.hook_pattern"}
    with torch.no_grad():
        output, cache = model.run_with_cache(images, names_filter=lambda n: n in names)
        scores = readout.scores(output).float()
        t, v = _resolve_target(target, readout.names, scores)
        frozen = FrozenReadout(readout, cache[final])
        vectors, labels, bias = _pooled_parts(model, cache, frozen.token_weight, heads)
        class_values = frozen.effects(vectors)  # [batch, component, classes]
        class_values[:, -1] += frozen.constant
        values = _difference(class_values, t, v)
        logit = _difference(scores[:, None], t, v)[:, 0]
        result = DirectLogitAttribution(
            values=values, labels=labels, logit=logit, target=t, versus=v, class_names=list(readout.names),
            scores=scores, class_values=class_values, n_layers=L, n_heads=cfg.n_heads if heads else 0,
            token_labels=list(model.token_labels()), grid=tuple(cfg.grid), n_prefix_tokens=cfg.n_prefix_tokens,
        )
        if by_position:
            extra = [_class_index(c, readout.names, "position_classes") for c in (position_classes or [])]
            columns = [t] + ([v] if v is not None else []) + [torch.full_like(t, c) for c in extra]
            per_pos, pooled_attention = _by_position(model, cache, frozen, torch.stack(columns, 1), bias, heads)
            own = per_pos[..., 0] - per_pos[..., 1] if v is not None else per_pos[..., 0]
            result.by_position = own
            result.pooled_attention = pooled_attention
            result.position_classes = extra
            first = 2 if v is not None else 1
            result.class_by_position = per_pos[..., first:].permute(0, 3, 1, 2) if extra else None
    return result


# --------------------------------------------------------------------------------------------------
def _with_target_prompts(model: HookedViT, target: Target, prompts: Sequence[str] | None) -> list[str] | None:
    """CLIP: the prompts, with any prompt named by ``target`` appended; classifiers: ``prompts`` unchanged."""
    if not needs_prompts(model):
        return list(prompts) if prompts else None
    out = [str(p) for p in prompts] if prompts else []
    named = [target] if isinstance(target, str) else list(target) if isinstance(target, tuple) else []
    out += [str(p) for p in named if isinstance(p, str) and p not in out]
    if not out:
        raise ValueError("a CLIP model scores against text: pass target='a photo of a cat' or prompts=[...]")
    return out


def _class_index(x: Any, names: list[str], what: str = "target") -> int:
    if isinstance(x, str):
        if x in names:
            return names.index(x)
        lowered = [n.lower() for n in names]
        if x.lower() in lowered:
            return lowered.index(x.lower())
        close = difflib.get_close_matches(x, names, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"no class named {x!r}.{hint} Pass a class index, or one of model.labels.")
    n = len(names)
    fix = f"Pass a class index in 0..{n - 1}, or a class name."
    i = int(check_int(x, what, fix=fix))
    if not 0 <= i < n:
        raise ValueError(f"{what}: class index {i} is out of range: there are {n} classes. {fix}")
    return i


def _resolve_target(target: Target, names: list[str], scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(target [batch], versus [batch] or None)`` class indices."""
    batch = scores.shape[0]
    if target is None:
        return scores.argmax(-1), None
    if isinstance(target, tuple):
        if len(target) != 2:
            raise ValueError(f"a tuple target is a pair (a, b) for score(a) - score(b); got {len(target)} items")
        a, b = (_class_index(x, names) for x in target)
        return torch.full((batch,), a, dtype=torch.long), torch.full((batch,), b, dtype=torch.long)
    if isinstance(target, (list, np.ndarray, torch.Tensor)):
        per_image = [_class_index(x, names) for x in (target.tolist() if hasattr(target, "tolist") else target)]
        if len(per_image) != batch:
            raise ValueError(f"{len(per_image)} targets for {batch} images (a pair of classes is a tuple: (a, b))")
        return torch.tensor(per_image, dtype=torch.long), None
    return torch.full((batch,), _class_index(target, names), dtype=torch.long), None


def _expand(idx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return idx.to(x.device).view(-1, *([1] * (x.ndim - 1))).expand(*x.shape[:-1], 1)


def _difference(x: torch.Tensor, t: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
    """``x[..., t] - x[..., v]`` per image (``x`` ``[batch, ..., classes]``)."""
    out = x.gather(-1, _expand(t, x))[..., 0]
    return out - x.gather(-1, _expand(v, x))[..., 0] if v is not None else out


def _pooled_parts(
    model: HookedViT, cache: Any, token_weight: torch.Tensor, heads: bool
) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """Every component's pooled, frozen-norm-weighted write ``[batch, component, slot, d_model]`` (the last,
    ``bias``, holds the attention output biases), the labels, and that summed bias ``[d_model]`` per unit weight."""
    adapter = model.adapter
    tw = token_weight.float()  # [batch, slot, pos]
    mass = tw.sum(-1)  # [batch, slot]
    d = model.cfg.d_model

    def pooled(x: torch.Tensor) -> torch.Tensor:  # [batch, pos, d] -> [batch, 1, slot, d]
        return torch.einsum("bst,btd->bsd", tw, x.float())[:, None]

    parts = [pooled(cache["blocks.0.hook_resid_pre"])]
    labels = ["embed"]
    bias = torch.zeros(d, device=tw.device)
    for l in range(model.cfg.n_layers):
        for extra in adapter.extra_writes(l):  # TimeSformer's temporal attention, before the spatial one
            parts.append(pooled(cache[f"blocks.{l}.{extra}"]))
            labels.append(f"L{l} {extra_label(extra)}")
        if heads:
            z = cache[f"blocks.{l}.attn.hook_z"]
            if z.ndim != 4:  # TimeSformer's divided attention: heads per frame, not over the clip's tokens
                raise UnsupportedModelError(
                    f"block {l}'s attention heads do not write over the token positions (hook_z is "
                    f"{list(z.shape)}, not [batch, pos, head, d_head]: attention runs per frame or per patch); "
                    "pass heads=False for one attention component per layer")
            z = torch.einsum("bst,bthe->bshe", tw, z.float())
            try:
                per_head, shared = head_results(adapter, l, z)  # [batch, slot, head, d]
            except UnsupportedModelError as err:
                raise UnsupportedModelError(f"{err}; pass heads=False for one attention component per layer") from err
            parts.append(per_head.float().transpose(1, 2))
            labels += [f"L{l}H{h}" for h in range(per_head.shape[2])]
            if shared is not None:
                bias = bias + shared.float()
        else:
            parts.append(pooled(cache[f"blocks.{l}.hook_attn_out"]))
            labels.append(f"L{l} attn")
        parts.append(pooled(cache[f"blocks.{l}.hook_mlp_out"]))
        labels.append(f"L{l} MLP")
    parts.append((mass[..., None] * bias)[:, None])
    labels.append("bias")
    return torch.cat(parts, 1), labels, bias


def extra_label(hook: str) -> str:
    """A component's label from its hook: ``"hook_attn_time_out"`` -> ``"attn_time"``."""
    return hook.removeprefix("hook_").removesuffix("_out")


def position_split_refusal(model: HookedViT, heads: bool = True) -> str | None:
    """Why ``by_position=True`` is refused for ``model`` (``None``: it is not). Heads split over the tokens
    they read only where each head's output is its attention pattern times its values.

    Example:
        >>> import prisma_widgets as pw
        >>> position_split_refusal(pw.load("mouse-vit")) is None
        True
    """
    if not heads:
        return None
    for l in range(model.cfg.n_layers):
        if not model.adapter.heads_split_by_source(l):
            return (f"block {l}'s heads are not their attention pattern times their values (differential attention: "
                    "two softmaxes subtracted, then a norm per head), so a head's write does not split over the "
                    "tokens it reads. Its value is exact: pass by_position=False, or heads=False to split each "
                    "layer's attention output by position instead")
    return None


def _check_by_position(model: HookedViT, heads: bool) -> None:
    why = position_split_refusal(model, heads)
    if why is not None:
        raise UnsupportedModelError(why)


def _by_position(
    model: HookedViT, cache: Any, frozen: FrozenReadout, columns: torch.Tensor, bias: torch.Tensor, heads: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``([batch, pos, component, k], pooled attention [batch, layer, head, pos])`` for the class ``columns``
    ``[batch, k]``: heads by source token, everything else by the token the readout pools."""
    adapter = model.adapter
    tw = frozen.token_weight.float()  # [batch, slot, pos]
    U = frozen.select(columns)  # [batch, slot, d_model, k]
    # what the display calls the pooled token: the slots' pooling weights, averaged
    pool_weight = frozen.pool_weight.float().sum(0) / frozen.n_slots

    def at_tokens(x: torch.Tensor) -> torch.Tensor:  # [batch, pos, d] -> [batch, pos, k]
        return torch.einsum("bst,bstk->btk", tw, torch.einsum("btd,bsdk->bstk", x.float(), U))

    parts = [at_tokens(cache["blocks.0.hook_resid_pre"])[:, :, None]]
    attention = []
    for l in range(model.cfg.n_layers):
        for extra in adapter.extra_writes(l):
            parts.append(at_tokens(cache[f"blocks.{l}.{extra}"])[:, :, None])
        if heads:
            pattern = cache[f"blocks.{l}.attn.hook_pattern"].float()  # [batch, head, q, k]
            writes, _ = head_results(adapter, l, cache[f"blocks.{l}.attn.hook_v"].float())  # [b, pos, head, d]
            projected = torch.einsum("bthd,bsdk->bsthk", writes.float(), U)
            from_pooled = torch.einsum("bsq,bhqt->bsth", tw, pattern)  # [batch, slot, source, head]
            parts.append(torch.einsum("bsth,bsthk->bthk", from_pooled, projected))
            attention.append(torch.einsum("q,bhqs->bhs", pool_weight, pattern))
        else:
            parts.append(at_tokens(cache[f"blocks.{l}.hook_attn_out"])[:, :, None])
        parts.append(at_tokens(cache[f"blocks.{l}.hook_mlp_out"])[:, :, None])
    constant = torch.gather(frozen.constant, 1, columns.to(frozen.constant.device))  # [batch, k]
    share = pool_weight / pool_weight.sum()
    bias_part = torch.einsum("bst,bsk->btk", tw, torch.einsum("d,bsdk->bsk", bias, U)) + share[None, :, None] * constant[:, None]
    parts.append(bias_part[:, :, None])
    pooled_attention = torch.stack(attention, 1) if attention else None
    return torch.cat(parts, 2), pooled_attention
