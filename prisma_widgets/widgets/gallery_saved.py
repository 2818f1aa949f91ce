"""What a saved :class:`~prisma_widgets.FeatureGallery` page holds, and the line that says so.

A saved page holds the features chosen when saving (by default the cards on screen), not the whole SAE, so
the page says how many of the features that fire it holds and how to keep them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def saved_features(frequency: Any, cards: Sequence[int], feature: int,
                   features: Sequence[int] | str | None) -> tuple[list[int], str]:
    """``(feature ids to save, sorted; the page's note)`` for ``FeatureGallery.save_html(features=...)``.

    ``features``: ``None`` (the cards on screen and the selected ``feature``), ``"all"`` (every feature
    that fires, i.e. ``frequency > 0``) or a list of indices.

    Example:
        >>> ids, note = saved_features(np.array([0.1, 0.0, 0.2, 0.3]), [3, 2], 0, None)
        >>> ids, note
        ([0, 2, 3], 'saved page: all 3 features that fire')
        >>> saved_features(np.array([0.1, 0.2, 0.3, 0.4]), [3], -1, None)[1]
        "saved page: 1 of the 4 features that fire (the cards on screen); save_html(path, features='all') keeps all"
    """
    live = [int(f) for f in np.flatnonzero(np.asarray(frequency) > 0)]
    if isinstance(features, str):
        if features != "all":
            raise ValueError(f"features must be a list of feature indices or 'all'; got {features!r}")
        chosen: Sequence[int] = live
    elif features is None:
        chosen = [*cards, *([feature] if feature >= 0 else [])]
    else:
        chosen = features
    ids = sorted({int(f) for f in chosen})
    held = len(set(ids) & set(live))
    if held >= len(live):
        return ids, f"saved page: all {len(live)} features that fire"
    which = " (the cards on screen)" if features is None else ""
    return ids, (f"saved page: {held} of the {len(live)} features that fire{which}; "
                 "save_html(path, features='all') keeps all")
