"""Downstream evaluation by splicing: the model's loss clean, with a dictionary's output spliced in, and with the
spliced part zero-ablated (the floor); for SAEs, transcoders (in place of what they stand in for, e.g. an MLP)
and crosscoders (each layer on its own, and all at once).

``loss_recovered = (zero - spliced) / (zero - clean)``: 1 when splicing costs nothing, 0 when it is as bad as
zero-ablating. Classifiers are scored by cross-entropy against their own clean predictions (or ``labels``),
with accuracies; embedding models (CLIP) by ``1 - cosine`` to the clean embedding.

Example:
    >>> recovered({"loss_clean": 1.0, "loss_spliced": 1.5, "loss_zero": 3.0}, "spliced", "zero")
    0.75
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ..hooked.capture import check_token_mode, hook_width, stop_layer
from ..validate import check_int
from .checks import check_sae_fits_hook
from .family_data import check_transcoder_pair
from .source import ImageSource, as_image_source

if TYPE_CHECKING:
    from ..hooked.model import HookedViT
    from .modules import SAE

Runs = Callable[[torch.Tensor], dict[str, torch.Tensor]]


def check_labels(labels: Any, n: int, n_classes: int | None) -> torch.Tensor | None:
    """One class index per image, in range, or ``None``."""
    if labels is None:
        return None
    labels = torch.as_tensor(labels)
    if labels.is_floating_point() or labels.ndim != 1:
        raise TypeError(f"labels must be one class index per image (integers); got {labels.dtype} {list(labels.shape)}")
    labels = labels.long()
    if len(labels) != n:
        raise ValueError(f"got {len(labels)} labels for {n} images; pass one class index per image")
    if n_classes is not None and len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"labels must be class indices in [0, {n_classes}); got values from "
                         f"{int(labels.min())} to {int(labels.max())}")
    return labels


def token_slice(model: HookedViT, tokens: str) -> slice:
    """The token positions of a token mode."""
    check_token_mode(tokens)
    cfg = model.cfg
    return {"all": slice(None), "patches": slice(cfg.n_prefix_tokens, None), "cls": slice(0, 1)}[tokens]


def compare_outputs(model: HookedViT, source: ImageSource, labels: torch.Tensor | None, batch_size: int,
                    runs: Runs) -> dict[str, float]:
    """``loss_<name>`` (and ``accuracy_<name>``, ``kl_<name>`` for classifiers) of every output ``runs(pixels)``
    gives, averaged over the images; ``runs`` must give ``"clean"``."""
    classifier = model.cfg.n_classes is not None
    totals: dict[str, float] = {}
    correct: dict[str, int] = {}
    kl: dict[str, float] = {}
    count = 0
    for start in range(0, len(source), batch_size):
        stop = min(start + batch_size, len(source))
        outs = {key: out.float() for key, out in runs(source.pixels(model, start, stop)).items()}
        clean = outs["clean"]
        if classifier:
            target = labels[start:stop].to(clean.device) if labels is not None else clean.argmax(-1)
            for key, logits in outs.items():
                totals[key] = totals.get(key, 0.0) + float(F.cross_entropy(logits, target, reduction="sum"))
                correct[key] = correct.get(key, 0) + int((logits.argmax(-1) == target).sum())
                if key != "clean":
                    kl[key] = kl.get(key, 0.0) + float(F.kl_div(logits.log_softmax(-1), clean.log_softmax(-1),
                                                                log_target=True, reduction="sum"))
        else:  # an embedding (CLIP): 1 - cosine to the clean embedding
            for key, emb in outs.items():
                totals[key] = totals.get(key, 0.0) + float((1 - F.cosine_similarity(emb, clean, dim=-1)).sum())
        count += stop - start
    res = {f"loss_{key}": value / count for key, value in totals.items()}
    res.update({f"accuracy_{key}": value / count for key, value in correct.items()})
    res.update({f"kl_{key}": value / count for key, value in kl.items()})
    return res


def recovered(res: dict[str, float], spliced: str, zero: str) -> float:
    """``(zero - spliced) / (zero - clean)`` from :func:`compare_outputs`' losses (nan when zero = clean)."""
    gap = res[f"loss_{zero}"] - res["loss_clean"]
    return (res[f"loss_{zero}"] - res[f"loss_{spliced}"]) / gap if abs(gap) > 1e-12 else float("nan")


def accuracy_recovered(res: dict[str, float], spliced: str, zero: str) -> float:
    gap = res["accuracy_clean"] - res[f"accuracy_{zero}"]
    return (res[f"accuracy_{spliced}"] - res[f"accuracy_{zero}"]) / gap if gap else float("nan")


def _rows(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], x.shape[1], -1)


def _prepare(sae: SAE, model: HookedViT, images: Any, labels: Any, tokens: str | None, batch_size: int,
             hooks: list[str]) -> tuple[ImageSource, torch.Tensor | None, slice]:
    check_int(batch_size, "batch_size", at_least=1, example=32)
    for h in hooks:
        stop_layer(model, h)  # a clear error for unknown names
    sel = token_slice(model, tokens or sae.cfg.tokens or "all")
    source = as_image_source(images)
    return source, check_labels(labels, len(source), model.cfg.n_classes), sel


