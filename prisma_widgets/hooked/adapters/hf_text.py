"""The text side of Hugging Face CLIP and SigLIP, and the model's own image processor and tokenizer.

Processor and tokenizer: a model loaded from the Hub (``config._name_or_path`` names its repository) gets the
repository's own ``AutoImageProcessor`` / ``AutoTokenizer`` (from the local cache when offline). A model built
from a config gets its image processor class built from the config (no network; sizes scaled to the model's
input), and no tokenizer: pass ``pw.HookedViT(model, tokenizer=...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..hook_points import ActiveHooks
from ..hub import stay_local
from .base import UnsupportedModelError
from .hf_blocks import HFBlocks
from .text_tower import PREFIX, TextTower

# model type -> the image processor family whose defaults it uses
_PROCESSOR_TYPES = {"clip_vision_model": "clip", "siglip_vision_model": "siglip", "dinov2_with_registers": "dinov2"}


def _repository(module: nn.Module) -> str | None:
    name = getattr(module.config, "_name_or_path", "") or ""
    return name or None


def image_processor(module: nn.Module, size: tuple[int, int]) -> Any:
    """The model's own image processor: its repository's, else its class built from the config at ``size``."""
    repo = _repository(module)
    if repo is not None:
        from transformers import AutoImageProcessor

        try:
            return AutoImageProcessor.from_pretrained(repo, local_files_only=stay_local(repo))
        except (OSError, ValueError):
            pass  # not on the Hub / not cached: build it from the config below
    import transformers
    from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING_NAMES

    model_type = str(module.config.model_type)
    names = IMAGE_PROCESSOR_MAPPING_NAMES.get(_PROCESSOR_TYPES.get(model_type, model_type)) or {}
    name = names.get("pil") or names.get("torchvision") if isinstance(names, dict) else None
    if name is None:
        raise UnsupportedModelError(f"transformers has no image processor for model type {model_type!r}")
    processor = getattr(transformers, name)()
    height, width = size
    crop = getattr(processor, "crop_size", None)
    if getattr(processor, "do_center_crop", False) and crop:
        shortest = dict(processor.size).get("shortest_edge", crop["height"])
        ratio = shortest / crop["height"]  # keep the processor's resize-then-crop margin
        processor.size = {"shortest_edge": int(round(min(height, width) * ratio))}
        processor.crop_size = {"height": height, "width": width}
    else:
        processor.size = {"height": height, "width": width}
    return processor


class HFTextTower(HFBlocks, TextTower):
    """CLIP's causal / SigLIP's bidirectional text encoder with ``text.*`` hooks."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.src = model.text_model
        self.blocks = self.src.encoder.layers
        self.causal = type(model).__name__ == "CLIPModel"
        config = self.src.config
        self.vocab_size, self.context_length = int(config.vocab_size), int(config.max_position_embeddings)
        super().__init__()

    def embed(self, tokens: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        from transformers.masking_utils import create_bidirectional_mask, create_causal_mask

        emb = self.src.embeddings
        x = hooks(f"{PREFIX}hook_embed", emb.token_embedding(tokens))
        pos = emb.position_embedding(emb.position_ids[:, : tokens.shape[-1]])
        if hooks.active(f"{PREFIX}hook_pos_embed"):
            pos = hooks(f"{PREFIX}hook_pos_embed", pos.expand(x.shape[0], -1, -1))
        x = x + pos
        if self.causal:
            self.attn_mask = create_causal_mask(config=self.src.config, inputs_embeds=x, attention_mask=None, cache=None)
            self.attn_kwargs = {"is_causal": True}
        else:
            self.attn_mask = create_bidirectional_mask(config=self.src.config, inputs_embeds=x, attention_mask=None)
            self.attn_kwargs = {}
        return x

    def head(self, x: torch.Tensor, tokens: torch.Tensor, hooks: ActiveHooks) -> torch.Tensor:
        self.attn_kwargs = {}
        x = hooks(f"{PREFIX}ln_final.hook_normalized", self.src.final_layer_norm(x))
        rows = torch.arange(x.shape[0], device=x.device)
        if not self.causal:  # SigLIP: the last token, through the text head
            return self.src.head(x[:, -1, :])
        ids = tokens.to(dtype=torch.int, device=x.device)
        eos = self.src.eos_token_id
        last = ids.argmax(dim=-1) if eos == 2 else (ids == eos).int().argmax(dim=-1)
        return self.model.text_projection(x[rows, last])


class HFText:
    """Prompts for HF CLIP / SigLIP; ``self.clip`` is the image-text model (``None`` for a vision model alone)."""

    clip: nn.Module | None
    module: nn.Module

    def no_text_reason(self) -> str:
        return (f"this {type(self.module).__name__} has no text tower: wrap the whole CLIPModel / SiglipModel to "
                "read out prompts")

    def _text_model(self) -> nn.Module:
        if self.clip is None:
            raise TypeError(self.no_text_reason())
        return self.clip

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        out = self._text_model().get_text_features(input_ids=tokens).pooler_output
        return nn.functional.normalize(out, dim=-1) if normalize else out

    def logit_scale(self) -> float:
        return float(self._text_model().logit_scale.detach().exp())

    def logit_bias(self) -> float:
        bias = getattr(self._text_model(), "logit_bias", None)
        return float(bias.detach()) if bias is not None else 0.0

    def text_tower(self) -> HFTextTower:
        tower = getattr(self, "_text_tower", None)
        if tower is None:
            tower = self._text_tower = HFTextTower(self._text_model())
        return tower

    def default_tokenizer(self) -> Callable[[list[str]], torch.Tensor]:
        model = self._text_model()
        repo = _repository(model)
        if repo is None:
            raise ValueError("this model was built from a config, so it has no tokenizer: pass "
                             "pw.HookedViT(model, tokenizer=...) (a list of prompts -> token ids)")
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(repo, local_files_only=stay_local(repo))
        except OSError as err:
            raise RuntimeError(f"the tokenizer of {repo!r} could not be loaded ({err}); fetch it once online, or "
                               "pass pw.HookedViT(model, tokenizer=...)") from err
        length = int(model.config.text_config.max_position_embeddings)

        def tokenize(prompts: list[str]) -> torch.Tensor:
            # SigLIP was trained on max-length padding; CLIP pools its end token, which padding leaves alone
            return tok(list(prompts), padding="max_length", max_length=length, truncation=True,
                       return_tensors="pt")["input_ids"]

        return tokenize
