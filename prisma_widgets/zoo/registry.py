"""The bundled mice: architectures (real timm / open_clip modules), weight files, loading and checking.

Weights are safetensors files in ``zoo/weights/`` stored as float16 (loaded back into float32 modules).
The CLIP token embedding (49408 x width) is stored sparsely: only the rows of tokens the training
captions and prompts use (``token_embedding.rows`` + ``token_embedding.index``); every other row
is zero after loading, so words the mouse never saw contribute nothing but their position.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .clips import MOTIONS
from .shapes import SHAPE_CLASSES
from .video import create_video_mouse

HERE = Path(__file__).resolve().parent
WEIGHTS_DIR = HERE / "weights"
CARDS_DIR = HERE / "cards"

BUNDLED: tuple[str, ...] = ("mouse-vit", "mouse-clip", "mouse-video")

IMAGE_SIZE = 64
PATCH = 8
MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)

VIT_ARCH = dict(img_size=IMAGE_SIZE, patch_size=PATCH, embed_dim=128, depth=4, num_heads=4, mlp_ratio=4.0)
CLIP_EMBED_DIM = 128
CLIP_VISION = dict(layers=4, width=128, head_width=32, mlp_ratio=4.0, patch_size=PATCH, image_size=IMAGE_SIZE,
                   no_ln_pre=True)  # the same block stack as mouse-vit, so mouse-clip can start from it
CLIP_TEXT = dict(context_length=32, vocab_size=49408, width=128, heads=4, layers=3)
EMBED_KEY = "token_embedding.weight"
SPARSE_ROWS, SPARSE_INDEX = "token_embedding.rows", "token_embedding.index"


class WeightsError(RuntimeError):
    """A bundled weights file is missing, truncated, corrupt or does not fit the architecture."""


def weights_path(name: str) -> Path:
    """Where the wheel keeps the bundled model's safetensors file (``weights_path("mouse-vit")``)."""
    return WEIGHTS_DIR / f"{name}.safetensors"


def card_path(name: str) -> Path:
    """Where the wheel keeps the bundled model's card (Markdown: recipe, data, measured results)."""
    return CARDS_DIR / f"{name}.md"


def _check_name(name: str) -> None:
    if name not in BUNDLED:
        raise ValueError(f"unknown bundled model {name!r}; bundled models: {', '.join(BUNDLED)}")


def create(name: str) -> torch.nn.Module:
    """A freshly initialised (untrained) module of the mouse architecture, built by timm / open_clip / transformers."""
    _check_name(name)
    if name == "mouse-video":
        return create_video_mouse()
    if name == "mouse-vit":
        import timm

        return timm.create_model(
            "vit_tiny_patch16_224",
            pretrained=False,
            num_classes=len(SHAPE_CLASSES),
            pretrained_cfg_overlay=dict(
                input_size=(3, IMAGE_SIZE, IMAGE_SIZE),
                mean=MEAN,
                std=STD,
                crop_pct=1.0,
                crop_mode="center",
                interpolation="bilinear",
                num_classes=len(SHAPE_CLASSES),
                label_names=list(SHAPE_CLASSES),
            ),
            **VIT_ARCH,
        )
    import open_clip
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg, set_model_preprocess_cfg
    from open_clip.transform import PreprocessCfg

    model = open_clip.CLIP(CLIP_EMBED_DIM, CLIPVisionCfg(**CLIP_VISION), CLIPTextCfg(**CLIP_TEXT))
    pp = asdict(PreprocessCfg())
    pp.update(size=IMAGE_SIZE, mean=MEAN, std=STD, interpolation="bilinear", resize_mode="shortest")
    set_model_preprocess_cfg(model, pp)
    return model


def tokenizer(context_length: int = CLIP_TEXT["context_length"]):
    """open_clip's own bundled BPE tokenizer (offline), at the mouse's context length."""
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=context_length)


