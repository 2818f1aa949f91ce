"""Pure functions on models and tensors: the readout, the logit lens, activation patching (exact and
attribution), attention rollout."""

from .attention import attention_rollout
from .corrupt import corrupt
from .logit_lens import LogitLensResult, lens_statistics, logit_lens
from .patching import PatchingResult, patch
from .readout import Readout

__all__ = ["LogitLensResult", "PatchingResult", "Readout", "attention_rollout", "corrupt", "lens_statistics",
           "logit_lens", "patch"]
