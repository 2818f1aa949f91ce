"""The readout of one run with its normalisation scales frozen: an affine map of the residual stream.

With every norm's scale fixed at the value it had in the run (the final norm's per token, or per pooled
vector; the head norm's and, for image-text scores, the image embedding's length per image), the model's
head is affine in the residual stream after the last block:

``score[b, class] = sum_s sum_t token_weight[b, s, t] * resid[b, t] @ directions[b, s, :, class] + constant[b, class]``

``s`` runs over the head's slots: the pooled vectors it reads side by side (one for a CLS token or a patch mean;
two for DeiT's CLS and distillation tokens or DINOv2's CLS token and patch mean, each with its own columns of
the classifier). ``token_weight`` is the pooling weight over the final norm's frozen scale at that token (the
pooling weight alone when the norm acts on the pooled vector). Any split of the stream into parts (embedding, heads, MLPs,
biases) then splits the score exactly: this is what direct logit attribution reads. Pooling must be a
weighted sum of tokens (a CLS token, a mean of patches): an attention-pool head (timm ``global_pool="map"``)
ends in an MLP, so it is not linear even with its attention frozen, and is refused.
"""

from __future__ import annotations

import torch
from torch import nn

from ..hooked.adapters.base import UnsupportedModelError
from .readout import Readout, norm_float, norm_scale


class FrozenReadout:
    """``readout`` linearised around the run whose final residual stream is ``resid`` ``[batch, pos, d_model]``.

    Attributes:
        token_weight: ``[batch, slot, pos]``, each token's weight in each pooled read-out (zero where it is not read).
        pool_weight: ``[slot, pos]``, the model's own pooling weights.
        directions: ``[batch, slot, d_model, classes]``, the score per unit of residual stream at weight one.
        constant: ``[batch, classes]``, the norms' and the projection's biases, read out.
        scales: ``[batch, 3]``, the frozen scales: final norm (1 when it is per token), head norm, output length.

    Example:
        >>> import prisma_widgets as pw
        >>> model = pw.load("mouse-vit")
        >>> readout = Readout(model)
        >>> logits, cache = model.run_with_cache(pw.zoo.shapes(2)[0], names_filter="blocks.3.hook_resid_post")
        >>> frozen = FrozenReadout(readout, cache["resid_post", 3])
        >>> torch.allclose(frozen.scores(cache["resid_post", 3]), logits, atol=1e-4)
        True
    """

    def __init__(self, readout: Readout, resid: torch.Tensor) -> None:
        a = readout.adapter
        weights = a.pool_slot_weights()
        if weights is None:
            raise UnsupportedModelError(
                f"this model pools its tokens with {readout.model.cfg.pooling!r}, which is not a weighted sum of "
                "tokens (an attention-pool head ends in an MLP; max pooling picks tokens), so its score does not "
                "split into the residual stream's parts; direct logit attribution needs CLS-token or average pooling"
            )
        x = resid.detach().float()
        batch, n_tokens, d = x.shape
        w = weights.to(x)
        slots = w.shape[0]
        norm, head_norm = a.final_norm(), a.head_norm()
        weight, bias = a.pooled_projection() if slots > 1 else (None, None)
        if slots > 1 and (a.norm_after_pool or not isinstance(head_norm, nn.Identity) or weight is None):
            raise UnsupportedModelError(
                "this head reads several pooled vectors side by side through a norm over all of them or a map that "
                "is not linear, so its score does not split into the residual stream's parts")
        if a.norm_after_pool:
            raw = torch.einsum("t,btd->bd", w[0], x)
            s1 = norm_scale(norm, raw)
            pooled = norm_float(norm, raw, s1)
            self.token_weight = w[None].expand(batch, slots, n_tokens).clone()
        else:
            flat = x.reshape(-1, d)
            per_token = norm_scale(norm, flat)
            normed = norm_float(norm, flat, per_token).reshape(batch, n_tokens, d)
            pooled = torch.einsum("st,btd->bsd", w, normed).reshape(batch, slots * d)
            self.token_weight = w[None] / per_token.reshape(batch, 1, n_tokens)
            s1 = torch.ones(batch, device=x.device)
        s2 = norm_scale(head_norm, pooled)
        s3 = torch.ones(batch, device=x.device)
        if readout.against_text:
            out = norm_float(head_norm, pooled, s2)
            if slots == 1:
                weight, bias = a.projection()
            if weight is not None:
                out = out @ weight.detach().float().to(out.device).T
            if bias is not None:
                out = out + bias.detach().float().to(out.device)
            s3 = out.norm(dim=-1)
        self.readout = readout
        self.pool_weight = w
        self.scales = torch.stack([s1, s2, s3], -1)
        eye = torch.eye(d, device=x.device)
        columns = [None] if slots == 1 else [weight[:, s * d:(s + 1) * d].detach().float() for s in range(slots)]
        self.directions = torch.stack([
            torch.stack([readout.linear_effects(eye, scales.tolist(), projection=c) for c in columns])
            for scales in self.scales])
        mass = w.sum(1)
        if slots == 1:
            constants = [readout.frozen_constant(scales.tolist(), float(mass[0])) for scales in self.scales]
        else:  # each slot's norm bias through its own columns: one map weighted by the slots' masses
            merged = sum(float(m) * c for m, c in zip(mass, columns))
            constants = [readout.frozen_constant(scales.tolist(), 1.0, projection=(merged, bias)) for scales in self.scales]
        self.constant = torch.stack(constants)

    @property
    def n_slots(self) -> int:
        return int(self.pool_weight.shape[0])

    def effects(self, vectors: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of pooled residual-stream vectors ``[batch, ..., slot, d_model]`` at weight one: ``[batch, ...,
        classes]`` (or only the columns ``classes`` ``[batch, k]`` / ``[k]``, one set per image or shared)."""
        directions = self.select(classes)  # [batch, slot, d, k]
        b, s, d, k = directions.shape
        flat = vectors.float().reshape(vectors.shape[0], -1, s * d)
        out = torch.bmm(flat, directions.reshape(b, s * d, k).to(flat.device))
        return out.reshape(*vectors.shape[:-2], k)

    def select(self, classes: torch.Tensor | None) -> torch.Tensor:
        """``directions`` restricted to ``classes`` (``[k]`` shared or ``[batch, k]`` per image): ``[batch, slot, d, k]``."""
        if classes is None:
            return self.directions
        idx = torch.as_tensor(classes, dtype=torch.long, device=self.directions.device)
        if idx.ndim == 1:
            return self.directions[..., idx]
        b, s, d, _ = self.directions.shape
        return torch.gather(self.directions, 3, idx[:, None, None, :].expand(b, s, d, -1))

    def pooled(self, resid: torch.Tensor) -> torch.Tensor:
        """Tokens ``[batch, pos, ...]`` pooled into each slot with the frozen weights: ``[batch, slot, ...]``."""
        return torch.einsum("bst,bt...->bs...", self.token_weight.to(resid.device), resid.float())

    def scores(self, resid: torch.Tensor) -> torch.Tensor:
        """The affine read-out of a final residual stream ``[batch, pos, d_model]``: ``[batch, classes]``
        (equal to the model's scores for the stream it was frozen at)."""
        return self.effects(self.pooled(resid)) + self.constant.to(resid.device)
