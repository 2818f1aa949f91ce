"""``sae.evaluate``: reconstruction, sparsity, and the downstream cost of splicing the SAE into the model."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ..hooked.capture import check_token_mode, hook_width, stop_layer
from ..validate import check_finite, check_float, check_int
from .checks import check_activation_width, check_sae_fits_hook
from .family_data import evaluation_batches
from .source import as_image_source
from .splice_eval import downstream_crosscoder, downstream_transcoder
from .store import ActivationStore

if TYPE_CHECKING:
    from ..hooked.model import HookedViT
    from .modules import SAE


def _check_data(data: Any, d_in: int, hook: str | None) -> None:
    if isinstance(data, ActivationStore):
        if data.d != d_in:
            raise ValueError(f"this SAE reads {d_in}-wide activations (d_in={d_in}), but the cache at {data.path!r} "
                             f"holds {data.d}-wide rows of {data.hook!r}. Evaluate on a cache of the hook it was "
                             "trained on.")
        return
    if isinstance(data, torch.Tensor):
        if data.ndim != 2 or data.shape[0] == 0:
            raise ValueError(f"evaluate takes activations [rows, {d_in}] with at least one row; got a tensor "
                             f"{list(data.shape)}")
        check_activation_width(data, d_in, hook)
        check_finite(data, "the activations to evaluate on", "drop those rows (data[torch.isfinite(data).all(1)])")


def _batches(data: Any, batch_size: int, max_rows: int | None):
    if isinstance(data, ActivationStore):
        n = len(data) if max_rows is None else min(len(data), max_rows)
        data.check_complete()
        for start in range(0, n, batch_size):
            yield data.read(start, min(start + batch_size, n))
    elif isinstance(data, torch.Tensor):
        data = data if max_rows is None else data[:max_rows]
        for start in range(0, len(data), batch_size):
            yield data[start:start + batch_size].float()
    else:
        raise TypeError(f"evaluate takes an ActivationStore or a tensor [rows, d]; got {type(data).__name__}")


@torch.no_grad()
def evaluate(
    sae: SAE,
    data: Any,
    model: HookedViT | None = None,
    images: Any = None,
    hook: str | None = None,
    labels: Any = None,
    tokens: str | None = None,
    batch_size: int = 4096,
    image_batch_size: int = 32,
    max_rows: int | None = None,
    dense_threshold: float = 0.1,
) -> dict[str, Any]:
    """Metrics of ``sae`` on activations ``data`` (an :class:`ActivationStore` or a tensor ``[rows, d]``).

    Returns ``mse``, ``explained_variance``, ``l0``, ``dead`` (latents that never fire), ``dense`` (firing on more
    than ``dense_threshold`` of rows) and ``frequency`` per latent. A transcoder is scored on its prediction of
    its output hook (``data``: a store holding both hooks, or ``(inputs, targets)``) and spliced in place of
    what it stands in for; a crosscoder (``data``: a store holding its layers, or ``[rows, n_layers, d]``) also
    reports ``explained_variance_per_layer`` and, downstream, ``loss_recovered_per_layer``. With ``model`` and ``images`` also the
    downstream effect of splicing the SAE reconstruction into ``hook``: the model's loss against its own clean
    predictions (or ``labels``) clean / spliced / zero-ablated, and ``loss_recovered`` =
    ``(zero - spliced) / (zero - clean)``; classifiers also report accuracies.
    """
    batch_size = check_int(batch_size, "batch_size", at_least=1, example=4096)
    image_batch_size = check_int(image_batch_size, "image_batch_size", at_least=1, example=32)
    max_rows = check_int(max_rows, "max_rows", at_least=1, example=100_000, none_ok=True)
    dense_threshold = check_float(dense_threshold, "dense_threshold", at_least=0, at_most=1, example=0.1)
    if (model is None) != (images is None):
        raise ValueError("the downstream effect needs both model=... and images=... (or neither)")
    kind = sae.cfg.kind
    if kind == "sae":
        if isinstance(data, ActivationStore) and len(data.hooks) > 1 and sae.cfg.hook in data.all_hooks:
            data = data.select(sae.cfg.hook)  # a store of several hooks: the one this SAE reads
        _check_data(data, sae.d_in, sae.cfg.hook)
        pairs = ((x, x) for x in _batches(data, batch_size, max_rows))
    else:
        pairs = evaluation_batches(sae, data, batch_size, max_rows)
    device = sae.device
    groups, width = sae.cfg.n_layers, sae.cfg.width_out  # a crosscoder's layers are scored one by one too
    n = 0
    sse = torch.zeros(groups, dtype=torch.float64, device=device)
    s1 = torch.zeros(width, dtype=torch.float64, device=device)
    s2 = torch.zeros(groups, dtype=torch.float64, device=device)
    l0 = torch.zeros((), dtype=torch.float64, device=device)
    fires = torch.zeros(sae.d_sae, dtype=torch.float64, device=device)
    for x, target in pairs:
        x, target = x.to(device), target.to(device)
        f = sae.encode(x)
        x_hat = sae.decode_flat(f)
        sse += (target - x_hat).double().pow(2).reshape(len(x), groups, -1).sum((0, 2))
        s1 += target.double().sum(0)
        s2 += target.double().pow(2).reshape(len(x), groups, -1).sum((0, 2))
        active = f > 0
        l0 += active.sum()
        fires += active.sum(0)
        n += len(x)
    if n == 0:
        raise ValueError("no rows to evaluate")
    sst = s2 - s1.pow(2).reshape(groups, -1).sum(-1) / n
    freq = fires / n
    out: dict[str, Any] = {
        "rows": n,
        "mse": float(sse.sum() / (n * width)),
        "explained_variance": float(1 - sse.sum() / sst.sum().clamp_min(1e-30)),
        "l0": float(l0 / n),
        "dead": int((fires == 0).sum()),
        "dense": int((freq > dense_threshold).sum()),
        "frequency": freq.float().cpu(),
    }
    if kind == "crosscoder":
        out["explained_variance_per_layer"] = (1 - sse / sst.clamp_min(1e-30)).tolist()
    if model is not None and images is not None:
        if kind == "transcoder":
            out.update(downstream_transcoder(sae, model, images, labels, tokens, image_batch_size))
        elif kind == "crosscoder":
            out.update(downstream_crosscoder(sae, model, images, labels, tokens, image_batch_size))
        else:
            out.update(downstream(sae, model, images, hook, labels, tokens, image_batch_size))
    return out


@torch.no_grad()
def downstream(
    sae: SAE, model: HookedViT, images: Any, hook: str | None = None, labels: Any = None, tokens: str | None = None,
    batch_size: int = 32,
) -> dict[str, float]:
    """Model loss clean vs SAE-spliced vs zero-ablated at ``hook`` over ``images``."""
    hook = hook or sae.cfg.hook
    if hook is None:
        raise ValueError("name the hook the SAE was trained on: sae.evaluate(..., hook='blocks.3.hook_resid_post')")
    stop_layer(model, hook)  # a clear error for unknown names
    check_sae_fits_hook(sae.d_in, model, hook, hook_width(model, hook))
    batch_size = check_int(batch_size, "batch_size", at_least=1, example=32)
    tokens = tokens or sae.cfg.tokens or "all"
    check_token_mode(tokens)
    cfg = model.cfg
    sel = {"all": slice(None), "patches": slice(cfg.n_prefix_tokens, None), "cls": slice(0, 1)}[tokens]
    source = as_image_source(images)
    classifier = cfg.n_classes is not None
    if labels is not None:
        labels = torch.as_tensor(labels)
        if labels.is_floating_point() or labels.ndim != 1:
            raise TypeError(f"labels must be one class index per image (integers); got {labels.dtype} {list(labels.shape)}")
        labels = labels.long()
        if len(labels) != len(source):
            raise ValueError(f"got {len(labels)} labels for {len(source)} images; pass one class index per image")
        if classifier and len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= cfg.n_classes):
            raise ValueError(f"labels must be class indices in [0, {cfg.n_classes}); got values from "
                             f"{int(labels.min())} to {int(labels.max())}")

    def splice(x: torch.Tensor, hook_point: Any) -> torch.Tensor:
        a = x.reshape(x.shape[0], x.shape[1], -1).clone()
        if a.shape[-1] != sae.d_in:
            raise ValueError(f"{hook!r} is {a.shape[-1]} wide but the SAE reads {sae.d_in}")
        part = a[:, sel]
        a[:, sel] = sae(part.to(sae.W_enc.dtype).to(sae.device)).to(a.dtype).to(a.device)
        return a.reshape(x.shape)

    def zero(x: torch.Tensor, hook_point: Any) -> torch.Tensor:
        a = x.reshape(x.shape[0], x.shape[1], -1).clone()
        a[:, sel] = 0
        return a.reshape(x.shape)

    totals = {"clean": 0.0, "spliced": 0.0, "zero": 0.0}
    correct = {"clean": 0, "spliced": 0, "zero": 0}
    kl = 0.0
    count = 0
    for start in range(0, len(source), batch_size):
        stop = min(start + batch_size, len(source))
        pixels = source.pixels(model, start, stop)
        outs = {
            "clean": model(pixels).float(),
            "spliced": model.run_with_hooks(pixels, [(hook, splice)]).float(),
            "zero": model.run_with_hooks(pixels, [(hook, zero)]).float(),
        }
        if classifier:
            target = labels[start:stop].to(outs["clean"].device) if labels is not None else outs["clean"].argmax(-1)
            for key, logits in outs.items():
                totals[key] += float(F.cross_entropy(logits, target, reduction="sum"))
                correct[key] += int((logits.argmax(-1) == target).sum())
            kl += float(F.kl_div(outs["spliced"].log_softmax(-1), outs["clean"].log_softmax(-1), log_target=True,
                                 reduction="sum"))
        else:  # an embedding (CLIP): 1 - cosine to the clean embedding
            for key, emb in outs.items():
                totals[key] += float((1 - F.cosine_similarity(emb, outs["clean"], dim=-1)).sum())
        count += stop - start
    res = {f"loss_{key}": value / count for key, value in totals.items()}
    gap = res["loss_zero"] - res["loss_clean"]
    res["loss_recovered"] = (res["loss_zero"] - res["loss_spliced"]) / gap if abs(gap) > 1e-12 else float("nan")
    if abs(gap) <= 1e-12:
        # e.g. patch tokens after the last block of a CLS-pooled model: nothing downstream reads them
        warnings.warn(
            f"zero-ablating the {tokens!r} tokens at {hook} does not change the model's output, so the SAE's "
            "downstream effect is undefined (loss_recovered is nan): nothing after this hook reads those tokens. "
            "Train on tokens='all' (or 'cls'), or at an earlier hook.",
            stacklevel=3,
        )
    if classifier:
        res.update({f"accuracy_{key}": value / count for key, value in correct.items()})
        res["kl_spliced"] = kl / count
        if labels is not None:
            gap = res["accuracy_clean"] - res["accuracy_zero"]
            res["accuracy_recovered"] = (res["accuracy_spliced"] - res["accuracy_zero"]) / gap if gap else float("nan")
    return res
