"""What defines an SAE, apart from its weights: widths, architecture, kind, and the hooks and model it reads.

Three kinds share one module (:class:`~prisma_widgets.sae.modules.SAE`) and one training loop:

- ``"sae"``: reads one hook and reconstructs it (``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``);
- ``"transcoder"``: reads ``hook`` and predicts ``hook_out`` (``W_dec [d_sae, d_out]``, ``b_dec [d_out]``);
- ``"crosscoder"``: reads and writes ``len(hooks)`` layers of the same width at once
  (``W_enc [n_layers, d_in, d_sae]``, ``W_dec [d_sae, n_layers, d_in]``, ``b_dec [n_layers, d_in]``).

Example:
    >>> from prisma_widgets.sae.config import SAEConfig, param_shapes
    >>> SAEConfig(d_in=128, d_sae=1024, arch="topk", k=16).to_dict()["k"]
    16
    >>> param_shapes(SAEConfig(d_in=8, d_sae=32, arch="gated", k=None))["r_mag"]
    (32,)
    >>> SAEConfig(d_in=128, d_sae=8, k=16)
    Traceback (most recent call last):
    ...
    ValueError: k=16 is larger than the SAE width d_sae=8; pass k <= 8 or a wider SAE
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..validate import check_int

ARCHS = ("topk", "batchtopk", "relu", "jumprelu", "gated")
#: architectures whose sparsity comes from ``k`` (the rest from a penalty coefficient)
K_ARCHS = ("topk", "batchtopk")
#: architectures trained with unit-norm decoder rows (ReLU weighs its L1 by the row norms instead)
UNIT_DECODER_ARCHS = ("topk", "batchtopk", "jumprelu", "gated")
KINDS = ("sae", "transcoder", "crosscoder")


@dataclass
class SAEConfig:
    """Everything needed to rebuild an SAE; saved as ``cfg.json`` next to the weights.

    ``d_in`` is the width of one hook read (for a crosscoder: of each layer); ``d_out`` a transcoder's output
    width; ``hooks`` a crosscoder's layers (``hook`` is then the first).
    """

    d_in: int
    d_sae: int
    arch: str = "topk"
    k: int | None = 32
    apply_b_dec_to_input: bool = True
    hook: str | None = None
    model: str | None = None
    tokens: str | None = None  # token mode of the activations it was trained on: "all", "patches", "cls"
    extra: dict[str, Any] = field(default_factory=dict)
    kind: str = "sae"
    d_out: int | None = None
    hook_out: str | None = None
    hooks: list[str] | None = None
    n_layers: int = 1

    def __post_init__(self) -> None:
        self.d_in = check_int(self.d_in, "d_in", at_least=1, example=768)  # type: ignore[assignment]
        self.d_sae = check_int(self.d_sae, "d_sae", at_least=1, example=16384)  # type: ignore[assignment]
        self.k = check_int(self.k, "k", at_least=1, example=32, none_ok=True)
        if self.arch not in ARCHS:
            raise ValueError(f"unknown SAE architecture {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown SAE kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.arch in K_ARCHS:
            if not self.k or self.k < 1:
                raise ValueError(f"arch={self.arch!r} needs k >= 1; got k={self.k}")
            if self.k > self.d_sae:
                raise ValueError(f"k={self.k} is larger than the SAE width d_sae={self.d_sae}; pass k <= {self.d_sae} "
                                 "or a wider SAE")
        if self.kind == "transcoder":
            self.d_out = check_int(self.d_out, "d_out", at_least=1, example=768,
                                   fix="A transcoder needs its output width, e.g. d_out=768.")
            self.apply_b_dec_to_input = False  # b_dec lives in the output space
        elif self.d_out not in (None, self.d_in * self.n_layers):
            raise ValueError(f"d_out={self.d_out} is for transcoders (kind='transcoder'); this is a {self.kind}")
        else:
            self.d_out = None
        self.n_layers = check_int(self.n_layers, "n_layers", at_least=1, example=2)  # type: ignore[assignment]
        if self.kind == "crosscoder":
            if self.hooks is not None:
                self.hooks = [str(h) for h in self.hooks]
                if len(self.hooks) != self.n_layers:
                    raise ValueError(f"a crosscoder over {self.n_layers} layers names {len(self.hooks)} hooks; "
                                     "pass one hook per layer")
                self.hook = self.hook or self.hooks[0]
        elif self.n_layers != 1:
            raise ValueError(f"n_layers={self.n_layers} is for crosscoders (kind='crosscoder'); this is a {self.kind}")

    @property
    def width_in(self) -> int:
        """The width of one input row (all layers of a crosscoder together)."""
        return self.d_in * self.n_layers

    @property
    def width_out(self) -> int:
        """The width of one reconstructed row."""
        return self.d_out if self.kind == "transcoder" and self.d_out else self.d_in * self.n_layers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def param_shapes(cfg: SAEConfig) -> dict[str, tuple[int, ...]]:
    """The module's trained tensors and their shapes, under SAE-Lens names (what a file holds)."""
    f = cfg.d_sae
    if cfg.kind == "crosscoder":
        enc: tuple[int, ...] = (cfg.n_layers, cfg.d_in, f)
        dec: tuple[int, ...] = (f, cfg.n_layers, cfg.d_in)
        b_dec: tuple[int, ...] = (cfg.n_layers, cfg.d_in)
    else:
        enc, dec, b_dec = (cfg.d_in, f), (f, cfg.width_out), (cfg.width_out,)
    shapes: dict[str, tuple[int, ...]] = {"W_enc": enc}
    if cfg.arch == "gated":
        shapes.update(b_gate=(f,), r_mag=(f,), b_mag=(f,))
    else:
        shapes["b_enc"] = (f,)
    if cfg.arch == "jumprelu":
        shapes["threshold"] = (f,)
    shapes.update(W_dec=dec, b_dec=b_dec)
    return shapes
