"""SAE-Lens files, both ways: the ``cfg.json`` SAE-Lens 6 writes and reads, and its tensors.

Pure conversions between dicts and tensors (no SAE module here, so :mod:`.io` can use them): what
:func:`lens_config` writes is what ``sae_lens.SAE.load_from_disk`` accepts, and :func:`from_lens_config`
reads what SAE-Lens 5 and 6 write (``cfg["metadata"]["hook_name"]``, ``k`` at the top or in
``activation_fn_kwargs``, ``rescale_acts_by_decoder_norm``).

How each architecture travels:

=============  =====================================  ========================================================
ours           written as (SAE-Lens ``architecture``)  read back from SAE-Lens
=============  =====================================  ========================================================
``relu``       ``standard``                            ``standard``
``topk``       ``topk`` (unit decoder rows, no          ``topk``; with ``rescale_acts_by_decoder_norm`` the
               rescaling: exact)                        decoder norms are folded into the encoder (exact)
``batchtopk``  ``jumprelu`` with the learned threshold  a ``jumprelu`` file (ours, or SAE-Lens' own BatchTopK
               on every latent, as SAE-Lens saves its   export) whose threshold is one value >= 0 on every
               BatchTopK SAEs for inference (exact for  latent reads as ``batchtopk`` when this version has no
               a threshold >= 0)                        JumpReLU; SAE-Lens' training file (``batchtopk``,
                                                        ``topk_threshold``) too
``jumprelu``   ``jumprelu``                             ``jumprelu`` (needs the JumpReLU architecture)
``gated``      ``gated``                                ``gated`` (needs the Gated architecture)
=============  =====================================  ========================================================

Transcoders (``kind="transcoder"``) travel as SAE-Lens ``transcoder`` (ReLU) and ``jumprelu_transcoder``
(JumpReLU, and BatchTopK with its threshold on every latent), the output hook under
``metadata["hook_name_out"]``. Transcoders of other architectures and crosscoders have no SAE-Lens class:
they are written in this layout with ``architecture="prisma_widgets:<kind>-<arch>"`` (read back here; SAE-Lens
refuses them by name). Everything else SAE-Lens has (skip transcoders, ``abstopk``, matching pursuit, temporal,
Matryoshka) is refused with the list of what reads, as are run-time input normalisations other than ``none``.

Example:
    >>> from prisma_widgets.sae.config import SAEConfig
    >>> cfg = lens_config(SAEConfig(d_in=8, d_sae=32, arch="topk", k=4, hook="blocks.1.hook_resid_post"))
    >>> cfg["architecture"], cfg["k"], cfg["metadata"]["hook_name"]
    ('topk', 4, 'blocks.1.hook_resid_post')
"""

from __future__ import annotations

from typing import Any

import torch

from ..files import DamagedFileError
from . import config as config_module
from .checks import SAE_FILE_FIX
from .config import SAEConfig, param_shapes

#: the SAE-Lens format version our files follow (SAE-Lens reads 6.x files without its pre-6 conversions)
LENS_FORMAT_VERSION = "6.0.0"

#: (kind, our architecture) -> SAE-Lens' inference architecture
_TO_LENS = {("sae", "relu"): "standard", ("sae", "topk"): "topk", ("sae", "batchtopk"): "jumprelu",
            ("sae", "jumprelu"): "jumprelu", ("sae", "gated"): "gated", ("transcoder", "relu"): "transcoder",
            ("transcoder", "jumprelu"): "jumprelu_transcoder", ("transcoder", "batchtopk"): "jumprelu_transcoder"}
#: SAE-Lens architecture -> (kind, our architecture)
_FROM_LENS = {"standard": ("sae", "relu"), "topk": ("sae", "topk"), "gated": ("sae", "gated"),
              "transcoder": ("transcoder", "relu"), "jumprelu_transcoder": ("transcoder", "jumprelu")}
_READS = "standard (ReLU), topk, batchtopk, jumprelu and gated SAEs, and transcoder / jumprelu_transcoder"
_OURS_ONLY = "prisma_widgets:"