@torch.no_grad()
def downstream_transcoder(sae: SAE, model: HookedViT, images: Any, labels: Any = None, tokens: str | None = None,
                          batch_size: int = 32) -> dict[str, float]:
    """Splice the transcoder in place of what it stands in for: ``hook_out``'s value becomes the transcoder's
    prediction from ``hook``'s value of the same forward pass; the floor zero-ablates ``hook_out``."""
    hook_in, hook_out = sae.cfg.hook, sae.cfg.hook_out
    if not hook_in or not hook_out:
        raise ValueError("this transcoder does not name its hooks (cfg.hook, cfg.hook_out); set them, e.g. "
                         "sae.cfg.hook = 'blocks.1.ln2.hook_normalized'; sae.cfg.hook_out = 'blocks.1.hook_mlp_out'")
    source, labels, sel = _prepare(sae, model, images, labels, tokens, batch_size, [hook_in, hook_out])
    check_transcoder_pair(hook_in, hook_out)
    order = model.hook_names()
    if order.index(hook_out) <= order.index(hook_in):
        raise ValueError(f"{hook_out!r} fires before {hook_in!r} in {getattr(model, 'name', None) or 'this model'}: "
                         "a transcoder must read a hook that comes first")
    check_sae_fits_hook(sae.d_in, model, hook_in, hook_width(model, hook_in))
    check_sae_fits_hook(sae.cfg.d_out, model, hook_out, hook_width(model, hook_out))

    def runs(pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        seen: dict[str, torch.Tensor] = {}

        def grab(x: torch.Tensor, hook_point: Any) -> None:
            seen["in"] = _rows(x)

        def splice(x: torch.Tensor, hook_point: Any) -> torch.Tensor:
            a = _rows(x).clone()
            part = seen["in"][:, sel].to(sae.device, sae.W_enc.dtype)
            a[:, sel] = sae(part).to(a.dtype).to(a.device)
            return a.reshape(x.shape)

        def zero(x: torch.Tensor, hook_point: Any) -> torch.Tensor:
            a = _rows(x).clone()
            a[:, sel] = 0
            return a.reshape(x.shape)

        return {"clean": model(pixels), "spliced": model.run_with_hooks(pixels, [(hook_in, grab), (hook_out, splice)]),
                "zero": model.run_with_hooks(pixels, [(hook_out, zero)])}

    res = compare_outputs(model, source, labels, batch_size, runs)
    res["loss_recovered"] = recovered(res, "spliced", "zero")
    if "accuracy_clean" in res:
        res["accuracy_recovered"] = accuracy_recovered(res, "spliced", "zero")
    return res


@torch.no_grad()
def downstream_crosscoder(sae: SAE, model: HookedViT, images: Any, labels: Any = None, tokens: str | None = None,
                          batch_size: int = 32) -> dict[str, Any]:
    """Encode every layer's clean activations at once, then splice the reconstruction into each layer on its own
    (``loss_recovered_per_layer``, floor: that layer zero-ablated) and into all of them (``loss_recovered``)."""
    hooks = list(sae.cfg.hooks or [])
    if len(hooks) != sae.cfg.n_layers:
        raise ValueError("this crosscoder does not name its layers' hooks (cfg.hooks); set them, e.g. "
                         "sae.cfg.hooks = ['blocks.1.hook_resid_post', 'blocks.2.hook_resid_post']")
    source, labels, sel = _prepare(sae, model, images, labels, tokens, batch_size, hooks)
    for h in hooks:
        check_sae_fits_hook(sae.d_in, model, h, hook_width(model, h))
    n = len(hooks)

    def runs(pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        seen: dict[str, torch.Tensor] = {}

        def grab(x: torch.Tensor, hook_point: Any) -> None:
            seen[hook_point.name] = _rows(x)

        outs = {"clean": model.run_with_hooks(pixels, [(h, grab) for h in hooks])}
        stacked = torch.stack([seen[h][:, sel] for h in hooks], dim=-2)  # [B, T, layers, d]
        recon = sae(stacked.to(sae.device, sae.W_enc.dtype))

        def put(i: int, value: torch.Tensor | None) -> Callable[[torch.Tensor, Any], torch.Tensor]:
            def fn(x: torch.Tensor, hook_point: Any) -> torch.Tensor:
                a = _rows(x).clone()
                a[:, sel] = 0 if value is None else value[..., i, :].to(a.dtype).to(a.device)
                return a.reshape(x.shape)
            return fn

        for i, h in enumerate(hooks):
            outs[f"spliced{i}"] = model.run_with_hooks(pixels, [(h, put(i, recon))])
            outs[f"zero{i}"] = model.run_with_hooks(pixels, [(h, put(i, None))])
        outs["spliced"] = model.run_with_hooks(pixels, [(h, put(i, recon)) for i, h in enumerate(hooks)])
        outs["zero"] = model.run_with_hooks(pixels, [(h, put(i, None)) for i, h in enumerate(hooks)])
        return outs

    raw = compare_outputs(model, source, labels, batch_size, runs)
    res: dict[str, Any] = {key: raw[key] for key in raw if not key[-1].isdigit()}
    res["loss_recovered"] = recovered(raw, "spliced", "zero")
    res["loss_recovered_per_layer"] = [recovered(raw, f"spliced{i}", f"zero{i}") for i in range(n)]
    res["loss_spliced_per_layer"] = [raw[f"loss_spliced{i}"] for i in range(n)]
    res["loss_zero_per_layer"] = [raw[f"loss_zero{i}"] for i in range(n)]
    if "accuracy_clean" in raw:
        res["accuracy_spliced_per_layer"] = [raw[f"accuracy_spliced{i}"] for i in range(n)]
        if labels is not None:
            res["accuracy_recovered"] = accuracy_recovered(raw, "spliced", "zero")
    return res
