"""What the coverage sweep builds: every timm ``VisionTransformer`` / ``Eva`` architecture, every open_clip model
config, and the Hugging Face families, each small (2 blocks, small images where the constructor allows) with
random weights, and how to call the library itself on it (the reference the hooks are checked against).
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

DEPTH = 2
# timm modules whose architectures are VisionTransformer (and subclasses) or Eva
TIMM_VIT_MODULES = ("vision_transformer", "vision_transformer_hybrid", "deit", "vitamin", "eva")
# other timm transformer families: their own classes (listed in the table, not built)
TIMM_OTHER_MODULES = ("beit", "cait", "crossvit", "xcit", "vision_transformer_relpos", "vision_transformer_sam",
                      "naflexvit", "volo", "levit", "pit", "twins", "tnt", "swin_transformer", "swin_transformer_v2",
                      "swin_transformer_v2_cr", "mvitv2", "hiera", "hieradet_sam2", "qwen3_vit", "gemma4_vit")


@dataclass
class Entry:
    """One architecture to check: how to build it small, call it, and where it belongs in the table."""

    source: str  # "timm", "open_clip" or "transformers"
    name: str
    build: Callable[[], nn.Module]
    image: Callable[[nn.Module, torch.Tensor], torch.Tensor]  # the library's own image output
    text: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None  # the library's own text output
    text_tokens: Callable[[nn.Module], torch.Tensor] | None = None  # valid token ids for the text check
    pretrained: int = 0  # open_clip (model, tag) pairs with this architecture
    note: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


# ----- timm -----
def timm_names() -> list[str]:
    import timm

    return sorted(set(timm.list_models(module=list(TIMM_VIT_MODULES))))


def timm_other_counts() -> dict[str, int]:
    """How many architectures each other timm transformer family has."""
    import timm

    return {module: len(timm.list_models(module=module)) for module in TIMM_OTHER_MODULES}


class TooBig(RuntimeError):
    """The smallest build the constructor allows does not fit the sweep's memory budget."""


# fp32 parameters a sweep build may hold (the sweep runs on shared 24 GB machines)
MAX_PARAMS = 1_000_000_000


def _timm_plan(name: str) -> dict[str, Any]:
    """The smallest keyword arguments timm accepts for ``name`` (tried on the meta device: nothing allocated)."""
    import timm

    size = 56 if "patch14" in name else 64
    last: Exception | None = None
    for kwargs in ({"depth": DEPTH, "img_size": size}, {"depth": DEPTH}, {}):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                timm.create_model(name, pretrained=False, device="meta", **kwargs)
            return kwargs
        except Exception as err:
            last = err
            if "num_kv_heads" in str(err) and "depth" in kwargs:  # per-block settings: keep the first blocks'
                full = timm.create_model(name, pretrained=False, device="meta")
                heads = tuple(int(b.attn.num_kv_heads) for b in full.blocks[:DEPTH])
                try:
                    timm.create_model(name, pretrained=False, device="meta", num_kv_heads=heads, **kwargs)
                    return dict(kwargs, num_kv_heads=heads)
                except Exception as again:
                    last = again
    raise RuntimeError(f"timm cannot build {name}: {last}")