def our_archs() -> tuple[str, ...]:
    """The architectures this version's :class:`SAEConfig` builds (read at call time, so new ones count)."""
    return tuple(config_module.ARCHS)


def tensor_names(cfg: SAEConfig) -> tuple[str, ...]:
    """The tensors an SAE with config ``cfg`` saves (BatchTopK adds its threshold)."""
    names = tuple(param_shapes(cfg))
    return (*names, "threshold") if cfg.arch == "batchtopk" and "threshold" not in names else names


def tensor_shapes(cfg: SAEConfig) -> dict[str, tuple[int, ...]]:
    """The shape each saved tensor must have (BatchTopK's one threshold is checked where it is read)."""
    return dict(param_shapes(cfg))


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------
_OUR_FIELDS = ("d_out", "hook_out", "hooks", "n_layers")


def lens_config(cfg: SAEConfig) -> dict[str, Any]:
    """The ``cfg.json`` of an SAE with config ``cfg``: SAE-Lens 6 fields, plus ours under ``prisma_widgets``.

    A hook that is not known (an SAE trained on a tensor) is left out rather than written as ``null``:
    SAE-Lens reads a missing hook as "unknown", while ``null`` crashes its reader.
    """
    kind = getattr(cfg, "kind", "sae")
    arch = _TO_LENS.get((kind, cfg.arch), f"{_OURS_ONLY}{kind}-{cfg.arch}")  # no SAE-Lens class: ours only
    metadata: dict[str, Any] = {"sae_lens_version": LENS_FORMAT_VERSION}
    if cfg.hook:
        metadata["hook_name"] = cfg.hook
    if getattr(cfg, "hook_out", None):
        metadata["hook_name_out"] = cfg.hook_out
    if cfg.model:
        metadata["model_name"] = cfg.model
    out: dict[str, Any] = {
        "architecture": arch,
        "d_in": cfg.d_in,
        "d_sae": cfg.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": cfg.apply_b_dec_to_input,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": metadata,
    }
    if arch == "topk":
        out.update(k=cfg.k, rescale_acts_by_decoder_norm=False)
    if kind == "transcoder":
        out["d_out"] = cfg.d_out
    if cfg.arch == "batchtopk":  # as SAE-Lens records its own BatchTopK SAEs saved for inference
        metadata["training_architecture"] = "batchtopk"
        metadata["training_architecture_details"] = {"k": cfg.k}
    # read by readers of SAE-Lens < 6 (ignored by 6.x), only where there is something to say
    out["activation_fn"] = "topk" if arch == "topk" else "relu"
    out["activation_fn_kwargs"] = {"k": cfg.k} if arch == "topk" else {}
    if cfg.hook:
        out["hook_name"] = cfg.hook
    if cfg.model:
        out["model_name"] = cfg.model
    out["prisma_widgets"] = {"arch": cfg.arch, "k": cfg.k, "tokens": cfg.tokens, "extra": cfg.extra, "kind": kind,
                             **{key: getattr(cfg, key, None) for key in _OUR_FIELDS}}
    return out


