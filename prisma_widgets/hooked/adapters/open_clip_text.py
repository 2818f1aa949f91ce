"""The text side of open_clip models: the hooked text tower and the prompt embeddings, scale and bias.

Both open_clip layouts are covered: ``CLIP`` keeps the text transformer's parts on the model itself,
``CustomTextCLIP`` (SigLIP, EVA02-CLIP, CoCa, ...) holds a ``TextTransformer`` in ``model.text``. A Hugging
Face text encoder inside open_clip (``HFTextEncoder``: RoBERTa, XLM-R, NLLB, mT5) still encodes prompts, but has
no text hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..hook_points import ActiveHooks
from ..hub import cache_only, stay_local
from .base import UnsupportedModelError
from .open_clip_blocks import OpenClipBlocks, check_blocks
from .text_tower import PREFIX, TextTower


class OpenClipTextTower(OpenClipBlocks, TextTower):
    """open_clip's causal (or bidirectional) text transformer with ``text.*`` hooks."""

    def __init__(self, clip: nn.Module) -> None:
        from open_clip.transformer import TextTransformer

        text = getattr(clip, "text", None)
        if text is None:  # CLIP: the text parts live on the model
            self.src, self.separate = clip, False
            self.pool_type, self.eos_id, self.cls_emb = clip.text_pool_type, getattr(clip, "text_eos_id", None), None
        elif isinstance(text, TextTransformer):
            self.src, self.separate = text, True
            self.pool_type, self.eos_id, self.cls_emb = text.pool_type, getattr(text, "eos_id", None), text.cls_emb
        else:
            raise UnsupportedModelError(
                f"this open_clip model's text tower is {type(text).__name__} (a Hugging Face text encoder): "
                "prompts encode (model.encode_text), but the text tower has no hooks")
        if not getattr(self.src.transformer, "batch_first", True):
            raise UnsupportedModelError("this open_clip text transformer runs sequence-first (an old open_clip)")
        self.blocks = self.src.transformer.resblocks
        check_blocks(self.blocks, "text")
        self.vocab_size = int(self.src.token_embedding.num_embeddings)
        self.context_length = int(self.src.context_length)
        self.exact_length = not self.separate  # CLIP adds its whole position embedding
        super().__init__()

    def embed(self, tokens: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        src = self.src
        cast = src.transformer.get_cast_dtype()
        x = hooks(f"{PREFIX}hook_embed", src.token_embedding(tokens).to(cast))
        seq = tokens.shape[1]
        mask = src.attn_mask
        if self.separate:
            if self.cls_emb is not None:  # CoCa appends a class token
                x = torch.cat([x, self.cls_emb.view(1, 1, -1).expand(x.shape[0], -1, -1)], dim=1)
                seq += 1
            if src.use_pad_mask or self.cls_emb is not None:
                add = src._build_additive_mask(tokens, seq, x.dtype)
                mask = mask[:seq, :seq].unsqueeze(0) + add if mask is not None else add
            pos = src.positional_embedding[:seq].to(cast)
        else:
            pos = src.positional_embedding.to(cast)
        if hooks.active(f"{PREFIX}hook_pos_embed"):
            pos = hooks(f"{PREFIX}hook_pos_embed", pos.expand(x.shape[0], -1, -1))
        self.attn_mask = mask
        return x + pos

    def head(self, x: torch.Tensor, tokens: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        from open_clip.transformer import text_global_pool

        src = self.src
        name = f"{PREFIX}ln_final.hook_normalized"
        if self.cls_emb is not None:  # the appended class token, normalised after pooling
            pooled = hooks(name, src.ln_final(x[:, -1]))
        else:
            x = hooks(name, src.ln_final(x))
            pooled = text_global_pool(x, tokens, self.pool_type, eos_token_id=self.eos_id)
        proj = src.text_projection
        if proj is None:
            return pooled
        return proj(pooled) if isinstance(proj, nn.Linear) else pooled @ proj


class OpenClipText:
    """Prompts for open_clip models; ``self.clip`` is the whole model (``None`` for an image tower alone)."""

    clip: nn.Module | None
    cfg: Any

    def no_text_reason(self) -> str:
        return ("text encoding needs a whole open_clip CLIP model; this wraps an image tower alone: "
                "wrap the CLIP model, not model.visual")

    def _text_model(self) -> nn.Module:
        if self.clip is None:
            raise TypeError(self.no_text_reason())
        return self.clip

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        return self._text_model().encode_text(tokens, normalize=normalize)

    def logit_scale(self) -> float:
        return float(self._text_model().logit_scale.detach().exp())

    def logit_bias(self) -> float:
        bias = getattr(self._text_model(), "logit_bias", None)
        return float(bias.detach()) if bias is not None else 0.0

    def text_tower(self) -> OpenClipTextTower:
        tower = getattr(self, "_text_tower", None)
        if tower is None:
            tower = self._text_tower = OpenClipTextTower(self._text_model())
        return tower

    def default_tokenizer(self) -> Callable[[list[str]], torch.Tensor]:
        clip = self._text_model()
        if getattr(clip, "vocab_size", None) == 49408:
            from open_clip.tokenizer import SimpleTokenizer

            return SimpleTokenizer(context_length=int(clip.context_length))
        import open_clip

        spec = (self.cfg.model_name or "").removeprefix("open_clip:")
        name = spec if spec.startswith("hf-hub:") else spec.split("/")[0]
        if name not in open_clip.list_models() and not name.startswith("hf-hub:"):
            raise ValueError(
                "this CLIP's text tower does not use the OpenAI BPE vocabulary: pass "
                "pw.HookedViT(clip, tokenizer=open_clip.get_tokenizer(<model name>))")
        try:
            with cache_only(stay_local()):  # no network: the local cache at once, not a minute of retries
                return open_clip.get_tokenizer(name)
        except (OSError, RuntimeError) as err:
            raise RuntimeError(
                f"{name}'s tokenizer is a Hugging Face tokenizer that could not be loaded ({err}). Fetch it once "
                f"online (open_clip.get_tokenizer({name!r})), or pass pw.HookedViT(model, tokenizer=...)") from err