def timm_small(name: str) -> nn.Module:
    """``name`` with 2 blocks and small images where its constructor allows, random weights (refused with
    :class:`TooBig` when even that holds more than ``MAX_PARAMS`` parameters)."""
    import timm

    kwargs = _timm_plan(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        meta = timm.create_model(name, pretrained=False, device="meta", **kwargs)
        n = sum(p.numel() for p in meta.parameters())
        if n > MAX_PARAMS:
            raise TooBig(f"{n / 1e9:.1f} B parameters at the smallest build its constructor allows ({kwargs or 'none'})")
        return timm.create_model(name, pretrained=False, **kwargs)


def timm_entries() -> list[Entry]:
    return [Entry("timm", n, lambda n=n: timm_small(n), lambda m, x: m(x)) for n in timm_names()]


# ----- open_clip -----
@contextlib.contextmanager
def _shallow_timm_trunks(**extra: Any) -> Iterator[None]:
    """open_clip builds a timm trunk at full depth; ask timm for ``DEPTH`` blocks (and ``extra`` settings:
    ``img_size``, ``embed_dim`` ...) where the model takes them."""
    import timm

    real = timm.create_model

    def shallow(name: str, *args: Any, **kwargs: Any) -> nn.Module:
        try:
            return real(name, *args, depth=DEPTH, **extra, **kwargs)
        except TypeError:  # CNN trunks take no depth
            return real(name, *args, **kwargs)

    timm.create_model = shallow
    try:
        yield
    finally:
        timm.create_model = real


def open_clip_small(name: str, image_size: int | None = None, width: int | None = None) -> nn.Module:
    """open_clip's ``name`` with 2 blocks in each tower (a timm trunk too), random weights; at ``image_size``
    pixels and ``width`` channels (2 heads) everywhere when given (the tests' tiny models)."""
    import open_clip

    cfg = copy.deepcopy(open_clip.get_model_config(name))
    vision, text = dict(cfg["vision_cfg"]), dict(cfg["text_cfg"])
    if isinstance(vision.get("layers"), int):
        vision["layers"] = DEPTH
    if text.get("hf_model_name"):  # a Hugging Face text encoder needs the Hub: a small open_clip one stands in
        text = {k: v for k, v in text.items() if not k.startswith("hf_")} | {
            "context_length": 16, "vocab_size": 1000, "width": 64, "heads": 2, "layers": DEPTH}
    else:
        text["layers"] = DEPTH
    trunk: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if image_size:
        vision["image_size"] = trunk["img_size"] = image_size
    if width:
        trunk.update(embed_dim=width, num_heads=2)
        vision.update(width=width, head_width=width // 2)
        text.update(width=width, heads=2)
        extra["embed_dim"] = width
    with _shallow_timm_trunks(**trunk), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = open_clip.create_model(name, pretrained=None, vision_cfg=vision, text_cfg=text, **extra)
    return model.eval()


def open_clip_tokens(model: nn.Module) -> torch.Tensor:
    text = getattr(model, "text", model)
    vocab, length = int(text.vocab_size), int(text.context_length)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, vocab - 1, (2, length), generator=g)
    eos = getattr(text, "eos_id", None) or getattr(model, "text_eos_id", None)
    tokens[:, length // 2] = eos if getattr(text, "pool_type", getattr(model, "text_pool_type", "")) == "eos" else vocab - 1
    return tokens


def open_clip_entries() -> list[Entry]:
    import open_clip

    pairs: dict[str, int] = {}
    for model, _tag in open_clip.list_pretrained():
        pairs[model] = pairs.get(model, 0) + 1
    entries = []
    for name in open_clip.list_models():
        cfg = open_clip.get_model_config(name)
        note = "text tower replaced by a small open_clip one (its HF encoder needs the Hub)" if cfg[
            "text_cfg"].get("hf_model_name") else ""
        entries.append(Entry(
            "open_clip", name, lambda n=name: open_clip_small(n),
            lambda m, x: m.encode_image(x, normalize=False),
            text=lambda m, t: m.encode_text(t, normalize=False), text_tokens=open_clip_tokens,
            pretrained=pairs.get(name, 0), note=note,
            meta={"trunk": cfg["vision_cfg"].get("timm_model_name") or (
                "ModifiedResNet" if isinstance(cfg["vision_cfg"].get("layers"), (list, tuple)) else "VisionTransformer")},
        ))
    return entries


# ----- transformers -----
_VISION = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=DEPTH, num_attention_heads=4, image_size=32,
               patch_size=8)
_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=DEPTH, num_attention_heads=4, vocab_size=100,
             max_position_embeddings=16, bos_token_id=98, eos_token_id=99, pad_token_id=0)


def _dino(**extra: Any) -> dict[str, Any]:
    return {k: v for k, v in _VISION.items() if k != "intermediate_size"} | extra