def lens_tensors(cfg: SAEConfig, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors to write for an SAE of config ``cfg`` (float32, contiguous, on the CPU).

    BatchTopK's one threshold becomes a JumpReLU threshold on every latent. Its inference rule,
    ``pre * (pre > t)``, equals JumpReLU's ``relu(pre) * (pre > t)`` for ``t >= 0``; a negative
    threshold (possible only by hand) has no exact JumpReLU form and is refused.
    """
    out = {k: tensors[k].detach().float().cpu().contiguous() for k in tensor_names(cfg)}
    if cfg.arch == "batchtopk":
        t = out["threshold"].reshape(-1)
        if t.numel() != 1:
            raise ValueError(f"a BatchTopK SAE has one threshold; this one has {t.numel()}")
        if float(t[0]) < 0:
            raise ValueError(
                f"this BatchTopK SAE's threshold is {float(t[0]):.4g} < 0: SAE-Lens' JumpReLU form, which applies a "
                "ReLU, would change its output. Set sae.threshold to a value >= 0 (training keeps it there), then save."
            )
        out["threshold"] = t.expand(cfg.d_sae).contiguous()
    return out


# --------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------
def _refuse(source: str, what: str) -> ValueError:
    return ValueError(f"{source}: {what}; prisma_widgets reads {_READS} (SAE-Lens' own names).")


def hook_of(cfg: dict[str, Any]) -> str | None:
    """The hook an SAE config names: ``metadata.hook_name`` (SAE-Lens 6), ``hook_name`` or ``hook_point``."""
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    for value in (meta.get("hook_name"), cfg.get("hook_name"), cfg.get("hook_point")):
        if isinstance(value, str) and value:
            return value
    return None


def _model_of(cfg: dict[str, Any]) -> str | None:
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    for value in (meta.get("model_name"), cfg.get("model_name")):
        if isinstance(value, str) and value:
            return value
    return None


def _k_of(cfg: dict[str, Any], ours: dict[str, Any]) -> Any:
    kwargs = cfg.get("activation_fn_kwargs") or {}
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    details = meta.get("training_architecture_details") or {}
    for k in (ours.get("k"), cfg.get("k"), kwargs.get("k") if isinstance(kwargs, dict) else None,
              details.get("k") if isinstance(details, dict) else None):
        if k is not None:
            return k
    return None


def _lens_arch(cfg: dict[str, Any]) -> str:
    arch = str(cfg.get("architecture") or "standard").lower()
    act = str(cfg.get("activation_fn", cfg.get("activation_fn_str")) or "relu").lower()
    if arch == "standard" and act == "topk":  # SAE-Lens < 6 wrote TopK as a standard SAE with a topk activation
        return "topk"
    if arch in ("standard", "gated", "jumprelu") and act not in ("relu", "topk"):
        return f"{arch} with activation {act!r}"
    return arch


def fold_decoder_norms(tensors: dict[str, torch.Tensor]) -> None:
    """Make every decoder row unit-norm without changing what the SAE computes (in place).

    SAE-Lens' ``rescale_acts_by_decoder_norm`` selects on ``pre * |W_dec[i]|`` and decodes with
    ``W_dec[i] / |W_dec[i]|``; scaling ``W_enc``'s columns and ``b_enc`` by the norms and dividing the rows
    of ``W_dec`` by them is the same map with unit rows (SAE-Lens' own ``fold_W_dec_norm``).
    """
    norms = tensors["W_dec"].norm(dim=-1).clamp_min(1e-8)
    tensors["W_dec"] = tensors["W_dec"] / norms[:, None]
    tensors["W_enc"] = tensors["W_enc"] * norms[None, :]
    tensors["b_enc"] = tensors["b_enc"] * norms


def from_lens_config(cfg: dict[str, Any], tensors: dict[str, torch.Tensor], source: str) -> tuple[SAEConfig, dict[str, torch.Tensor]]:
    """Our config and tensors from an SAE-Lens (or our own) ``cfg.json`` and its tensors.

    Tensors come back float32, in our architecture's layout (shapes are checked by the caller).
    """
    ours = cfg.get("prisma_widgets") if isinstance(cfg.get("prisma_widgets"), dict) else {}
    try:
        d_in, d_sae = int(cfg["d_in"]), int(cfg["d_sae"])
    except KeyError as err:
        raise ValueError(f"{source} has no {err.args[0]!r}: not an SAE config (expected d_in and d_sae)") from None
    norm = cfg.get("normalize_activations", "none")
    if norm not in (None, "none", False):
        raise ValueError(
            f"{source} normalises activations ({norm!r}) before encoding; this loader applies SAEs to raw "
            "activations. Fold the scale into W_enc / W_dec first, or re-save with normalize_activations='none'."
        )
    tensors = {k: v.float() for k, v in tensors.items()}
    lens, archs = _lens_arch(cfg), our_archs()
    if ours.get("arch"):  # our own file: our fields say it all
        kind, arch = str(ours.get("kind") or "sae"), str(ours["arch"])
        if arch not in archs:
            raise _refuse(source, f"a {arch} SAE, and this version of prisma_widgets has no {arch} architecture")
    elif lens.startswith(_OURS_ONLY):
        raise ValueError(f"{source}: architecture {lens!r} is written by prisma_widgets, but the file lacks its "
                         f"'prisma_widgets' block. {SAE_FILE_FIX}")
    elif lens == "batchtopk":  # SAE-Lens' training file: one running threshold
        if "topk_threshold" not in tensors:
            raise _refuse(source, "a batchtopk file without its topk_threshold tensor")
        tensors["threshold"] = tensors.pop("topk_threshold").reshape(())
        kind, arch = "sae", "batchtopk"
    elif lens == "jumprelu":
        kind, arch = "sae", _jumprelu_arch(tensors, ours, archs, source)
    elif lens in _FROM_LENS:
        kind, arch = _FROM_LENS[lens]
        if arch not in archs:
            raise _refuse(source, f"a {arch} SAE, and this version of prisma_widgets has no {arch} architecture yet")
    else:
        raise _refuse(source, f"SAE architecture {lens!r} is not supported")
    if arch in ("topk", "batchtopk") and cfg.get("rescale_acts_by_decoder_norm"):
        fold_decoder_norms(tensors)
    if arch == "batchtopk" and tensors.get("threshold") is not None and tensors["threshold"].numel() > 1:
        _jumprelu_arch(tensors, {"arch": "batchtopk"}, archs, source)  # one value on every latent -> that value
    k = _k_of(cfg, ours)
    if arch in ("topk", "batchtopk"):
        k = round(float(k)) if k is not None else min(32, d_sae)
        k = min(max(k, 1), d_sae)
    else:
        k = None
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    fields: dict[str, Any] = {key: ours[key] for key in _OUR_FIELDS if ours.get(key) is not None}
    if kind == "transcoder":
        fields.setdefault("d_out", cfg.get("d_out"))
        if meta.get("hook_name_out"):
            fields.setdefault("hook_out", meta["hook_name_out"])
    out = SAEConfig(
        d_in=d_in, d_sae=d_sae, arch=arch, k=k, apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input", True)),
        hook=hook_of(cfg), model=_model_of(cfg), tokens=ours.get("tokens"), extra=ours.get("extra") or {},
        **({"kind": kind} if kind != "sae" else {}), **fields,
    )
    names = tensor_names(out)
    missing = [name for name in names if name not in tensors]
    if missing:
        raise ValueError(f"{source}: the weights lack {', '.join(missing)} (a {arch} {kind} needs "
                         f"{', '.join(names)}); found {', '.join(sorted(tensors))}. {SAE_FILE_FIX}")
    return out, {name: tensors[name] for name in names}


def _jumprelu_arch(tensors: dict[str, torch.Tensor], ours: dict[str, Any], archs: tuple[str, ...], source: str) -> str:
    """``batchtopk`` for our own BatchTopK files (or any JumpReLU whose threshold is one value >= 0 when this
    version has no JumpReLU), else ``jumprelu``; the threshold tensor is reshaped to match."""
    t = tensors.get("threshold")
    if t is None:
        raise ValueError(f"{source}: a jumprelu SAE without its threshold tensor. {SAE_FILE_FIX}")
    flat = t.reshape(-1)
    uniform = flat.numel() > 0 and bool((flat == flat[0]).all()) and float(flat[0]) >= 0
    if uniform and (ours.get("arch") == "batchtopk" or "jumprelu" not in archs):
        tensors["threshold"] = flat[:1].reshape(())
        return "batchtopk"
    if ours.get("arch") == "batchtopk":
        raise DamagedFileError(f"{source} is damaged: a BatchTopK SAE's threshold must be one value >= 0 on every "
                               f"latent. {SAE_FILE_FIX}")
    if "jumprelu" not in archs:
        raise _refuse(source, "a JumpReLU SAE with a threshold per latent, and this version of prisma_widgets has no "
                              "JumpReLU architecture yet (a JumpReLU whose thresholds are all one value >= 0 reads as "
                              "BatchTopK)")
    return "jumprelu"
