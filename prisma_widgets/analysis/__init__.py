"""Pure functions on models and tensors: logit lens, and more to come (patching, attribution)."""

from .logit_lens import LogitLensResult, logit_lens

__all__ = ["LogitLensResult", "logit_lens"]
