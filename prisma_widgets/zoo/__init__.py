"""Offline models shipped in the wheel ("mice") and the synthetic shapes data they were trained on.

- :func:`shapes` / :func:`scenes`: deterministic synthetic data (one shape per image / 2-4 shapes with
  per-patch ground truth and captions); :func:`shape_pair`: a minimal pair for patching (one shape changed).
- :func:`moving_shapes`: clips of one shape moving right, left, down or up, with per-frame patch
  ground truth (the video mouse's data).
- :func:`build`: ``"mouse-vit"`` (a timm ``VisionTransformer``) or ``"mouse-clip"`` (an open_clip ``CLIP``)
  with their trained weights, exactly as the libraries build them. ``pw.load("mouse-vit")`` wraps it.

Retrain with ``python -m prisma_widgets.zoo.train mouse-vit`` (or ``mouse-clip``); each model has a card in
``zoo/cards/`` with its recipe and measured numbers.
"""

from __future__ import annotations

from .clips import MOTIONS, Clips, moving_shapes
from .registry import BUNDLED, PROMPT, WeightsError, build, card_path, weights_path
from .shapes import (
    COLOUR_NAMES,
    COLOURS,
    POSITIONS,
    SHAPE_CLASSES,
    SIZES,
    Scenes,
    ShapePair,
    scenes,
    shape_pair,
    shapes,
)

__all__ = [
    "BUNDLED", "COLOURS", "COLOUR_NAMES", "MOTIONS", "POSITIONS", "PROMPT", "SHAPE_CLASSES", "SIZES", "Clips",
    "Scenes", "ShapePair", "WeightsError", "build", "card_path", "moving_shapes", "scenes", "shape_pair", "shapes",
    "weights_path",
]
