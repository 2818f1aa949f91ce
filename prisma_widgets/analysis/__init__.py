"""Pure functions on models and tensors: the logit lens and activation patching (exact and attribution)."""

from .logit_lens import LogitLensResult, logit_lens
from .patching import PatchingResult, patch

__all__ = ["LogitLensResult", "PatchingResult", "logit_lens", "patch"]
