"""What defines an SAE, apart from its weights: widths, architecture, and the hook and model it reads.

Example:
    >>> from prisma_widgets.sae.config import SAEConfig
    >>> SAEConfig(d_in=128, d_sae=1024, arch="topk", k=16).to_dict()["k"]
    16
    >>> SAEConfig(d_in=128, d_sae=8, k=16)
    Traceback (most recent call last):
    ...
    ValueError: k=16 is larger than the SAE width d_sae=8; pass k <= 8 or a wider SAE
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..validate import check_int

ARCHS = ("topk", "batchtopk", "relu")


@dataclass
class SAEConfig:
    """Everything needed to rebuild an SAE; saved as ``cfg.json`` next to the weights."""

    d_in: int
    d_sae: int
    arch: str = "topk"
    k: int | None = 32
    apply_b_dec_to_input: bool = True
    hook: str | None = None
    model: str | None = None
    tokens: str | None = None  # token mode of the activations it was trained on: "all", "patches", "cls"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.d_in = check_int(self.d_in, "d_in", at_least=1, example=768)  # type: ignore[assignment]
        self.d_sae = check_int(self.d_sae, "d_sae", at_least=1, example=16384)  # type: ignore[assignment]
        self.k = check_int(self.k, "k", at_least=1, example=32, none_ok=True)
        if self.arch not in ARCHS:
            raise ValueError(f"unknown SAE architecture {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.arch in ("topk", "batchtopk"):
            if not self.k or self.k < 1:
                raise ValueError(f"arch={self.arch!r} needs k >= 1; got k={self.k}")
            if self.k > self.d_sae:
                raise ValueError(f"k={self.k} is larger than the SAE width d_sae={self.d_sae}; pass k <= {self.d_sae} "
                                 "or a wider SAE")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
