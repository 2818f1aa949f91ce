"""The patch-level logit lens: the model's own readout applied to every token at every layer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..hooked.config import layer_list
from ..validate import check_finite, check_int
from .readout import Readout

if TYPE_CHECKING:
    from ..hooked.model import HookedViT

SITES = ("resid_pre", "resid_mid", "resid_post")


@dataclass
class LogitLensResult:
    """What every token predicts at every chosen layer.

    ``logits[b, i, t, c]`` is class (or prompt) ``c`` read out from token ``t`` at ``layers[i]``;
    ``pooled[b, i, c]`` reads out the model's pooled token (CLS, or the patch mean of average-pooled
    models) exactly as the head does, so at the last layer it equals the model's output.
    """

    logits: torch.Tensor  # [batch, layer, token, class]
    pooled: torch.Tensor  # [batch, layer, class]
    top_k_indices: torch.Tensor  # [batch, layer, token, k]
    top_k_probs: torch.Tensor  # [batch, layer, token, k]
    layers: list[int]
    site: str
    class_names: list[str] | None
    token_labels: list[str]
    n_prefix_tokens: int
    grid: tuple[int, int]
    #: token frames of a video model (1 for images) and the patch token positions in (frame, row, col) order
    frames: int = 1
    frame_major: list[int] | None = None

    @property
    def probs(self) -> torch.Tensor:
        return self.logits.softmax(-1)

    def patch_logits(self) -> torch.Tensor:
        """Patch tokens only, as an image: ``[batch, layer, rows, cols, class]``; a video model's as a clip,
        ``[batch, layer, frame, rows, cols, class]`` (whatever order the model keeps its tokens in)."""
        b, l, _, c = self.logits.shape
        if self.frame_major is None:
            return self.logits[:, :, self.n_prefix_tokens:].reshape(b, l, *self.grid, c)
        return self.logits[:, :, self.frame_major].reshape(b, l, self.frames, *self.grid, c)


@torch.no_grad()
def logit_lens(
    model: HookedViT,
    images: Any,
    layers: Sequence[int] | None = None,
    site: str = "resid_post",
    top_k: int = 5,
    prompts: Sequence[str] | None = None,
) -> LogitLensResult:
    """Apply the model's readout to every token at every chosen layer.

    The readout is the model's own (:class:`~prisma_widgets.analysis.readout.Readout`): final norm, head norm
    and projection on every token (classifiers: the class logits; CLIP: the cosine with each prompt's text
    embedding times ``logit_scale``), and the pooled token through the model's own pooling and head.
    One batched matmul per layer; no Python loop over tokens.

    Example:
        >>> import numpy as np
        >>> import prisma_widgets as pw
        >>> model = pw.load("vit_tiny_patch16_224", pretrained=False, img_size=64, depth=2)
        >>> lens = pw.analysis.logit_lens(model, np.zeros((64, 64, 3), np.uint8))
        >>> lens.logits.shape      # [batch, layer, token, class]
        torch.Size([1, 2, 17, 1000])
    """
    cfg = model.cfg
    if site not in SITES:
        raise ValueError(f"site must be one of {SITES}; got {site!r}")
    top_k = check_int(top_k, "top_k", at_least=1, example=5)
    layers = layer_list(layers, cfg.n_layers) or list(range(cfg.n_layers))
    readout = Readout(model, prompts)
    names = [f"blocks.{l}.hook_{site}" for l in layers]
    _, cache = model.run_with_cache(images, names_filter=names, stop_at_layer=max(layers) + 1)
    per_token = [readout.tokens(cache[n]) for n in names]
    pooled = [readout.pooled(cache[n]) for n in names]
    logits = torch.stack(per_token, dim=1)
    probs = logits.softmax(-1)
    top = probs.topk(min(top_k, logits.shape[-1]), dim=-1)
    return LogitLensResult(
        logits=logits, pooled=torch.stack(pooled, dim=1), top_k_indices=top.indices, top_k_probs=top.values,
        layers=layers, site=site, class_names=readout.class_names, token_labels=model.token_labels(),
        n_prefix_tokens=cfg.n_prefix_tokens, grid=cfg.grid, frames=cfg.frames,
        frame_major=cfg.frame_major() if cfg.is_video else None,
    )


# ----- statistics of a lens, for display -----
def _log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def lens_statistics(logits: Any, top_k: int = 5) -> dict[str, np.ndarray]:
    """Per-token statistics of a lens ``[L, T, C]`` (logits); the last layer is the reference.

    Example:
        >>> import numpy as np
        >>> stats = lens_statistics(np.array([[[0.0, 1.0]], [[2.0, 0.0]]]))   # 2 layers, 1 token, 2 classes
        >>> stats["final_rank"].tolist()   # the last layer's top class is rank 1 at layer 0, rank 0 at the last
        [[1], [0]]

    Returns float64/int arrays: ``probs`` ``[L, T, C]``, ``top_indices``/``top_probs`` ``[L, T, K]``,
    ``entropy`` ``[L, T]`` (nats), ``kl`` ``[L, T]`` = KL(p_last || p_layer) (nats), ``final_class``
    ``[T]`` (argmax at the last layer), ``final_rank`` ``[L, T]`` (0 = the final class is top-1 there).
    """
    x = (logits.detach().double().cpu().numpy() if isinstance(logits, torch.Tensor) else np.asarray(logits, dtype=np.float64))
    if x.ndim != 3 or 0 in x.shape:
        raise ValueError(f"logits must be [layers, tokens, classes] with at least one of each; got shape {x.shape}")
    check_finite(x, "the logits [layer, token, class]", "a lens needs finite logits: check the model and its input")
    logp = _log_softmax(x)
    p = np.exp(logp)
    k = min(check_int(top_k, "top_k", at_least=1, example=5), x.shape[-1])
    # stable descending order: ties resolve to the lower class index, as torch.topk usually does
    order = np.argsort(-p, axis=-1, kind="stable")[..., :k]
    top_probs = np.take_along_axis(p, order, -1)
    entropy = -(p * logp).sum(-1)
    entropy = np.maximum(entropy, 0.0)
    p_last, logp_last = p[-1:], logp[-1:]
    kl = np.maximum((p_last * (logp_last - logp)).sum(-1), 0.0)
    final_class = p[-1].argmax(-1)  # [T]
    final_logp = np.take_along_axis(logp, np.broadcast_to(final_class[None, :, None], logp.shape[:2] + (1,)), -1)
    final_rank = (logp > final_logp).sum(-1)
    return {
        "probs": p,
        "top_indices": order,
        "top_probs": top_probs,
        "entropy": entropy,
        "kl": kl,
        "final_class": final_class,
        "final_rank": final_rank,
    }
