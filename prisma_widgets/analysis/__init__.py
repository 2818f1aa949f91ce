"""Pure functions on models and tensors: the readout, the logit lens, activation patching (exact and
attribution), direct logit attribution, attention rollout and per-head attention summaries."""

from .attention import attention_rollout, head_summaries
from .corrupt import corrupt
from .frozen_readout import FrozenReadout
from .logit_attribution import DirectLogitAttribution, direct_logit_attribution
from .logit_lens import LogitLensResult, lens_statistics, logit_lens
from .patching import PatchingResult, patch
from .readout import Readout

__all__ = ["DirectLogitAttribution", "FrozenReadout", "LogitLensResult", "PatchingResult", "Readout",
           "attention_rollout", "corrupt", "direct_logit_attribution", "head_summaries", "lens_statistics",
           "logit_lens", "patch"]
