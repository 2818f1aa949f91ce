"""``pw.load``: one entry point for timm names, open_clip specs and the bundled models."""

from __future__ import annotations

import contextlib
import difflib
import os
import warnings
from collections.abc import Iterator
from typing import Any

import torch

from ..validate import check_device
from .hub import PROBE_TIMEOUT, cache_only, damaged_download, hub_endpoint, hub_reachable, offline
from .model import HookedViT

OPEN_CLIP_PREFIX = "open_clip:"
# the hub endpoint, while a load runs in cache-only mode because the hub did not answer the probe
_NO_NETWORK: list[str] = []
HF_PREFIX = "hf:"
# timm's and open_clip's prefix for a Hugging Face Hub repository
HUB_SCHEMA = "hf-hub:"


class OfflineError(RuntimeError):
    """Pretrained weights were asked for, but the model hub cannot be reached (or offline mode is on)."""


def _offline_hint(name: str, err: Exception, what: str = "the pretrained weights") -> RuntimeError:
    cause = (f"the model hub ({_NO_NETWORK[-1]}) did not answer within {PROBE_TIMEOUT:g} s, and they are not in the "
             "local hub cache; on a slow network set PRISMA_WIDGETS_HUB_TIMEOUT=30" if _NO_NETWORK
             else f"{type(err).__name__}: {err}")
    return OfflineError(
        f"could not fetch {what} of {name!r} ({cause}). "
        "Offline? With PRISMA_WIDGETS_OFFLINE=1, weights fetched before load from the local hub cache; "
        "otherwise use pretrained=False for random weights, or a bundled model such as pw.load('mouse-vit')."
    )


def _hub_cache_only() -> contextlib.AbstractContextManager[None]:
    """In offline mode, or when the hub did not answer the probe, hub downloads read the local cache only,
    so weights fetched earlier still load and the rest fails at once."""
    return cache_only(offline() or bool(_NO_NETWORK))


def _timm_arch(name: str) -> str:
    """``"timm/vit_small_patch16_224.augreg_in21k"`` -> ``"vit_small_patch16_224"``."""
    bare = name.split("/", 1)[1] if name.startswith("timm/") else name
    return bare.split(".", 1)[0]


def is_timm_name(name: str) -> bool:
    """Whether timm knows ``name`` (a timm architecture, optionally ``timm/`` + a pretrained tag, or ``hf-hub:``)."""
    import timm

    return name.startswith("hf-hub:") or timm.is_model(_timm_arch(name))


