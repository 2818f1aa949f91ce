"""One hook's activation for a batch, with the forward stopped as early as the hook allows, and its token rows.

What the SAE tools (caching activations, feature statistics, the feature gallery) share: they read one hook,
need nothing after it, and want ``[batch, tokens, width]`` rows for a token mode: ``"all"`` (every token),
``"patches"`` (the patch tokens, prefix tokens dropped) or ``"cls"`` (the CLS token). Everything about the
model comes from its config and hook names, so this works for every family the adapters wrap.

Example:
    >>> import prisma_widgets as pw
    >>> from prisma_widgets.hooked.capture import capture, hook_width, stop_layer, token_rows, tokens_per_image
    >>> model = pw.load("mouse-vit")
    >>> images, labels = pw.zoo.shapes(2, seed=0)
    >>> hook = "blocks.1.hook_resid_post"
    >>> stop_layer(model, hook)             # blocks 2 and 3 do not run
    2
    >>> acts = capture(model, model.preprocess(images), hook)
    >>> tuple(acts.shape)                   # [batch, CLS + 8 x 8 patches, d_model]
    (2, 65, 128)
    >>> tuple(token_rows(model, acts, hook, "patches").shape), tokens_per_image(model, "patches")
    ((2, 64, 128), 64)
    >>> hook_width(model, "blocks.1.mlp.hook_post")
    512
"""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

import torch

from .hook_points import split_name, unknown_name_error

if TYPE_CHECKING:
    from .model import HookedViT

TOKEN_MODES = ("all", "patches", "cls")

# Per-block hooks whose per-token width is d_model (no forward needed to know it).
_D_MODEL_HOOKS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out",
                  "ln1.hook_normalized", "ln2.hook_normalized")


def check_token_mode(tokens: str) -> None:
    """Refuse a token mode other than ``"all"``, ``"patches"`` or ``"cls"``."""
    if tokens not in TOKEN_MODES:
        raise ValueError(f"tokens must be one of {', '.join(map(repr, TOKEN_MODES))}; got {tokens!r}")


def stop_layer(model: HookedViT, hook: str) -> int | None:
    """The ``stop_at_layer`` after which ``hook`` has fired: its block + 1, 0 for the embeddings, ``None``
    (the whole forward) for hooks after the blocks. An unknown hook name is refused with suggestions."""
    if hook not in model.hook_names():
        raise unknown_name_error(hook, model.hook_names(), model.cfg.n_layers)
    layer, rest = split_name(hook)
    if layer is not None:
        return layer + 1
    if hook in ("hook_embed", "hook_pos_embed"):
        return 0
    return None


def capture(model: HookedViT, pixels: torch.Tensor, hook: str) -> torch.Tensor:
    """The hook's activation for a batch of ``pixels``, with the forward stopped after the hooked block."""
    kept: list[torch.Tensor] = []

    def keep(x: torch.Tensor, hook_point: Any) -> None:
        kept.append(x.detach())

    model.run_with_hooks(pixels, [(hook, keep)], stop_at_layer=stop_layer(model, hook))
    if not kept:
        raise RuntimeError(f"hook {hook!r} did not fire")
    return kept[0]


def _no_cls_error(model: HookedViT) -> ValueError:
    cfg = model.cfg
    return ValueError(
        f"tokens='cls' but {getattr(model, 'name', None) or 'this model'} has no CLS token "
        f"({cfg.n_prefix_tokens} prefix tokens, pooling {cfg.pooling!r}); use tokens='patches' or 'all'"
    )


def token_rows(model: HookedViT, acts: torch.Tensor, hook: str, tokens: str) -> torch.Tensor:
    """``[batch, pos, ...]`` -> ``[batch, t, d]``: the rows of token mode ``tokens``, each flattened to ``d``.

    A hook without one row per token (an attention pattern, the logits) is refused, naming hooks that have.
    """
    cfg = model.cfg
    if acts.ndim < 3 or acts.shape[1] != cfg.n_tokens:
        raise ValueError(
            f"hook {hook!r} gives activations of shape {list(acts.shape)}; this needs a per-token hook "
            f"[batch, {cfg.n_tokens} tokens, ...] such as 'blocks.0.hook_resid_post' or 'blocks.0.mlp.hook_post'"
        )
    acts = acts.reshape(acts.shape[0], acts.shape[1], -1)
    if tokens == "all":
        return acts
    if tokens == "patches":
        return acts[:, cfg.n_prefix_tokens:]
    if not cfg.has_cls:
        raise _no_cls_error(model)
    return acts[:, :1]


def tokens_per_image(model: HookedViT, tokens: str) -> int:
    """How many rows :func:`token_rows` gives per image for the token mode ``tokens``."""
    cfg = model.cfg
    check_token_mode(tokens)
    if tokens == "cls" and not cfg.has_cls:
        raise _no_cls_error(model)
    return {"all": cfg.n_tokens, "patches": cfg.n_patches, "cls": 1}[tokens]


def hook_width(model: HookedViT, hook: str) -> int:
    """The per-token width of a hook's activation (``d_model`` for the residual stream; else from one tiny forward).

    A hook without one row per token (an attention pattern, the logits) is refused, naming hooks that have."""
    layer, rest = split_name(hook)
    if hook in model.hook_names() and layer is not None and rest in _D_MODEL_HOOKS:
        return int(model.cfg.d_model)
    pixels = torch.zeros(1, 3, *model.cfg.image_size, device=model.device, dtype=model.dtype)
    with torch.inference_mode():
        acts = capture(model, pixels, hook)
    return int(token_rows(model, acts, hook, "all").shape[-1])  # a hook without a row per token is refused here
