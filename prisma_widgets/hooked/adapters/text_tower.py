"""The text tower of an image-text model, hooked like the image tower under the prefix ``text.``.

Hook names: ``text.hook_embed`` (token embeddings ``[batch, ctx, d]``), ``text.hook_pos_embed`` (the position
embedding as added), ``text.blocks.{l}.<the block hooks of the image tower>``, ``text.ln_final.hook_normalized``
and ``text.hook_text_embed`` (the prompts' embeddings, before normalisation, ``[batch, d_output]``).
Each family's tower subclasses :class:`TextTower` together with its block parts (the same parts the image
tower uses, with the text tower's attention mask).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from ..hook_points import BLOCK_POINTS, ActiveHooks
from .base import walk_block

PREFIX = "text."


class TextTower(ABC):
    """A text transformer run block by block with hooks (``walk_block``), its own forward when none is active."""

    blocks: nn.ModuleList
    attn_mask: torch.Tensor | None = None
    gated_mlp: bool = False
    has_pos_embed: bool = True

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

