"""Sparse autoencoders: TopK, BatchTopK and ReLU (L1) variants, in SAE-Lens weight layout.

Weights: ``W_enc [d_in, d_sae]``, ``b_enc [d_sae]``, ``W_dec [d_sae, d_in]``, ``b_dec [d_in]``.
``encode(x) = act((x - b_dec) @ W_enc + b_enc)`` and ``decode(f) = f @ W_dec + b_dec``.
"""

from __future__ import annotations

import math
from typing import Any, TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..validate import check_device
from .checks import check_activation_width
from .config import SAEConfig
from .io import WEIGHT_KEYS, read_sae, save_sae

if TYPE_CHECKING:
    from ..hooked.model import HookedViT


class SAE(nn.Module):
    """A sparse autoencoder over one hook's activations.

    >>> import torch
    >>> sae = SAE(SAEConfig(d_in=8, d_sae=32, arch="topk", k=4))
    >>> f = sae.encode(torch.randn(5, 8))
    >>> int((f != 0).sum(-1).max()) <= 4
    True
    """

    def __init__(self, cfg: SAEConfig | None = None, generator: torch.Generator | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.cfg = cfg if cfg is not None else SAEConfig(**kwargs)
        d_in, d_sae = self.cfg.d_in, self.cfg.d_sae
        self.W_enc = nn.Parameter(torch.empty(d_in, d_sae))
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.W_dec = nn.Parameter(torch.empty(d_sae, d_in))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        # BatchTopK's inference threshold (a running estimate of the smallest kept activation).
        self.register_buffer("threshold", torch.zeros(()))
        # Tokens seen since each latent last fired (dead-latent tracking while training).
        self.register_buffer("tokens_since_fired", torch.zeros(d_sae, dtype=torch.long))
        self.reset_parameters(generator)

    # ----- set-up -----
    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Unit-norm decoder rows in random directions; the encoder starts as the decoder's transpose."""
        w = torch.randn(self.cfg.d_sae, self.cfg.d_in, generator=generator)
        w /= w.norm(dim=-1, keepdim=True)
        self.W_dec.copy_(w)
        self.W_enc.copy_(w.t())
        self.b_enc.zero_()
        self.b_dec.zero_()

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
    def device(self) -> torch.device:
        return self.W_enc.device

    # ----- the maps -----
    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder pre-activations ``[..., d_sae]``. ``b_dec`` is folded in as a vector so ``x`` needs no gradient."""
        check_activation_width(x, self.cfg.d_in, self.cfg.hook)
        W = self.W_enc.to(x.dtype)
        pre = x @ W + self.b_enc.to(x.dtype)
        if self.cfg.apply_b_dec_to_input:
            pre = pre - self.b_dec.to(x.dtype) @ W
        return pre

    def encode_sparse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """TopK only: ``(values, indices)`` ``[..., k]`` of the active latents (values >= 0)."""
        if self.arch != "topk":
            raise ValueError("encode_sparse is for arch='topk'; use encode()")
        vals, idx = self.pre_acts(x).topk(self.cfg.k, dim=-1, sorted=False)
        return F.relu(vals), idx

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature activations ``[..., d_sae]`` (dense tensor, mostly zeros)."""
        pre = self.pre_acts(x)
        if self.arch == "topk":
            vals, idx = pre.topk(self.cfg.k, dim=-1, sorted=False)
            return torch.zeros_like(pre).scatter_(-1, idx, F.relu(vals))
        if self.arch == "batchtopk":  # inference: a fixed threshold learned while training
            return pre * (pre > self.threshold.to(pre.dtype))
        return F.relu(pre)

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``[..., d_in]`` from feature activations ``[..., d_sae]``."""
        return f @ self.W_dec.to(f.dtype) + self.b_dec.to(f.dtype)

    def decode_sparse(self, vals: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Reconstruction from ``k`` active latents per row: a gather, not a dense matmul."""
        shape = idx.shape
        out = F.embedding_bag(
            idx.reshape(-1, shape[-1]), self.W_dec.to(vals.dtype), per_sample_weights=vals.reshape(-1, shape[-1]),
            mode="sum",
        )
        return (out + self.b_dec.to(out.dtype)).reshape(*shape[:-1], self.d_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``x``."""
        if self.arch == "topk":
            return self.decode_sparse(*self.encode_sparse(x))
        return self.decode(self.encode(x))

    # ----- training helpers -----
    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescale decoder rows to unit norm (TopK/BatchTopK keep them there)."""
        self.W_dec /= self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def project_decoder_grad(self) -> None:
        """Remove the part of each decoder row's gradient parallel to the row (keeps the norm constraint tight)."""
        g = self.W_dec.grad
        if g is not None:
            g.addcmul_(self.W_dec, torch.linalg.vecdot(g, self.W_dec, dim=-1).unsqueeze(-1), value=-1)

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
            for key in WEIGHT_KEYS:
                getattr(sae, key).copy_(tensors[key])
            if "threshold" in tensors:
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
        k = f", k={c.k}" if c.arch != "relu" else ""
        return f"arch={c.arch!r}, d_in={c.d_in}, d_sae={c.d_sae}{k}, hook={c.hook!r}"


def default_lr(d_sae: int, arch: str) -> float:
    """A learning rate that works across widths (scales as 1 / sqrt(width), as in the TopK SAE literature)."""
    base = 2e-4 * math.sqrt(16384 / d_sae)
    return min(base, 3e-3) if arch != "relu" else min(base, 1e-3)
