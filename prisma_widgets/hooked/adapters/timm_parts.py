"""The parts timm's ViT families share, stepped through with hooks: attention (plain, RoPE, differential),
MLPs (plain, GLU, SwiGLU, GeGLU), attention pools, and the data config and labels of a timm model.

Hook conventions (documented in ``docs/hook_names.md``):

* ``attn.hook_q`` / ``attn.hook_k`` are what enters the dot product: after q/k norm and after RoPE (rotated),
  so ``hook_pattern == softmax(q k^T / sqrt(d_head))`` holds for every family and editing ``hook_q`` edits
  the attention scores directly. Prefix tokens are not rotated (as in timm).
* Grouped-query attention: ``hook_k`` / ``hook_v`` are per query head (the shared key/value heads repeated).
* Differential attention: ``hook_q`` / ``hook_k`` / ``hook_attn_scores`` / ``hook_pattern`` have ``2 * n_heads``
  sub-heads (each a softmax; head ``h`` subtracts sub-head ``2h + 1`` from ``2h``), ``hook_v`` / ``hook_z``
  have ``n_heads`` heads of ``2 * d_head``, and ``hook_z`` is a head's output after its sub-norm and scale
  (what the output projection reads).
* Gated MLPs: ``mlp.hook_pre`` is the gate's pre-activation, ``mlp.hook_pre_linear`` the value half and
  ``mlp.hook_post`` their product ``act(gate) * value``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..hook_points import ActiveHooks
from .base import UnsupportedModelError, explicit_attention


def pair(value: Any) -> tuple[int, int]:
    """``7`` -> ``(7, 7)``; a pair stays a pair of ints."""
    if isinstance(value, int):
        return (value, value)
    a, b = value
    return (int(a), int(b))


# ----- MLPs -----
def mlp_kind(mlp: nn.Module) -> str:
    """``"plain"`` (fc1 -> act -> fc2), ``"glu"`` (packed fc1), ``"swiglu"`` (fc1_g, fc1_x), ``"geglu"`` (ViTamin)."""
    names = {"Mlp": "plain", "GluMlp": "glu", "SwiGLU": "swiglu", "GeGluMlp": "geglu"}
    kind = names.get(type(mlp).__name__)
    if kind is None:
        raise UnsupportedModelError(f"timm MLP {type(mlp).__name__} has no hooks yet (Mlp, GluMlp, SwiGLU, GeGluMlp do)")
    if kind in ("plain", "glu") and isinstance(mlp.fc1, nn.Conv2d):
        raise UnsupportedModelError("timm convolutional MLPs (use_conv=True) are not a ViT block")
    return kind


def mlp_width(mlp: nn.Module) -> int:
    """The hidden width of ``mlp.hook_post``."""
    kind = mlp_kind(mlp)
    if kind == "plain":
        return int(mlp.fc1.out_features)
    if kind == "glu":
        return int(mlp.fc1.out_features) // 2
    if kind == "swiglu":
        return int(mlp.fc1_x.out_features)
    return int(mlp.w1.out_features)


def mlp_out_weight(mlp: nn.Module) -> torch.Tensor | None:
    """The weight mapping ``mlp.hook_post`` linearly to the MLP output, or ``None`` when a norm sits between."""
    kind = mlp_kind(mlp)
    if kind == "geglu":
        return mlp.w2.weight
    if not isinstance(getattr(mlp, "norm", nn.Identity()), nn.Identity):
        return None
    return mlp.fc2.weight


def hooked_mlp(mlp: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks) -> torch.Tensor:
    """Any timm ViT MLP with ``hook_pre`` (the gate for gated MLPs), ``hook_pre_linear`` and ``hook_post``."""
    kind = mlp_kind(mlp)
    if kind == "plain":
        h = hooks(names["mlp_pre"], mlp.fc1(x))
        h = hooks(names["mlp_post"], mlp.act(h))
        return mlp.drop2(mlp.fc2(mlp.norm(mlp.drop1(h))))
    if kind == "glu":
        x1, x2 = mlp.fc1(x).chunk(2, dim=-1)
        gate, value = (x2, x1) if mlp.gate_last else (x1, x2)
        gate = hooks(names["mlp_pre"], gate)
        value = hooks(names["mlp_pre_linear"], value)
        h = value * mlp.act(gate) if mlp.gate_last else mlp.act(gate) * value
        h = hooks(names["mlp_post"], h)
        return mlp.drop2(mlp.fc2(mlp.norm(mlp.drop1(h))))
    if kind == "swiglu":
        gate = hooks(names["mlp_pre"], mlp.fc1_g(x))
        value = hooks(names["mlp_pre_linear"], mlp.fc1_x(x))
        h = hooks(names["mlp_post"], mlp.act(gate) * value)
        return mlp.drop2(mlp.fc2(mlp.norm(mlp.drop1(h))))
    x = mlp.norm(x)  # GeGluMlp normalises its own input
    gate = hooks(names["mlp_pre"], mlp.w0(x))
    value = hooks(names["mlp_pre_linear"], mlp.w1(x))
    h = hooks(names["mlp_post"], mlp.act(gate) * value)
    return mlp.drop2(mlp.w2(mlp.drop1(h)))


# ----- attention -----
def attention_kind(attn: nn.Module) -> str:
    """``"plain"`` (timm ``Attention``), ``"rope"`` (``EvaAttention``, ``AttentionRope``) or ``"diff"``."""
    names = {"Attention": "plain", "EvaAttention": "rope", "AttentionRope": "rope", "DiffAttention": "diff"}
    kind = names.get(type(attn).__name__)
    if kind is None:
        raise UnsupportedModelError(f"timm attention {type(attn).__name__} has no hooks yet")
    return kind


def _project_qkv(attn: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v ``[batch, head, pos, d_head]`` as the module computes them (k/v with their own head count)."""
    B, N, _ = x.shape
    H = attn.num_heads
    if getattr(attn, "qkv", None) is None:  # separate projections (grouped-query attention possible)
        kv_heads = getattr(attn, "num_kv_heads", H)
        q = attn.q_proj(x).reshape(B, N, H, -1).transpose(1, 2)
        k = attn.k_proj(x).reshape(B, N, kv_heads, -1).transpose(1, 2)
        v = attn.v_proj(x).reshape(B, N, kv_heads, -1).transpose(1, 2)
        return q, k, v
    if getattr(attn, "q_bias", None) is not None:  # EvaAttention: q and v biases, no k bias
        bias = torch.cat((attn.q_bias, attn.k_bias, attn.v_bias))
        if attn.qkv_bias_separate:
            qkv = attn.qkv(x)
            qkv += bias
        else:
            qkv = F.linear(x, weight=attn.qkv.weight, bias=bias)
    else:
        qkv = attn.qkv(x)
    q, k, v = qkv.reshape(B, N, 3, H, -1).permute(2, 0, 3, 1, 4).unbind(0)
    return q, k, v


