"""The model's readout, in one place: the residual stream (or the model's output) to scores over named classes.

Every analysis that asks "which class does this vector point to?" goes through :class:`Readout`: the logit
lens (every token at every layer), patching (the patched runs' predictions), feature statistics (a decoder
direction's effect on each class) and direct logit attribution. The model's adapter supplies the parts
(final norm, pooling, head norm, projection, text tower); this module composes them and never asks which
family a model is.

A classifier's scores are its logits. An image-text model's scores are CLIP's: ``logit_scale`` times the
cosine between the image embedding and each prompt's text embedding (plus SigLIP's ``logit_bias``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..hooked.adapters.base import UnsupportedModelError
from ..validate import check_strings

if TYPE_CHECKING:
    from ..hooked.model import HookedViT


def needs_prompts(model: HookedViT) -> bool:
    """Whether the model reads out against text prompts (CLIP-style) rather than its own classes."""
    return model.cfg.readout == "text"


def can_read_out(model: HookedViT, prompts: Sequence[str] | None = None) -> bool:
    """Whether :class:`Readout` can be built: a classifier head, or an image-text model given prompts."""
    readout = model.cfg.readout
    return readout == "classes" or (readout == "text" and bool(prompts))


class Readout:
    """Scores over classes (a classifier) or prompts (an image-text model) from the model's vectors.

    Args:
        model: a :class:`~prisma_widgets.HookedViT`.
        prompts: for image-text models (CLIP), the texts to score against (required there, refused for
            classifiers, which read out their own classes).

    Attributes:
        class_names: the model's labels (``None`` when it has none) or the prompts.
        names: ``class_names``, or ``"class {i}"`` for a classifier without labels.

    Example:
        >>> import prisma_widgets as pw
        >>> model = pw.load("mouse-clip")
        >>> readout = Readout(model, prompts=["a photo of a circle", "a photo of a square"])
        >>> logits, cache = model.run_with_cache(pw.zoo.shapes(2)[0], names_filter="blocks.3.hook_resid_post")
        >>> torch.allclose(readout.pooled(cache["blocks.3.hook_resid_post"]), readout.scores(logits), atol=1e-5)
        True
        >>> readout.tokens(cache["blocks.3.hook_resid_post"]).shape   # every token read out: [batch, pos, prompt]
        torch.Size([2, 65, 2])
    """

    def __init__(self, model: HookedViT, prompts: Sequence[str] | None = None) -> None:
        self.model = model
        self.adapter = model.adapter
        kind = model.cfg.readout
        self.text: torch.Tensor | None = None
        self.logit_scale = 1.0
        self.logit_bias = 0.0
        if kind == "text":
            if not prompts:
                raise ValueError(
                    "this image-text (CLIP) model reads out against text: pass prompts=['a photo of a cat', ...]"
                )
            self.class_names: list[str] | None = check_strings(prompts, "prompts")
            with torch.no_grad():
                self.text = model.encode_text(self.class_names, normalize=True)
            self.logit_scale = float(model.logit_scale)
            self.logit_bias = float(self.adapter.logit_bias())  # SigLIP's learned bias; 0 for CLIP
        elif kind == "classes":
            if prompts:
                raise ValueError("prompts are for CLIP models; a classifier reads out its own classes")
            self.class_names = model.labels
        else:
            raise ValueError(
                "this model has no classifier head (num_classes=0) and no text tower: there is nothing to read out"
            )
        n = len(self.class_names) if self.class_names is not None else int(model.cfg.n_classes or 0)
        self.names: list[str] = list(self.class_names) if self.class_names is not None else [f"class {i}" for i in range(n)]

    @property
    def n_classes(self) -> int:
        return len(self.names)

    @property
    def against_text(self) -> bool:
        return self.text is not None

    # ----- exact -----
    def scores(self, output: torch.Tensor) -> torch.Tensor:
        """The model's output ``[..., d_output]`` (logits or image embeddings) as scores ``[..., classes]``."""
        if self.text is None:
            return output
        return self.logit_scale * nn.functional.normalize(output, dim=-1) @ self.text.to(output).T + self.logit_bias

    def tokens(self, resid: torch.Tensor) -> torch.Tensor:
        """Every token read out as if it were the pooled one: ``[..., pos, d_model]`` -> ``[..., pos, classes]``.

        The final norm, the head norm and the projection act on the last axis, so this is one matmul; an
        attention pool reads each token as if it were the only one (``adapter.pool_each``).
        """
        a = self.adapter
        norm = a.final_norm()
        x = norm(a.pool_each(resid)) if a.norm_after_pool else a.pool_each(norm(resid))
        return self.scores(a.project(a.head_norm()(x)))

    def pooled(self, resid: torch.Tensor) -> torch.Tensor:
        """The pooled readout exactly as the model's head computes it: ``[batch, pos, d_model]`` -> ``[batch, classes]``."""
        a = self.adapter
        norm = a.final_norm()
        pooled = norm(a.pool(resid)) if a.norm_after_pool else a.pool(norm(resid))
        return self.scores(a.project(a.head_norm()(pooled)))

    # ----- linearised: norm scales frozen -----
    def norm_scales(self, rows: torch.Tensor) -> torch.Tensor:
        """Per-row scales ``[n, 3]`` of the readout's three normalisations on residual rows ``[n, d_model]``:
        the final norm, the head norm, and the output's length for image-text scores (1 where absent).
        Computed in float32 whatever the model's dtype."""
        a = self.adapter
        x = rows.float()
        norm, head_norm = a.final_norm(), a.head_norm()
        s1 = norm_scale(norm, x)
        y = norm_float(norm, x, s1)
        s2 = norm_scale(head_norm, y)
        if self.text is not None:
            weight, bias = a.projection()
            z = norm_float(head_norm, y, s2)
            if weight is not None:
                z = z @ weight.detach().float().to(z.device).T
            if bias is not None:
                z = z + bias.detach().float().to(z.device)
            s3 = z.norm(dim=-1)
        else:
            s3 = torch.ones_like(s1)
        return torch.stack([s1, s2, s3], dim=-1)

    def linear_effects(
        self, directions: torch.Tensor, scales: Sequence[float], projection: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Direct effect ``[n, classes]`` of directions ``[n, d_model]`` at a token, the three scales frozen.

        Each norm becomes ``weight * centre(d) / scale`` (no bias), the projection loses its bias, and an
        image-text score divides by the frozen output length: linear in ``d``, so effects add up.
        ``projection``: a weight ``[d_output, d_model]`` to use instead of the adapter's (one slot of a head that
        reads several pooled vectors).
        """
        a = self.adapter
        s1, s2, s3 = (float(s) for s in scales)
        d = directions.detach().float()
        y = frozen_norm(a.final_norm(), d, s1)
        y = frozen_norm(a.head_norm(), y, s2)
        weight = projection if projection is not None else a.projection()[0]
        z = y @ weight.detach().float().to(y.device).T if weight is not None else y
        if self.text is None:
            return z
        return self.logit_scale * (z / s3) @ self.text.detach().float().to(z.device).T

    def frozen_constant(
        self, scales: Sequence[float], pool_mass: float = 1.0,
        projection: tuple[torch.Tensor | None, torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        """The constant part ``[classes]`` of the readout with the three scales frozen (what
        :meth:`linear_effects` leaves out): the norms' biases and the projection's bias, read out.

        ``pool_mass``: the sum of the pooling weights (1 for a CLS token or a mean), how much of the final
        norm's bias the pooled vector holds when that norm acts on every token before pooling.
        ``projection``: ``(weight, bias)`` to use instead of the adapter's.
        """
        a = self.adapter
        _, s2, s3 = (float(s) for s in scales)
        norm, head_norm = a.final_norm(), a.head_norm()
        weight, bias = projection if projection is not None else a.projection()
        d = int(weight.shape[1]) if weight is not None else self.model.cfg.d_model
        device = weight.device if weight is not None else self.model.device
        y = torch.zeros(d, device=device)
        if getattr(norm, "bias", None) is not None:
            y = y + norm.bias.detach().float() * (1.0 if a.norm_after_pool else float(pool_mass))
        y = frozen_norm(head_norm, y[None], s2)[0]
        if getattr(head_norm, "bias", None) is not None:
            y = y + head_norm.bias.detach().float()
        z = y @ weight.detach().float().T if weight is not None else y
        if bias is not None:
            z = z + bias.detach().float()
        if self.text is None:
            return z
        return self.logit_scale * (z / s3) @ self.text.detach().float().to(z.device).T


def norm_scale(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-row denominators of a LayerNorm / RMSNorm (timm's SimpleNorm: the standard deviation, uncentred) on
    rows ``x`` ``[n, d]`` (ones for an identity); any other norm is refused rather than guessed."""
    if isinstance(norm, nn.Identity):
        return torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    kind = type(norm).__name__.lower()
    eps = getattr(norm, "eps", None)
    eps = float(torch.finfo(x.dtype).eps if eps is None else eps)  # torch's RMSNorm: eps=None means this
    if isinstance(norm, nn.LayerNorm):
        return (x.var(-1, unbiased=False) + eps).sqrt()
    if kind.startswith("simplenorm"):
        return (x.var(-1) + eps).sqrt()
    if "rmsnorm" in kind:
        return (x.pow(2).mean(-1) + eps).sqrt()
    raise UnsupportedModelError(
        f"cannot freeze the scale of a {type(norm).__name__} (LayerNorm, RMSNorm and SimpleNorm are known), so this "
        "readout is not linearised here")


def norm_float(norm: nn.Module, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """A LayerNorm / RMSNorm applied in float32 with the given per-row ``scale`` (identity passes ``x``)."""
    if isinstance(norm, nn.Identity):
        return x
    centred = x - x.mean(-1, keepdim=True) if isinstance(norm, nn.LayerNorm) else x
    y = centred / scale[:, None]
    weight, bias = getattr(norm, "weight", None), getattr(norm, "bias", None)
    if weight is not None:
        y = y * weight.detach().float().to(y.device)
    if bias is not None:
        y = y + bias.detach().float().to(y.device)
    return y


def frozen_norm(norm: nn.Module, d: torch.Tensor, scale: float) -> torch.Tensor:
    """A LayerNorm / RMSNorm with its scale frozen: ``weight * centre(d) / scale``, no bias (identity passes ``d``)."""
    if isinstance(norm, nn.Identity):
        return d
    weight = getattr(norm, "weight", None)
    centred = d - d.mean(-1, keepdim=True) if isinstance(norm, nn.LayerNorm) else d
    out = centred / scale
    return out * weight.detach().to(out) if weight is not None else out
