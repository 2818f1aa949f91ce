"""What every model family provides, and the hooked block walk they share.

An adapter never copies weights: it calls the user's own submodules in the order their own
``forward`` does. When a block has no active hook, the block's own ``forward`` runs; when only
``hook_resid_pre`` / ``hook_resid_post`` are active, it still runs as built, with the hooks around it.
Only hooks inside a block make us step through its parts, and only attention-score or pattern hooks
switch attention from the fused kernel to the explicit path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config import HookedViTConfig
from ..hook_points import ATTN_INNER, BLOCK_EDGES, BLOCK_POINTS, EXPLICIT_ATTN, MLP_INNER, ActiveHooks

_NO_KEYS: frozenset[str] = frozenset()

SUPPORTED_FAMILIES = (
    "timm VisionTransformer and its subclasses (vit_*, deit_* with distillation tokens, deit3_*, DINOv2 with "
    "registers, CLIP-style, SigLIP attention-pooled, ViTamin, hybrid and parallel-block ViTs) and timm Eva (EVA-02, "
    "vit_*_rope_*, PE-Core); open_clip CLIP models whose image tower is open_clip's VisionTransformer (custom blocks "
    "and CoCa's attentional pool included) or a timm ViT / Eva trunk (SigLIP, SigLIP2, EVA02-CLIP, ViTamin, "
    "MobileCLIP-B, PE-Core), or that tower alone; Hugging Face transformers CLIPModel / CLIPVisionModel"
    "(WithProjection), SiglipModel / SiglipVisionModel, ViTModel / ViTForImageClassification, Dinov2Model / "
    "Dinov2ForImageClassification and Dinov2WithRegisters; video: VideoMAEModel / "
    "VideoMAEForVideoClassification, TimesformerModel / TimesformerForVideoClassification and VivitModel / "
    "VivitForVideoClassification"
)


class UnsupportedModelError(TypeError):
    """The module is not a ViT family this package can hook."""


class Adapter(ABC):
    """Maps one model family's modules onto the hook names."""

    family: str
    cfg: HookedViTConfig
    tower: nn.Module
    blocks: nn.ModuleList | nn.Sequential
    has_mlp_hooks: bool = True
    #: gated MLPs (SwiGLU, GeGLU): ``mlp.hook_pre`` is the gate's pre-activation, ``mlp.hook_pre_linear`` the value half
    gated_mlp: bool = False
    #: whether an absolute position embedding is added (RoPE-only models have none, so no ``hook_pos_embed``)
    has_pos_embed: bool = True

    def __init__(self) -> None:
        n_layers = self.cfg.n_layers
        # Full names per layer, looked up by short key in the hot path.
        self.names: list[dict[str, str]] = [
            {key: f"blocks.{layer}.{suffix}" for key, suffix in BLOCK_POINTS} for layer in range(n_layers)
        ]

    # ----- names -----
    @property
    @abstractmethod
    def output_hook(self) -> str: ...

    def hook_names(self) -> list[str]:
        names = ["hook_embed", "hook_pos_embed"] if self.has_pos_embed else ["hook_embed"]
        for layer in range(self.cfg.n_layers):
            for key, _ in BLOCK_POINTS:
                if key in MLP_INNER and not self.has_mlp_hooks:
                    continue
                if key == "mlp_pre_linear" and not self.gated_mlp:
                    continue
                names.append(self.names[layer][key])
        names += ["ln_final.hook_normalized", self.output_hook]
        return names

    # ----- the forward pass, in three parts -----
    @abstractmethod
    def plain_forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """The module's own forward, untouched."""

    @abstractmethod
    def embed(self, pixels: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        """Pixels to the residual stream entering block 0 ``[batch, pos, d_model]``."""

    @abstractmethod
    def head(self, resid: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        """The residual stream after the last block to the model's output."""

    # Block parts, per family.
    @abstractmethod
    def ln1(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def ln2(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def attention(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The block's own attention module on normalised input."""

    @abstractmethod
    def hooked_attention(
        self, blk: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks, explicit: bool
    ) -> torch.Tensor:
        """Attention stepped through q, k, v, (scores, pattern,) z with hooks."""

    @abstractmethod
    def attn_branch(self, blk: nn.Module, a: torch.Tensor) -> torch.Tensor:
        """Layer scale and drop-path applied to the attention output (what joins the residual)."""

    @abstractmethod
    def mlp(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def hooked_mlp(self, blk: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks) -> torch.Tensor: ...

    @abstractmethod
    def mlp_branch(self, blk: nn.Module, m: torch.Tensor) -> torch.Tensor: ...

    def block(self, layer: int, x: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        """One transformer block with whatever hooks are active in it."""
        keys = hooks.block_keys[layer] if hooks else _NO_KEYS
        return walk_block(self, self.blocks[layer], self.names[layer], keys, x, hooks)

    def plain_block(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return blk(x)

    def fused(self, blk: nn.Module) -> bool:
        """Whether this block's attention uses the fused kernel when nothing asks for the pattern."""
        return True

    # ----- the readout: the residual stream after the last block to the output, in parts -----
    # The analyses (logit lens, patching, feature effects, direct logit attribution) run or linearise these
    # parts; they never ask which family a model is.

    #: whether the final norm acts on the pooled vector (open_clip ``final_ln_after_pool``) instead of every token
    norm_after_pool: bool = False

    @abstractmethod
    def final_norm(self) -> nn.Module:
        """The norm after the last block (``nn.Identity`` when there is none)."""

    @abstractmethod
    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """The model's own pooling, ``[batch, pos, d]`` to ``[batch, d]`` (CLS token, patch mean, attention pool).

        A head that reads several pooled vectors (DeiT's CLS and distillation tokens, DINOv2's CLS and patch mean)
        gets them concatenated, ``[batch, k * d]``; its :meth:`project` takes both that and single tokens ``[..., d]``.
        """

    def pool_each(self, x: torch.Tensor) -> torch.Tensor:
        """Every token pooled as if the image were that token alone: ``[..., pos, d]`` -> ``[..., pos, d]``.

        The identity for CLS and mean pooling; an attention pool attends to the one token (its value path and MLP).
        The logit lens reads tokens through this, so a token's readout is the model's output for an image of it.
        """
        return x

    def pool_weights(self) -> torch.Tensor | None:
        """``w [pos]`` with ``pool(x) == sum_t w[t] * x[t]`` when the pooling is linear in the tokens; else ``None``."""
        return None

    def pool_slot_weights(self) -> torch.Tensor | None:
        """``w [slot, pos]``: the head reads ``slot`` weighted sums of the tokens side by side, and :meth:`pool`
        returns them concatenated, ``[batch, slot * d]`` (DeiT's CLS and distillation tokens, DINOv2's CLS token
        and patch mean: two slots). One slot, :meth:`pool_weights`, for the rest; ``None`` when it is not linear."""
        w = self.pool_weights()
        return None if w is None else w[None]

    def pooled_projection(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(weight [d_output, slot * d], bias)`` of the last linear map on :meth:`pool`'s output, every slot side
        by side (:meth:`projection` reads one token in every slot; here each slot keeps its own columns)."""
        return self.projection()

    def head_norm(self) -> nn.Module:
        """A norm on the pooled vector before the projection (timm ``fc_norm``); ``nn.Identity`` when none."""
        return nn.Identity()

    @abstractmethod
    def projection(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(weight [d_output, d], bias [d_output] or None)`` of the last linear map; ``(None, None)`` if none."""

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The last linear map on (pooled or per-token) vectors ``[..., d]`` -> ``[..., d_output]``."""
        weight, bias = self.projection()
        if weight is None:
            return x
        out = x @ weight.T
        return out + bias if bias is not None else out

    def mlp_out_weight(self, layer: int) -> torch.Tensor | None:
        """The MLP's output projection ``[d_model, d_mlp]`` of block ``layer`` (maps ``mlp.hook_post`` to the
        residual stream), or ``None`` when the block has no plain MLP."""
        return None

    # ----- attention outputs per head (direct logit attribution) -----
    def attn_out_projection(self, layer: int) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """``(W_O [d_model, n_heads * d_head], b_O [d_model] or None)`` when block ``layer``'s attention output
        is ``z`` (heads concatenated) times ``W_O`` plus ``b_O``; ``None`` when something non-linear sits in
        between (a norm or a gate on the heads), and no head owns a part of the output."""
        return None

    def head_writes(self, layer: int, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Each head's own write into the residual stream, from ``hook_z`` ``[batch, pos, head, d_head]``.

        Returns ``(per_head [batch, pos, head, d_model], shared [d_model] or None)``: ``z_h`` through its
        slice of the output projection and the block's layer scale, and the part no head owns (the output
        bias through the layer scale). ``per_head.sum(2) + shared`` equals ``hook_attn_out``.
        """
        projection = self.attn_out_projection(layer)
        if projection is None:
            raise UnsupportedModelError(
                f"block {layer}'s attention output is not linear in its heads (a norm or gate sits between the "
                "heads and the output projection), so heads have no separate writes to the residual stream"
            )
        weight, bias = projection
        n_heads, d_head = z.shape[-2], z.shape[-1]
        w = weight.reshape(weight.shape[0], n_heads, d_head).to(z)  # [d_model, head, d_head]
        per_head = torch.einsum("bphd,mhd->bphm", z, w)
        blk = self.blocks[layer]
        per_head = self.attn_branch(blk, per_head)
        shared = self.attn_branch(blk, bias.to(z)) if bias is not None else None
        return per_head, shared

    def block_norms(self, layer: int) -> tuple[nn.Module, nn.Module]:
        """``(ln1, ln2)``: the norms of block ``layer`` before its attention and before its MLP (what
        ``ActivationCache.apply_ln_to_stack(layer=...)`` freezes); ``nn.Identity`` where a branch reads the stream
        itself (post-norm blocks); :class:`UnsupportedModelError` when no one norm feeds the branch."""
        raise UnsupportedModelError(f"this adapter does not name the norms of block {layer}")

    def extra_writes(self, layer: int) -> tuple[str, ...]:
        """Hooks (after ``blocks.{layer}.``) that write into the residual stream before ``hook_attn_out``:
        TimeSformer's temporal attention, ``("hook_attn_time_out",)``. Empty for a plain block. Decompositions
        of the stream (``decompose_resid``, direct logit attribution) take them as components of their own."""
        return ()

    def mlp_reads_resid_mid(self, layer: int) -> bool:
        """Whether block ``layer``'s MLP reads the stream after its attention (``hook_resid_mid``, a sequential
        block) rather than the block's input, side by side with attention (a parallel block)."""
        return True

    def heads_split_by_source(self, layer: int) -> bool:
        """Whether block ``layer``'s ``hook_z`` is each head's pattern times its values, ``z[q] = sum_k
        pattern[q, k] v[k]`` (the same heads in ``hook_pattern`` and ``hook_v``), so a head's write splits over
        the tokens it reads. Not so for differential attention (two softmaxes, then a norm per head)."""
        return True

    # ----- text (image-text models): prompts to embeddings in the image embedding's space -----
    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """Text embeddings of tokenised prompts; models without a text tower say what to wrap instead."""
        raise TypeError(self.no_text_reason())

    def no_text_reason(self) -> str:
        return "this model has no text tower: it reads out its own classes (model.labels), not prompts"

    def logit_scale(self) -> float:
        """The learned temperature of image-text scores, ``exp(logit_scale)``."""
        raise TypeError(self.no_text_reason())

    def logit_bias(self) -> float:
        """The learned bias added to image-text scores (SigLIP's sigmoid loss); 0 for CLIP."""
        return 0.0

    def text_tower(self) -> Any:
        """The hooked text tower (:class:`~prisma_widgets.hooked.adapters.text_tower.TextTower`) of an image-text model."""
        raise TypeError(self.no_text_reason())

    def default_tokenizer(self) -> Callable[[list[str]], torch.Tensor]:
        raise TypeError(self.no_text_reason())

    # ----- images -----
    @abstractmethod
    def image_transform(self) -> Callable[[Any], torch.Tensor]:
        """The model's own eval transform: a PIL image to a normalised ``[3, H, W]`` tensor."""

    @abstractmethod
    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(mean, std)`` used by the transform, to undo it for display."""

    def labels(self) -> list[str] | None:
        return None


def explicit_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, names: dict[str, str],
    hooks: ActiveHooks, dropout: nn.Module, mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax attention step by step, with ``hook_attn_scores`` and ``hook_pattern``.

    Inputs and output are ``[batch, head, pos, d_head]``; the order of operations is timm's unfused path.
    ``mask`` is added to the scores before the hook (``-inf`` where a query may not look: text towers).
    """
    scores = (q * scale) @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores + mask
    scores = hooks(names["attn_scores"], scores)
    pattern = hooks(names["pattern"], scores.softmax(dim=-1))
    return dropout(pattern) @ v


def walk_block(
    parts: Any, blk: nn.Module, names: dict[str, str], keys: frozenset[str], x: torch.Tensor, hooks: ActiveHooks
) -> torch.Tensor:
    """One pre-norm block through ``parts`` (an adapter or a text tower: ``ln1``, ``attention`` ... ``mlp_branch``).

    No active key: the block's own forward. Only ``hook_resid_pre`` / ``hook_resid_post``: still its own forward,
    with the hooks around it. Otherwise its parts step by step, the fused attention kept unless a pattern is asked for.
    """
    if not keys:
        return parts.plain_block(blk, x)
    if keys <= BLOCK_EDGES:
        return hooks(names["resid_post"], parts.plain_block(blk, hooks(names["resid_pre"], x)))
    x = hooks(names["resid_pre"], x)
    h = hooks(names["ln1"], parts.ln1(blk, x))
    if keys & ATTN_INNER:
        explicit = bool(keys & EXPLICIT_ATTN) or not parts.fused(blk)
        a = parts.hooked_attention(blk, h, names, hooks, explicit)
    else:
        a = parts.attention(blk, h)
    a = hooks(names["attn_out"], parts.attn_branch(blk, a))
    x = hooks(names["resid_mid"], x + a)
    h = hooks(names["ln2"], parts.ln2(blk, x))
    m = parts.hooked_mlp(blk, h, names, hooks) if keys & MLP_INNER else parts.mlp(blk, h)
    m = hooks(names["mlp_out"], parts.mlp_branch(blk, m))
    return hooks(names["resid_post"], x + m)
