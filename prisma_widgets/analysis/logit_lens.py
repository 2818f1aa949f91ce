"""The patch-level logit lens: the model's own readout applied to every token at every layer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..hooked.config import layer_index

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

    @property
    def probs(self) -> torch.Tensor:
        return self.logits.softmax(-1)

    def patch_logits(self) -> torch.Tensor:
        """Patch tokens only, as an image: ``[batch, layer, rows, cols, class]``."""
        b, l, _, c = self.logits.shape
        return self.logits[:, :, self.n_prefix_tokens:].reshape(b, l, *self.grid, c)


Readout = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _timm_readout(model: Any) -> Readout:
    m = model.model

    def readout(resid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        normed = m.norm(resid)
        per_token = m.head(m.fc_norm(normed))  # fc_norm and head act on the last axis: one matmul for all tokens
        pooled = m.forward_head(normed)  # the model's own pooling (token / avg / map) and head
        return per_token, pooled

    return readout


def _clip_readout(model: Any, prompts: Sequence[str]) -> Readout:
    visual = model.adapter.tower
    with torch.no_grad():
        text = model.encode_text(list(prompts), normalize=True)
    scale = model.logit_scale

    def project(x: torch.Tensor) -> torch.Tensor:
        x = x @ visual.proj if visual.proj is not None else x
        return scale * torch.nn.functional.normalize(x, dim=-1) @ text.T

    def readout(resid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if visual.final_ln_after_pool:
            pooled_resid, _ = visual._global_pool(resid)
            pooled = project(visual.ln_post(pooled_resid))
        else:
            pooled = None
        normed = visual.ln_post(resid)
        if pooled is None:
            pooled_tokens, _ = visual._global_pool(normed)
            pooled = project(pooled_tokens)
        return project(normed), pooled

    return readout


@torch.no_grad()
def logit_lens(
    model: Any,
    images: Any,
    layers: Sequence[int] | None = None,
    site: str = "resid_post",
    top_k: int = 5,
    prompts: Sequence[str] | None = None,
) -> LogitLensResult:
    """Apply the model's readout to every token at every chosen layer.

    timm classifiers: final norm, ``fc_norm`` and head (pooled readout through the model's own pooling).
    CLIP: ``ln_post``, ``proj``, cosine with the prompts' text embeddings times ``logit_scale``.
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
    layers = list(range(cfg.n_layers)) if layers is None else [layer_index(l, cfg.n_layers) for l in layers]
    if cfg.family == "open_clip":
        if not prompts:
            raise ValueError("a CLIP logit lens reads out against text: pass prompts=['a photo of a cat', ...]")
        readout, class_names = _clip_readout(model, prompts), list(prompts)
    else:
        if prompts:
            raise ValueError("prompts are for CLIP models; a timm classifier reads out its own classes")
        if cfg.n_classes is None:
            raise ValueError("this timm model has no classifier head (num_classes=0): there is nothing to read out")
        readout, class_names = _timm_readout(model), model.labels
    names = [f"blocks.{l}.hook_{site}" for l in layers]
    _, cache = model.run_with_cache(images, names_filter=names, stop_at_layer=max(layers) + 1)
    per_token, pooled = zip(*(readout(cache[n]) for n in names))
    logits = torch.stack(per_token, dim=1)
    probs = logits.softmax(-1)
    top = probs.topk(min(top_k, logits.shape[-1]), dim=-1)
    return LogitLensResult(
        logits=logits, pooled=torch.stack(pooled, dim=1), top_k_indices=top.indices, top_k_probs=top.values,
        layers=layers, site=site, class_names=class_names, token_labels=model.token_labels(),
        n_prefix_tokens=cfg.n_prefix_tokens, grid=cfg.grid,
    )
