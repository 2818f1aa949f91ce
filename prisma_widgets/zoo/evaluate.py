"""Measurements of the mice, in pure torch: accuracy, zero-shot accuracy, patch logit lens, CLS attention.

Used by the training script (to write the cards) and by the tests (to hold the shipped weights to them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from .registry import MEAN, PROMPT, STD
from .shapes import SHAPE_CLASSES


def to_pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[n, H, W, 3]`` -> normalised float ``[n, 3, H, W]`` (the mice's data config: mean 0.5, std 0.25)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _is_clip(model: torch.nn.Module) -> bool:
    return hasattr(model, "encode_image") and hasattr(model, "visual")


def _batches(n: int, bs: int) -> Iterator[slice]:
    for i in range(0, n, bs):
        yield slice(i, min(i + bs, n))


@torch.no_grad()
def class_text_features(
    model: torch.nn.Module, tokenizer: Callable[..., torch.Tensor], template: str = PROMPT,
) -> torch.Tensor:
    """Unit-norm text features of ``template`` filled with each shape class, ``[classes, dim]``."""
    tokens = tokenizer([template.format(c) for c in SHAPE_CLASSES])
    return torch.nn.functional.normalize(model.encode_text(tokens), dim=-1)


@torch.no_grad()
def predict(
    model: torch.nn.Module, images: np.ndarray, tokenizer: Callable[..., torch.Tensor] | None = None,
    batch_size: int = 250,
) -> np.ndarray:
    """Class predictions: the ViT's head, or CLIP zero-shot with ``"a photo of a {shape}"``."""
    model.eval()
    text = class_text_features(model, tokenizer) if _is_clip(model) else None
    out = []
    for sl in _batches(len(images), batch_size):
        x = to_pixels(images[sl])
        if text is None:
            out.append(model(x).argmax(-1))
        else:
            out.append((torch.nn.functional.normalize(model.encode_image(x), dim=-1) @ text.T).argmax(-1))
    return torch.cat(out).numpy()


def accuracy(
    model: torch.nn.Module, images: np.ndarray, labels: Sequence[int],
    tokenizer: Callable[..., torch.Tensor] | None = None,
) -> float:
    """Fraction of ``images`` whose prediction (see :func:`predict`) is their label."""
    return float((predict(model, images, tokenizer) == np.asarray(labels)).mean())


def _last_block(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    if _is_clip(model):
        return model.visual.transformer.resblocks[-1], model.visual.transformer
    return model.blocks[-1], None


@torch.no_grad()
def patch_logits_and_cls_attention(
    model: torch.nn.Module, x: torch.Tensor, tokenizer: Callable[..., torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Last-layer patch logit lens ``[n, rows*cols, classes]`` and CLS attention ``[n, heads, tokens]``.

    ViT: ``head(norm(tokens))`` for every patch token of the last block's output. CLIP: ``ln_post`` and ``proj``
    on every patch token, cosine with the class prompts' text features. The attention pattern is recomputed
    from the last block's own qkv weights and its normalised input (pure torch, no fused kernel).
    """
    block, transformer = _last_block(model)
    captured: dict[str, torch.Tensor] = {}

    def grab(_module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        captured["x"] = args[0]

    handle = block.register_forward_pre_hook(grab)
    try:
        if _is_clip(model):
            v = model.visual
            h = v.transformer(v._embeds(x))
            _, tokens = v._pool(h)
            emb = torch.nn.functional.normalize(tokens @ v.proj, dim=-1)
            logits = emb @ class_text_features(model, tokenizer).T
        else:
            feats = model.forward_features(x)
            logits = model.head(model.fc_norm(feats[:, model.num_prefix_tokens:]))
    finally:
        handle.remove()
    inp = captured["x"]
    if transformer is not None and not getattr(transformer, "batch_first", True):
        inp = inp.transpose(0, 1)
    if _is_clip(model):
        mha = block.attn
        y = block.ln_1(inp)
        qkv = torch.nn.functional.linear(y, mha.in_proj_weight, mha.in_proj_bias)
        heads = mha.num_heads
    else:
        y = block.norm1(inp)
        qkv = block.attn.qkv(y)
        heads = block.attn.num_heads
    n, t, d = y.shape
    q, k, _ = qkv.view(n, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    if not _is_clip(model):
        q, k = block.attn.q_norm(q), block.attn.k_norm(k)
    scores = (q[:, :, :1] @ k.transpose(-1, -2)) * (d // heads) ** -0.5  # CLS query only
    return logits, scores.softmax(-1)[:, :, 0]


def scene_metrics(
    model: torch.nn.Module, scenes: Any, tokenizer: Callable[..., torch.Tensor] | None = None,
    batch_size: int = 250, n_prefix: int = 1,
) -> dict[str, float]:
    """On multi-object scenes: patch logit-lens accuracy on object patches, and last-layer CLS attention mass.

    - ``patch_lens_acc``: fraction of object patches (``patch_labels > 0``) whose last-layer logit-lens
      argmax is their own class.
    - ``cls_attn_object_mass``: mean over images and heads of the CLS token's attention mass on object
      patches; ``object_patch_fraction`` is what uniform attention over all tokens would give.
    """
    correct = total = 0
    mass, uniform = [], []
    for sl in _batches(len(scenes.images), batch_size):
        x = to_pixels(scenes.images[sl])
        logits, attn = patch_logits_and_cls_attention(model, x, tokenizer)
        gt = torch.from_numpy(scenes.patch_labels[sl]).flatten(1)  # [n, patches]
        obj = gt > 0
        pred = logits.argmax(-1)
        correct += int((pred[obj] == gt[obj] - 1).sum())
        total += int(obj.sum())
        patch_attn = attn[:, :, n_prefix:]  # [n, heads, patches]
        mass.append((patch_attn * obj[:, None].float()).sum(-1).mean(1))
        uniform.append(obj.float().sum(-1) / attn.shape[-1])
    return {
        "patch_lens_acc": correct / max(total, 1),
        "cls_attn_object_mass": float(torch.cat(mass).mean()),
        "object_patch_fraction": float(torch.cat(uniform).mean()),
    }