def unknown_model_error(name: str, bundled: tuple[str, ...]) -> ValueError:
    """The error for a name that is no model: close timm / bundled names, and the forms a name can take."""
    import timm

    candidates = list(bundled) + timm.list_models("*vit*") + timm.list_models("deit*")
    close = difflib.get_close_matches(_timm_arch(name), candidates, n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return ValueError(
        f"unknown model {name!r}.{hint} Use a timm ViT name, 'open_clip:ViT-B-32[/pretrained-tag]', "
        "'hf:<user>/<repository>' (Hugging Face CLIP, SigLIP, ViT, DINOv2; VideoMAE, TimeSformer, ViViT), "
        f"or a bundled model ({', '.join(bundled)})."
    )


def _load_timm(name: str, pretrained: bool, kwargs: dict[str, Any]) -> torch.nn.Module:
    import timm

    try:
        with _hub_cache_only():
            return timm.create_model(name[len("timm/"):] if name.startswith("timm/") else name,
                                     pretrained=pretrained, **kwargs)
    except (OSError, ConnectionError, TimeoutError) as err:
        raise _offline_hint(name, err) from err
    except Exception as err:
        damaged = damaged_download(name, err)
        if damaged is not None:
            raise damaged from err
        raise


def _load_open_clip(spec: str, pretrained: bool, kwargs: dict[str, Any]) -> tuple[torch.nn.Module, Any]:
    import open_clip

    if spec.startswith(HUB_SCHEMA):  # a Hub repository holding an open_clip config (and weights)
        arch, weights = spec, None
        kwargs = {"load_weights": pretrained, **kwargs}
    else:
        arch, _, tag = spec.partition("/")
        if arch not in open_clip.list_models():
            close = difflib.get_close_matches(arch, open_clip.list_models(), n=5, cutoff=0.5)
            raise ValueError(f"unknown open_clip model {arch!r}." + (f" Did you mean: {', '.join(close)}?" if close else "")
                             + f" A Hub repository is 'open_clip:{HUB_SCHEMA}<user>/<repository>'.")
        weights = None
        if pretrained:
            tags = open_clip.list_pretrained_tags_by_model(arch)
            if tag and tag not in tags:
                raise ValueError(f"open_clip has no pretrained tag {tag!r} for {arch}; available: {', '.join(tags) or 'none'}")
            weights = tag or (tags[0] if tags else None)
            if weights is None:
                raise ValueError(f"open_clip has no pretrained weights for {arch}; use pretrained=False")
        else:  # random weights all through: no Hugging Face text encoder's weights either
            kwargs = {"pretrained_text": False, **kwargs}
    what = "the pretrained weights" if pretrained else "the configuration"
    try:
        with _hub_cache_only(), _quiet_open_clip_download_errors():
            model = open_clip.create_model(arch, pretrained=weights, **kwargs)
    except (OSError, ConnectionError, TimeoutError) as err:
        raise _offline_hint(OPEN_CLIP_PREFIX + spec, err, what) from err
    except Exception as err:
        damaged = damaged_download(OPEN_CLIP_PREFIX + spec, err)
        if damaged is not None:
            raise damaged from err
        # open_clip re-raises a failed download as a RuntimeError (the network error is its context)
        cause = _network_cause(err) if isinstance(err, RuntimeError) else None
        if cause is not None:
            raise _offline_hint(OPEN_CLIP_PREFIX + spec, cause, what) from err
        raise
    try:
        with _hub_cache_only():
            return model, open_clip.get_tokenizer(arch)
    except (OSError, RuntimeError) as err:  # a Hugging Face tokenizer that is not cached: the adapter explains
        if isinstance(err, RuntimeError) and _network_cause(err) is None:   # when prompts need it
            raise
        return model, None


def _network_cause(err: BaseException) -> BaseException | None:
    """The network or missing-file error behind ``err`` (itself, its cause or context), if any."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, (OSError, ConnectionError, TimeoutError)):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _load_hf(repo: str, pretrained: bool, kwargs: dict[str, Any]) -> torch.nn.Module:
    from .adapters.hf_hub import build_hf, is_local_path

    if is_local_path(repo):  # a folder on this machine: its files say what is wrong, no hub is involved
        return build_hf(repo, pretrained, kwargs)
    try:
        with _hub_cache_only():
            return build_hf(repo, pretrained, kwargs)
    except (OSError, ConnectionError, TimeoutError) as err:
        raise _offline_hint(HF_PREFIX + repo, err, "the pretrained weights" if pretrained else "the configuration") from err


@contextlib.contextmanager
def _quiet_open_clip_download_errors() -> Iterator[None]:
    """In offline mode, drop open_clip's root-logger ERROR about the download: the OfflineError (or the
    fallback's notice) says it better, and a notebook would print both."""
    if not offline() and not _NO_NETWORK:
        yield
        return
    import logging

    def keep(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to download weights")

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _from_hub(name: str, pretrained: bool = True) -> bool:
    """Whether loading ``name`` may download something: pretrained weights (timm, open_clip, Hugging Face), or
    even with random weights a Hub configuration (``hf:``, ``hf-hub:``) or a Hugging Face tokenizer / text
    encoder (open_clip models with one)."""
    if name.startswith(HF_PREFIX):
        from .adapters.hf_hub import is_local_path

        return not is_local_path(name[len(HF_PREFIX):])
    if name.startswith(OPEN_CLIP_PREFIX):
        spec = name[len(OPEN_CLIP_PREFIX):]
        if pretrained or spec.startswith(HUB_SCHEMA):
            return True
        import open_clip

        text = (open_clip.get_model_config(spec.partition("/")[0]) or {}).get("text_cfg", {})
        return bool(text.get("hf_tokenizer_name") or text.get("hf_model_name"))
    return is_timm_name(name) and (pretrained or name.startswith(HUB_SCHEMA))


def load(
    name: str,
    pretrained: bool = True,
    device: str | torch.device | None = None,
    fallback: str | None = None,
    **kwargs: Any,
) -> HookedViT:
    """Build a model and wrap it in a :class:`HookedViT` (in eval mode).

    ``name`` is a timm model name (``"vit_base_patch16_224"``,
    ``"timm/vit_small_patch16_224.augreg_in21k_ft_in1k"``), an open_clip spec (``"open_clip:ViT-B-32"``,
    ``"open_clip:ViT-B-32/openai"``, ``"open_clip:hf-hub:timm/ViT-B-16-SigLIP"``), a Hugging Face repository (``"hf:openai/clip-vit-base-patch32"``,
    ``"hf:facebook/dinov2-small"``; CLIP, SigLIP, ViT and DINOv2 models, and the video models VideoMAE,
    TimeSformer and ViViT: ``"hf:MCG-NJU/videomae-base-finetuned-kinetics"``; with ``pip install 'prisma-widgets[hf]'``)
    or a bundled offline model (``"mouse-vit"``, ``"mouse-clip"``). Extra keyword arguments go to
    ``timm.create_model`` / ``open_clip.create_model`` / ``from_pretrained`` (``img_size``, ``depth`` ...).

    ``fallback`` (e.g. ``"mouse-vit"``) is loaded instead when the pretrained weights (or a Hub model's
    configuration) cannot be fetched (offline, or :func:`offline` mode is on and they are not in the local hub
    cache; one short probe of the hub decides "offline" in seconds); a warning says so and
    ``model.notice`` holds a sentence to show the reader. Without ``fallback`` that case raises
    :class:`OfflineError`, which says what to do.

    Example:
        >>> import prisma_widgets as pw
        >>> model = pw.load("vit_tiny_patch16_224", pretrained=False, img_size=64, depth=2)
        >>> model.cfg.grid
        (4, 4)
    """
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"name must be a model name such as 'mouse-vit', 'vit_base_patch16_224' or "
                        f"'open_clip:ViT-B-32'; got {name!r}")
    if fallback is not None and (not isinstance(fallback, str) or not fallback.strip()):
        raise TypeError(f"fallback must be a model name such as 'mouse-vit'; got {fallback!r}")
    device = None if device is None else check_device(device)
    if not offline() and not _NO_NETWORK and _from_hub(name, pretrained) and not hub_reachable():
        _NO_NETWORK.append(hub_endpoint())  # one short probe said no: read the local cache only, fail fast
        try:
            return load(name, pretrained=pretrained, device=device, fallback=fallback, **kwargs)
        finally:
            _NO_NETWORK.pop()
    if fallback is not None:
        try:
            return load(name, pretrained=pretrained, device=device, **kwargs)
        except OfflineError as err:
            model = load(fallback, pretrained=True, device=device)
            what = "with its pretrained weights" if pretrained else "(its configuration is on the hub)"
            model.notice = (f"Offline: {name!r} could not be loaded {what}, so this runs on "
                            f"{fallback!r} instead ({err}).")
            warnings.warn(model.notice, stacklevel=2)
            return model
    if name.startswith(OPEN_CLIP_PREFIX):
        module, tokenizer = _load_open_clip(name[len(OPEN_CLIP_PREFIX):], pretrained, kwargs)
        hooked = HookedViT(module, name=name, tokenizer=tokenizer)
    elif name.startswith(HF_PREFIX):
        hooked = HookedViT(_load_hf(name[len(HF_PREFIX):], pretrained, kwargs), name=name)
    elif is_timm_name(name):
        hooked = HookedViT(_load_timm(name, pretrained, kwargs), name=name)
    else:
        from .. import zoo

        if name not in zoo.BUNDLED:
            raise unknown_model_error(name, tuple(zoo.BUNDLED))
        if kwargs:
            raise TypeError(f"bundled model {name!r} takes no extra arguments; got {sorted(kwargs)}")
        module, meta = zoo.build(name, device=device)
        hooked = HookedViT(module, name=name, labels=meta.get("labels"), tokenizer=meta.get("tokenizer"))
    hooked.eval()
    if device is not None:
        hooked.to(device)
    return hooked
