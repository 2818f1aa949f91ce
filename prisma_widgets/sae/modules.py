"""Sparse autoencoders: TopK, BatchTopK, ReLU (L1), JumpReLU and Gated variants, in SAE-Lens weight layout;
the same module is a transcoder or a crosscoder (``cfg.kind``).

Weights: ``W_enc [d_in, d_sae]``, ``b_enc [d_sae]``, ``W_dec [d_sae, d_in]``, ``b_dec [d_in]``.
``encode(x) = act((x - b_dec) @ W_enc + b_enc)`` and ``decode(f) = f @ W_dec + b_dec``. JumpReLU adds
``threshold [d_sae]`` (``act(p) = relu(p) * (p > threshold)``); Gated replaces ``b_enc`` by ``b_gate``, ``r_mag``
and ``b_mag`` (``f = (p_gate > 0) * relu(proj * exp(r_mag) + b_mag)``).
"""

from __future__ import annotations

import math
from typing import Any, TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..validate import check_device
from .checks import check_activation_width
from .config import K_ARCHS, SAEConfig, param_shapes
from .io import read_sae, save_sae

if TYPE_CHECKING:
    from ..hooked.model import HookedViT


class SAE(nn.Module):
    """A sparse autoencoder over one hook's activations (or a transcoder / crosscoder, see ``cfg.kind``).

    >>> import torch
    >>> sae = SAE(SAEConfig(d_in=8, d_sae=32, arch="topk", k=4))
    >>> f = sae.encode(torch.randn(5, 8))
    >>> int((f != 0).sum(-1).max()) <= 4
    True
    >>> jump = SAE(d_in=8, d_sae=32, arch="jumprelu", k=None)
    >>> sorted(name for name, _ in jump.named_parameters())
    ['W_dec', 'W_enc', 'b_dec', 'b_enc', 'threshold']
    """

    def __init__(self, cfg: SAEConfig | None = None, generator: torch.Generator | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.cfg = cfg if cfg is not None else SAEConfig(**kwargs)
        for name, shape in param_shapes(self.cfg).items():
            self.register_parameter(name, nn.Parameter(torch.zeros(shape)))
        if self.cfg.arch not in ("jumprelu", "gated"):
            # BatchTopK's inference threshold (a running estimate of the smallest kept activation).
            self.register_buffer("threshold", torch.zeros(()))
        # Tokens seen since each latent last fired (dead-latent tracking while training).
        self.register_buffer("tokens_since_fired", torch.zeros(self.cfg.d_sae, dtype=torch.long))
        self.reset_parameters(generator)

    # ----- set-up -----
    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Unit-norm decoder rows in random directions; the encoder starts as the decoder's transpose (a
        transcoder's encoder, which reads another space, as random unit columns); biases zero."""
        c = self.cfg
        w = torch.randn(c.d_sae, c.width_out, generator=generator)
        w /= w.norm(dim=-1, keepdim=True)
        self.W_dec.copy_(w.reshape(self.W_dec.shape))
        if c.kind == "transcoder":
            e = torch.randn(c.d_sae, c.width_in, generator=generator)
            e /= e.norm(dim=-1, keepdim=True)
            self.W_enc.copy_(e.t())
        else:
            self.W_enc.copy_(w.t().reshape(self.W_enc.shape))
        for name in ("b_enc", "b_dec", "b_gate", "r_mag", "b_mag"):
            if hasattr(self, name):
                getattr(self, name).zero_()

    @property
    def d_in(self) -> int:
        return self.cfg.d_in

    @property
    def d_sae(self) -> int:
        return self.cfg.d_sae

    @property
    def arch(self) -> str:
        return self.cfg.arch

    @property
    def kind(self) -> str:
        return self.cfg.kind

    @property
    def device(self) -> torch.device:
        return self.W_enc.device

    # ----- flat views (a crosscoder's layers side by side; a no-op otherwise) -----
    def w_enc(self) -> torch.Tensor:
        """The encoder as ``[width_in, d_sae]``."""
        return self.W_enc.reshape(-1, self.cfg.d_sae)

    def w_dec(self) -> torch.Tensor:
        """The decoder as ``[d_sae, width_out]``."""
        return self.W_dec.reshape(self.cfg.d_sae, -1)

    def b_out(self) -> torch.Tensor:
        """The decoder bias as ``[width_out]``."""
        return self.b_dec.reshape(-1)

    def decoder_norms(self) -> torch.Tensor:
        """Each latent's decoder norm ``[d_sae]`` as its sparsity penalty weighs it (a crosscoder: the sum of
        its per-layer norms, as in Anthropic's crosscoders)."""
        if self.cfg.kind == "crosscoder":
            return self.W_dec.norm(dim=-1).sum(-1)
        return self.W_dec.norm(dim=-1)

    def flat_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as rows of ``width_in``: a crosscoder takes ``[..., n_layers, d_in]`` (or already flat rows)."""
        c = self.cfg
        if c.kind == "crosscoder" and x.ndim >= 2 and tuple(x.shape[-2:]) == (c.n_layers, c.d_in):
            x = x.reshape(*x.shape[:-2], c.width_in)
        check_activation_width(x, c.width_in, c.hook if c.kind != "crosscoder" else None)
        return x

    # ----- the maps -----
    def projection(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - b_dec) @ W_enc`` without the encoder bias; ``b_dec`` folded in as a vector so ``x`` needs no
        gradient."""
        x = self.flat_input(x)
        W = self.w_enc().to(x.dtype)
        pre = x @ W
        if self.cfg.apply_b_dec_to_input:
            pre = pre - self.b_out().to(x.dtype) @ W
        return pre

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder pre-activations ``[..., d_sae]`` (a gated SAE's: the gate's)."""
        bias = self.b_gate if self.cfg.arch == "gated" else self.b_enc
        return self.projection(x) + bias.to(x.dtype)

    def gated_parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gated SAE: ``(gate pre-activations, magnitude pre-activations)``; the magnitude path shares the
        encoder, rescaled per latent by ``exp(r_mag)``."""
        proj = self.projection(x)
        return proj + self.b_gate.to(proj.dtype), proj * self.r_mag.exp().to(proj.dtype) + self.b_mag.to(proj.dtype)

    def encode_sparse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """TopK only: ``(values, indices)`` ``[..., k]`` of the active latents (values >= 0)."""
        if self.arch != "topk":
            raise ValueError("encode_sparse is for arch='topk'; use encode()")
        vals, idx = self.pre_acts(x).topk(self.cfg.k, dim=-1, sorted=False)
        return F.relu(vals), idx

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature activations ``[..., d_sae]`` (dense tensor, mostly zeros)."""
        if self.arch == "gated":
            gate, mag = self.gated_parts(x)
            return F.relu(mag) * (gate > 0)
        pre = self.pre_acts(x)
        if self.arch == "topk":
            vals, idx = pre.topk(self.cfg.k, dim=-1, sorted=False)
            return torch.zeros_like(pre).scatter_(-1, idx, F.relu(vals))
        if self.arch == "batchtopk":  # inference: a fixed threshold learned while training
            return pre * (pre > self.threshold.to(pre.dtype))
        if self.arch == "jumprelu":  # as SAE-Lens: relu, then the per-latent jump
            return F.relu(pre) * (pre > self.threshold.to(pre.dtype))
        return F.relu(pre)

    def decode_flat(self, f: torch.Tensor) -> torch.Tensor:
        """Reconstruction as rows of ``width_out`` (a crosscoder's layers side by side)."""
        return f @ self.w_dec().to(f.dtype) + self.b_out().to(f.dtype)

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``[..., d_in]`` (a transcoder: ``[..., d_out]``; a crosscoder: ``[..., n_layers, d_in]``)
        from feature activations ``[..., d_sae]``."""
        out = self.decode_flat(f)
        if self.cfg.kind == "crosscoder":
            out = out.reshape(*out.shape[:-1], self.cfg.n_layers, self.cfg.d_in)
        return out

    def decode_sparse(self, vals: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Reconstruction rows (``width_out``) from ``k`` active latents per row: a gather, not a dense matmul."""
        shape = idx.shape
        out = F.embedding_bag(
            idx.reshape(-1, shape[-1]), self.w_dec().to(vals.dtype), per_sample_weights=vals.reshape(-1, shape[-1]),
            mode="sum",
        )
        return (out + self.b_out().to(out.dtype)).reshape(*shape[:-1], self.cfg.width_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``x`` (a transcoder: its prediction of the output hook), shaped as ``decode``."""
        if self.arch == "topk":
            out = self.decode_sparse(*self.encode_sparse(x))
            if self.cfg.kind == "crosscoder":
                out = out.reshape(*out.shape[:-1], self.cfg.n_layers, self.cfg.d_in)
            return out
        return self.decode(self.encode(x))

    # ----- training helpers -----
    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescale decoder rows to unit norm (every architecture but ReLU trains with them there)."""
        w = self.w_dec()
        w /= w.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def project_decoder_grad(self) -> None:
        """Remove the part of each decoder row's gradient parallel to the row (keeps the norm constraint tight)."""
        g = self.W_dec.grad
        if g is not None:
            g2, w = g.reshape(self.cfg.d_sae, -1), self.w_dec()
            g2.addcmul_(w, torch.linalg.vecdot(g2, w, dim=-1).unsqueeze(-1), value=-1)

    # ----- files -----
    def save(self, path: str) -> str:
        """Write ``cfg.json`` + ``sae_weights.safetensors`` into the folder ``path`` (SAE-Lens layout)."""
        return save_sae(self, path)

    @classmethod
    def load(cls, path: str, model: HookedViT | None = None, hook: str | None = None, device: Any = None) -> SAE:
        """Load a folder written by :meth:`save` or by SAE-Lens (``cfg.json`` + ``sae_weights.safetensors``).

        With ``model`` (and ``hook``, else the one in the file's config), a width that does not match
        the hook's activations is refused.
        """
        device = None if device is None else check_device(device)
        cfg, tensors = read_sae(path, model=model, hook=hook)
        sae = SAE(cfg)
        with torch.no_grad():
            for key in param_shapes(cfg):
                getattr(sae, key).copy_(tensors[key])
            if "threshold" in tensors and cfg.arch == "batchtopk":
                sae.threshold.copy_(tensors["threshold"].reshape(()))
        if device is not None:
            sae.to(device)
        return sae

    def evaluate(self, data: Any, model: HookedViT | None = None, images: Any = None, hook: str | None = None, **kwargs: Any):
        """Reconstruction and sparsity metrics, and with ``model`` + ``images`` the downstream effect."""
        from .evaluate import evaluate

        return evaluate(self, data, model=model, images=images, hook=hook, **kwargs)

    def extra_repr(self) -> str:
        c = self.cfg
        k = f", k={c.k}" if c.arch in K_ARCHS else ""
        kind = f"kind={c.kind!r}, " if c.kind != "sae" else ""
        out = f", d_out={c.d_out}, hook_out={c.hook_out!r}" if c.kind == "transcoder" else ""
        layers = f", hooks={c.hooks!r}" if c.kind == "crosscoder" else ""
        return f"{kind}arch={c.arch!r}, d_in={c.d_in}, d_sae={c.d_sae}{k}, hook={c.hook!r}{out}{layers}"


def default_lr(d_sae: int, arch: str) -> float:
    """A learning rate that works across widths (scales as 1 / sqrt(width), as in the TopK SAE literature)."""
    base = 2e-4 * math.sqrt(16384 / d_sae)
    return min(base, 3e-3) if arch not in ("relu", "gated") else min(base, 1e-3)