def hf_builders() -> dict[str, Callable[[], nn.Module]]:
    """A small random-weight instance of every wrapped transformers class."""
    import transformers as T

    return {
        "CLIPModel": lambda: T.CLIPModel(T.CLIPConfig(text_config=_TEXT, vision_config=_VISION, projection_dim=32)),
        "CLIPVisionModel": lambda: T.CLIPVisionModel(T.CLIPVisionConfig(**_VISION)),
        "CLIPVisionModelWithProjection": lambda: T.CLIPVisionModelWithProjection(
            T.CLIPVisionConfig(projection_dim=32, **_VISION)),
        "SiglipModel": lambda: T.SiglipModel(T.SiglipConfig(text_config=_TEXT, vision_config=_VISION)),
        "SiglipVisionModel": lambda: T.SiglipVisionModel(T.SiglipVisionConfig(**_VISION)),
        "ViTModel": lambda: T.ViTModel(T.ViTConfig(**_VISION)),
        "ViTForImageClassification": lambda: T.ViTForImageClassification(T.ViTConfig(num_labels=7, **_VISION)),
        "Dinov2Model": lambda: T.Dinov2Model(T.Dinov2Config(**_dino())),
        "Dinov2ForImageClassification": lambda: T.Dinov2ForImageClassification(
            T.Dinov2Config(**_dino(num_labels=7, use_swiglu_ffn=True, layerscale_value=0.5))),
        "Dinov2WithRegistersModel": lambda: T.Dinov2WithRegistersModel(
            T.Dinov2WithRegistersConfig(**_dino(num_register_tokens=4))),
        "Dinov2WithRegistersForImageClassification": lambda: T.Dinov2WithRegistersForImageClassification(
            T.Dinov2WithRegistersConfig(**_dino(num_labels=7, num_register_tokens=4))),
        # video: clips of 4 frames (VideoMAE and ViViT embed tubelets of 2), a 4x4 grid per frame
        "VideoMAEModel": lambda: T.VideoMAEModel(T.VideoMAEConfig(num_frames=4, tubelet_size=2, **_VISION)),
        "VideoMAEForVideoClassification": lambda: T.VideoMAEForVideoClassification(
            T.VideoMAEConfig(num_frames=4, tubelet_size=2, num_labels=7, **_VISION)),
        "TimesformerModel": lambda: T.TimesformerModel(T.TimesformerConfig(num_frames=4, **_VISION)),
        "TimesformerForVideoClassification": lambda: T.TimesformerForVideoClassification(
            T.TimesformerConfig(num_frames=4, num_labels=7, **_VISION)),
        "VivitModel": lambda: T.VivitModel(T.VivitConfig(num_frames=4, tubelet_size=[2, 8, 8], **_vivit())),
        "VivitForVideoClassification": lambda: T.VivitForVideoClassification(
            T.VivitConfig(num_frames=4, tubelet_size=[2, 8, 8], num_labels=7, **_vivit())),
    }


def _vivit() -> dict[str, Any]:
    return {k: v for k, v in _VISION.items() if k != "patch_size"}


def hf_image(model: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    kind = type(model).__name__
    if kind in ("CLIPModel", "SiglipModel"):
        return model.get_image_features(pixel_values=pixels).pooler_output
    out = model(pixel_values=pixels)
    if hasattr(out, "logits"):
        return out.logits
    if hasattr(out, "image_embeds"):
        return out.image_embeds
    if getattr(out, "pooler_output", None) is not None:
        return out.pooler_output
    if getattr(model.config, "use_mean_pooling", False):  # VideoMAE: the mean of every token
        return out.last_hidden_state.mean(1)
    return out.last_hidden_state[:, 0]


def hf_tokens(model: nn.Module) -> torch.Tensor:
    cfg = model.config.text_config
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, cfg.vocab_size - 1, (2, cfg.max_position_embeddings), generator=g)
    tokens[:, cfg.max_position_embeddings // 2] = cfg.eos_token_id if cfg.eos_token_id != 2 else cfg.vocab_size - 1
    return tokens


def hf_entries() -> list[Entry]:
    entries = []
    for name, build in hf_builders().items():
        has_text = name in ("CLIPModel", "SiglipModel")
        entries.append(Entry(
            "transformers", name, lambda b=build: b().eval(), hf_image,
            text=(lambda m, t: m.get_text_features(input_ids=t).pooler_output) if has_text else None,
            text_tokens=hf_tokens if has_text else None,
        ))
    return entries


def all_entries() -> list[Entry]:
    """Every entry of the sweep: timm, then open_clip, then transformers."""
    return timm_entries() + open_clip_entries() + hf_entries()