def state_for_saving(name: str, model: torch.nn.Module, used_tokens=None) -> dict[str, torch.Tensor]:
    """The module's state dict as float16 tensors, the CLIP token table reduced to ``used_tokens`` rows."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if name == "mouse-clip":
        table = state.pop(EMBED_KEY)
        index = torch.as_tensor(sorted(set(int(t) for t in used_tokens)), dtype=torch.int64)
        state[SPARSE_INDEX] = index
        state[SPARSE_ROWS] = table[index]
    return {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}


def save(name: str, model: torch.nn.Module, path: str | Path | None = None, used_tokens=None,
         metadata: dict[str, str] | None = None) -> Path:
    from safetensors.torch import save_file

    path = Path(path) if path is not None else weights_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state_for_saving(name, model, used_tokens), str(path), metadata={"model": name, **(metadata or {})})
    return path


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; any failure becomes a :class:`WeightsError` naming the file."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist (retrain with `python -m prisma_widgets.zoo.train`)")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for truncated / garbled headers
        raise WeightsError(
            f"cannot read weights file {path} ({path.stat().st_size} bytes): {err}. "
            "The file is truncated or corrupt; reinstall prisma_widgets or retrain it."
        ) from err


def load_into(name: str, model: torch.nn.Module, path: str | Path) -> None:
    """Load a stored (float16, sparse-embedding) state into ``model``, checking every key and shape."""
    path = Path(path)
    state = read_state(path)
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise WeightsError(f"weights file {path} holds NaN or inf in {', '.join(bad[:5])}: the file is corrupt; "
                           "reinstall prisma_widgets or retrain it (python -m prisma_widgets.zoo.train)")
    target = model.state_dict()
    if name == "mouse-clip":
        if SPARSE_ROWS not in state or SPARSE_INDEX not in state:
            raise WeightsError(f"weights file {path} has no {SPARSE_ROWS!r}/{SPARSE_INDEX!r}: not a mouse-clip file")
        rows, index = state.pop(SPARSE_ROWS), state.pop(SPARSE_INDEX)
        full = target[EMBED_KEY]
        if rows.ndim != 2 or rows.shape[1] != full.shape[1] or index.shape != (rows.shape[0],) or (
            index.numel() and (int(index.min()) < 0 or int(index.max()) >= full.shape[0])
        ):
            raise WeightsError(
                f"weights file {path}: token rows {tuple(rows.shape)} / index {tuple(index.shape)} do not fit "
                f"the token table {tuple(full.shape)}"
            )
        table = torch.zeros_like(full)
        table[index] = rows.to(table.dtype)
        state[EMBED_KEY] = table
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(target[k].shape)}"
             for k in target if k in state and state[k].shape != target[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if wrong:
            parts.append(f"wrong shapes {wrong[:5]}{' ...' if len(wrong) > 5 else ''}")
        raise WeightsError(f"weights file {path} does not fit {name}: " + "; ".join(parts))
    model.load_state_dict({k: v.to(target[k].dtype) for k, v in state.items()}, strict=True)


def build(name: str, device: str | torch.device | None = None, weights: str | Path | None = None
          ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The bundled model ``name`` as a real timm / open_clip / transformers module with its shipped weights, in eval mode.

    Returns ``(module, meta)`` with ``meta = {"labels", "card", "weights"}`` and, for CLIP, ``"tokenizer"``
    (open_clip's bundled tokenizer, ``list[str] -> LongTensor [n, 32]``) and ``"prompts"`` (the zero-shot
    prompt per label). ``weights`` points at another file of the same architecture (default: the shipped one).
    An unknown name raises ``ValueError`` listing :data:`BUNDLED`; a missing, truncated or wrong-shaped weights
    file raises :class:`WeightsError` naming the file.

    Example:
        >>> from prisma_widgets import zoo
        >>> model, meta = zoo.build("mouse-vit")
        >>> meta["labels"][:3]
        ['circle', 'square', 'triangle']
    """
    _check_name(name)
    model = create(name)
    load_into(name, model, Path(weights) if weights is not None else weights_path(name))
    model.eval()
    if device is not None:
        model.to(device)
    labels = list(MOTIONS) if name == "mouse-video" else list(SHAPE_CLASSES)
    meta: dict[str, Any] = {"labels": labels, "card": str(card_path(name)),
                            "weights": str(Path(weights) if weights is not None else weights_path(name))}
    if name == "mouse-clip":
        meta["tokenizer"] = tokenizer()
        meta["prompts"] = [PROMPT.format(c) for c in SHAPE_CLASSES]
    return model, meta


PROMPT = "a photo of a {}"