def _rotate(attn: nn.Module, t: torch.Tensor, rope: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    from timm.layers import apply_rot_embed_cat

    npt = attn.num_prefix_tokens
    half = getattr(attn, "rotate_half", False)
    return torch.cat([t[:, :, :npt, :], apply_rot_embed_cat(t[:, :, npt:, :], rope, half=half)], dim=2).type_as(like)


def hooked_attention(
    attn: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks, explicit: bool,
    rope: torch.Tensor | None = None,
) -> torch.Tensor:
    """timm ``Attention``, ``EvaAttention`` or ``AttentionRope`` stepped through q, k, v, (scores, pattern,) z."""
    if attention_kind(attn) == "diff":
        return hooked_diff_attention(attn, x, names, hooks, explicit)
    B, N, _ = x.shape
    gate = attn.gate(x).sigmoid() if getattr(attn, "gate", None) is not None else None
    q, k, v = _project_qkv(attn, x)
    q, k = attn.q_norm(q), attn.k_norm(k)
    if rope is not None:
        q, k = _rotate(attn, q, rope, v), _rotate(attn, k, rope, v)
    groups = int(getattr(attn, "num_kv_groups", 1) or 1)
    if groups > 1:
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    # timm keeps [batch, head, pos, d_head]; hooks see TransformerLens' [batch, pos, head, d_head]
    q = hooks.view(names["q"], q, (1, 2))
    k = hooks.view(names["k"], k, (1, 2))
    v = hooks.view(names["v"], v, (1, 2))
    if explicit:
        z = explicit_attention(q, k, v, attn.scale, names, hooks, attn.attn_drop)
    else:
        z = F.scaled_dot_product_attention(q, k, v, dropout_p=attn.attn_drop.p if attn.training else 0.0)
    z = hooks.view(names["z"], z, (1, 2))
    out = attn.norm(z.transpose(1, 2).reshape(B, N, -1))
    if gate is not None:
        out = out * gate
    return attn.proj_drop(attn.proj(out))


def diff_heads(
    owner: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, names: dict[str, str], hooks: ActiveHooks,
    explicit: bool,
) -> torch.Tensor:
    """Differential attention from ``q, k [batch, 2 * head, pos, d]`` and ``v [batch, head, pos, 2 * d]`` to each
    head's output after its sub-norm and scale ``[batch, head, pos, 2 * d]`` (``owner``: the module with the lambdas)."""
    B, _, N, d = q.shape
    H = owner.num_heads
    q, k = owner.q_norm(q), owner.k_norm(k)
    lam = owner._compute_lambda().type_as(q)
    q = hooks.view(names["q"], q, (1, 2))
    k = hooks.view(names["k"], k, (1, 2))
    v = hooks.view(names["v"], v, (1, 2))
    if explicit:
        scores = hooks(names["attn_scores"], (q * owner.scale) @ k.transpose(-2, -1))
        pattern = hooks(names["pattern"], scores.softmax(dim=-1))
        p = owner.attn_drop(pattern).view(B, H, 2, N, N)
        z = (p[:, :, 0] - lam * p[:, :, 1]) @ v
    else:
        q1, q2 = q.reshape(B, H, 2, N, d).unbind(2)
        k1, k2 = k.reshape(B, H, 2, N, d).unbind(2)
        p_drop = owner.attn_drop.p if owner.training else 0.0
        z = F.scaled_dot_product_attention(q1, k1, v, dropout_p=p_drop) - lam * F.scaled_dot_product_attention(
            q2, k2, v, dropout_p=p_drop)
    z = owner.sub_norm(z) * (1 - owner.lambda_init)
    return hooks.view(names["z"], z, (1, 2))


def hooked_diff_attention(
    attn: nn.Module, x: torch.Tensor, names: dict[str, str], hooks: ActiveHooks, explicit: bool
) -> torch.Tensor:
    B, N, C = x.shape
    H, d = attn.num_heads, attn.head_dim
    q, k, v = attn.qkv(x).chunk(3, dim=2)
    q = q.reshape(B, N, 2 * H, d).transpose(1, 2)
    k = k.reshape(B, N, 2 * H, d).transpose(1, 2)
    v = v.reshape(B, N, H, 2 * d).transpose(1, 2)
    z = diff_heads(attn, q, k, v, names, hooks, explicit)
    out = attn.norm(z.transpose(1, 2).reshape(B, N, C))
    return attn.proj_drop(attn.proj(out))


def attention_shape(attn: nn.Module) -> tuple[int, int]:
    """``(n_heads, d_head)`` of ``hook_z``."""
    if attention_kind(attn) == "diff":
        return int(attn.num_heads), 2 * int(attn.head_dim)
    return int(attn.num_heads), int(attn.head_dim)


def out_projection(attn: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """``(W_O, b_O)`` when the output is ``z @ W_O.T + b_O``; ``None`` with a norm or a gate in between."""
    if not isinstance(getattr(attn, "norm", nn.Identity()), nn.Identity) or getattr(attn, "gate", None) is not None:
        return None
    return attn.proj.weight, attn.proj.bias


# ----- attention pools -----
def pool_each(pool: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    """Each token through an attention pool as if it were the only token: ``[..., pos, d]`` -> ``[..., pos, d]``.

    With one key the softmax is 1, so ``AttentionPoolLatent`` gives its value path (``kv`` -> ``proj``) plus its
    MLP; parameter-free ``AttentionPoolPrr`` gives its norms.
    """
    if pool is None:
        return x
    kind = type(pool).__name__
    if kind == "AttentionPoolPrr":
        return pool.post_norm(pool.pre_norm(x))
    if kind != "AttentionPoolLatent":
        raise UnsupportedModelError(f"timm attention pool {kind} has no per-token readout")
    if pool.pos_embed is not None:
        x = x + pool.pos_embed.to(x.dtype)
    width = pool.kv.out_features // 2
    v = F.linear(x, pool.kv.weight[width:], pool.kv.bias[width:] if pool.kv.bias is not None else None)
    y = pool.proj_drop(pool.proj(v))
    if pool.mlp is not None:
        y = y + pool.mlp(pool.norm(y))
    return y


# ----- images and labels -----
def timm_transform(model: nn.Module, image_size: tuple[int, int]) -> tuple[Callable[[Any], torch.Tensor], dict[str, Any]]:
    """timm's eval transform for ``model`` at its real input size, and the data config it came from."""
    from timm.data import create_transform, resolve_data_config

    config = resolve_data_config({}, model=model)
    # The model's real input size wins over a pretrained config made for another size (img_size=...).
    config["input_size"] = (3, *image_size)
    return create_transform(**config, is_training=False), config


def imagenet_labels(model: nn.Module, n: int | None) -> list[str] | None:
    """ImageNet class names for a 1000 / 11821 / 21841 / 21843-class timm head, else ``None``."""
    if n not in (1000, 11821, 21841, 21843):
        return None
    try:
        from timm.data import ImageNetInfo, infer_imagenet_subset

        subset = infer_imagenet_subset(model) or ("imagenet-1k" if n == 1000 else None)
        if subset is None:
            return None
        descriptions = ImageNetInfo(subset).label_descriptions()
    except Exception:  # label files are optional data in timm; no labels is a fine answer
        return None
    if len(descriptions) != n:
        return None
    return [d.split(",")[0].strip() for d in descriptions]  # "tabby, tabby cat" -> "tabby"
