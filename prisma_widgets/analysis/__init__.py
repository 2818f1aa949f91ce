"""Pure functions on models and tensors: the logit lens and activation patching (exact and attribution)."""

from .corrupt import corrupt
from .logit_lens import LogitLensResult, logit_lens
from .patching import PatchingResult, patch

__all__ = ["LogitLensResult", "PatchingResult", "corrupt", "logit_lens", "patch"]
