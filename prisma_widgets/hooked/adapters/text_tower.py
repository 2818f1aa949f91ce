"""The text tower of an image-text model, hooked like the image tower under the prefix ``text.``.

Hook names: ``text.hook_embed`` (token embeddings ``[batch, ctx, d]``), ``text.hook_pos_embed`` (the position
embedding as added), ``text.blocks.{l}.<the block hooks of the image tower>``, ``text.ln_final.hook_normalized``
and ``text.hook_text_embed`` (the prompts' embeddings, before normalisation, ``[batch, d_output]``).
Each family's tower subclasses :class:`TextTower` together with its block parts (the same parts the image
tower uses, with the text tower's attention mask).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn

from ..hook_points import BLOCK_POINTS, ActiveHooks
from .base import UnsupportedModelError, walk_block

PREFIX = "text."


class TextTower(ABC):
    """A text transformer run block by block with hooks (``walk_block``), its own forward when none is active."""

    blocks: nn.ModuleList
    attn_mask: torch.Tensor | None = None
    gated_mlp: bool = False
    has_pos_embed: bool = True
    #: token ids run 0 .. vocab_size - 1; a prompt holds at most context_length of them (exactly, if exact_length)
    vocab_size: int
    context_length: int
    exact_length: bool = False

    def __init__(self) -> None:
        self.names: list[dict[str, str]] = [
            {key: f"{PREFIX}blocks.{layer}.{suffix}" for key, suffix in BLOCK_POINTS} for layer in range(self.n_layers)
        ]

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    def hook_names(self) -> list[str]:
        """Every text hook, in execution order."""
        names = [f"{PREFIX}hook_embed"] + ([f"{PREFIX}hook_pos_embed"] if self.has_pos_embed else [])
        for layer in range(self.n_layers):
            for key, _ in BLOCK_POINTS:
                if key == "mlp_pre_linear" and not self.gated_mlp:
                    continue
                names.append(self.names[layer][key])
        return names + [f"{PREFIX}ln_final.hook_normalized", f"{PREFIX}hook_text_embed"]

    def forward(self, tokens: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        """Token ids ``[batch, ctx]`` to text embeddings ``[batch, d_output]`` (not normalised), with hooks."""
        x = self.embed(tokens, hooks)
        try:
            for layer, blk in enumerate(self.blocks):
                keys = hooks.block_keys[layer] if hooks else frozenset()
                x = walk_block(self, blk, self.names[layer], keys, x, hooks)
            return hooks(f"{PREFIX}hook_text_embed", self.head(x, tokens, hooks))
        finally:
            self.attn_mask = None

    @abstractmethod
    def embed(self, tokens: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        """Token ids to the stream entering block 0; sets ``self.attn_mask`` for the blocks."""

    @abstractmethod
    def head(self, x: torch.Tensor, tokens: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        """The stream after the last block to the embedding (final norm with ``ln_final.hook_normalized``,
        pooling, projection)."""



def check_tokens(tokens: Any, adapter: Any) -> torch.Tensor:
    """Token ids ``[batch, ctx]`` as the model's text tower takes them (a single prompt's ``[ctx]`` gets a batch
    axis), or an error naming what is wrong and the fix: not integers, no prompts, a length or an id the tower
    cannot take (its position embedding, its vocabulary). A text encoder without hooks gets the shape checks."""
    fix = "Pass the prompts as strings (model.to_tokens(['a photo of a cat'])), or ids from model.tokenizer."
    if not isinstance(tokens, torch.Tensor):
        raise TypeError(f"token ids must be a torch tensor; got {type(tokens).__name__}. {fix}")
    if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
        raise TypeError(f"token ids must be integers (torch.long); got {tokens.dtype}. {fix}")
    if tokens.ndim == 1:
        tokens = tokens[None]
    if tokens.ndim != 2 or tokens.shape[0] == 0:
        raise ValueError(f"token ids must be [prompt, position] with at least one prompt; got shape "
                         f"{list(tokens.shape)}. {fix}")
    try:
        tower = adapter.text_tower()
    except UnsupportedModelError:  # a text encoder without hooks (open_clip's HF encoders): its own checks
        return tokens
    n, length = int(tokens.shape[1]), int(tower.context_length)
    if (tower.exact_length and n != length) or not 1 <= n <= length:
        need = f"exactly {length}" if tower.exact_length else f"1 to {length}"
        raise ValueError(f"this text tower takes {need} tokens per prompt (its position embedding); got {n}. {fix}")
    lo, hi = int(tokens.min()), int(tokens.max())
    if lo < 0 or hi >= tower.vocab_size:
        bad = lo if lo < 0 else hi
        raise ValueError(f"token id {bad} is outside this text tower's vocabulary (0 to {tower.vocab_size - 1}). {fix}")
    return tokens
