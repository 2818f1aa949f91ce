"""Hugging Face Hub names (``pw.load("hf:openai/clip-vit-base-patch32")``) to the wrapped transformers class."""

from __future__ import annotations

import glob
import os
from typing import Any

from torch import nn

from ...files import check_safetensors, read_json
from ..hub import damaged_download
from .base import SUPPORTED_FAMILIES, UnsupportedModelError
from .hf import WRAPPED
from .hf_video import VIDEO_WRAPPED

# config.model_type -> the class to build when the config names no supported architecture
_BY_TYPE = {
    "clip": "CLIPModel", "clip_vision_model": "CLIPVisionModel", "siglip": "SiglipModel",
    "siglip_vision_model": "SiglipVisionModel", "vit": "ViTModel", "dinov2": "Dinov2Model",
    "dinov2_with_registers": "Dinov2WithRegistersModel", "videomae": "VideoMAEModel",
    "timesformer": "TimesformerModel", "vivit": "VivitModel",
}


def build_hf(repo: str, pretrained: bool, kwargs: dict[str, Any]) -> nn.Module:
    """The model a Hub repository holds, as the supported transformers class its config names.

    ``pretrained=False`` builds that class from the repository's config with random weights. ``repo`` may also be
    a folder on this machine (checked first: missing, damaged files are named). Network errors (offline, no such
    repository) propagate as ``OSError``; a damaged file in the hub cache is a ``DamagedFileError``.
    """
    try:
        import transformers
    except ImportError as err:
        raise ImportError("Hugging Face models need transformers: pip install 'prisma-widgets[hf]'") from err
    if is_local_path(repo):
        repo = os.path.expanduser(repo)
        check_folder(repo, pretrained)
    try:
        return _build(transformers, repo, pretrained, kwargs)
    except Exception as err:
        damaged = damaged_download(f"hf:{repo}", err)
        if damaged is not None:
            raise damaged from err
        raise


def _build(transformers: Any, repo: str, pretrained: bool, kwargs: dict[str, Any]) -> nn.Module:
    config = transformers.AutoConfig.from_pretrained(repo)
    name = next((a for a in (config.architectures or []) if a in WRAPPED or a in VIDEO_WRAPPED), None) or _BY_TYPE.get(config.model_type)
    if name is None:
        raise UnsupportedModelError(
            f"{repo} is a {config.model_type!r} model ({', '.join(config.architectures or []) or 'no architecture'}); "
            f"supported: {SUPPORTED_FAMILIES}.")
    cls = getattr(transformers, name)
    return cls.from_pretrained(repo, **kwargs) if pretrained else cls(config)


def is_local_path(source: str) -> bool:
    """Whether an ``hf:`` source names something on this machine (a folder written by ``save_pretrained``)
    rather than a Hub repository (``"user/name"``)."""
    return (os.path.exists(source) or os.path.isabs(source) or source.startswith((".", "~"))
            or source.count("/") > 1 or "\\" in source)


_SAVED = "a folder written by model.save_pretrained(folder) holds config.json and model.safetensors"


def check_folder(folder: str, pretrained: bool) -> None:
    """A local model folder, checked before transformers reads it: missing, a file, no or a damaged
    ``config.json``, no or damaged weights (with ``pretrained``) are errors naming the path and the fix."""
    if not os.path.exists(folder):
        raise FileNotFoundError(f"no folder {folder!r}: an hf: name is a Hub repository ('openai/clip-vit-base-patch32') "
                                f"or a model folder on this machine ({_SAVED})")
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"{folder!r} is a file: pass the folder that holds it ({_SAVED})")
    config = os.path.join(folder, "config.json")
    if not os.path.isfile(config):
        raise FileNotFoundError(f"{folder!r} holds no config.json, so it is no Hugging Face model folder ({_SAVED})")
    read_json(config, "the model's configuration", f"Save the model again (model.save_pretrained({folder!r})).")
    if not pretrained:
        return
    weights = sorted(glob.glob(os.path.join(folder, "*.safetensors")))
    if not weights and not glob.glob(os.path.join(folder, "*.bin")):
        raise FileNotFoundError(f"{folder!r} holds a configuration but no weights (model.safetensors): save them "
                                "there, or load with pretrained=False for random weights")
    for path in weights:
        check_safetensors(path, "a weights file of this model",
                          f"Save the model again (model.save_pretrained({folder!r})), or download it again.")
