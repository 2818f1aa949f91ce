"""The synced state of a :class:`~prisma_widgets.LogitAttribution`: one image's direct logit attribution,
packed for the view.

What travels (Python computes every number; the front end only draws and subtracts):

* ``component_values`` float32 ``[component, class]``: every class's decomposition (exact; a pair target is
  the difference of two columns, so changing the target needs no kernel);
* ``class_scores`` float32 ``[class]``: the actual scores (the target picker orders by them);
* ``position_values`` float32 ``[k, component, token]`` for the classes ``position_class_ids``: where each
  contribution comes from (source tokens for heads, pooled tokens for the rest);
* ``pooled_attention`` float32 ``[layer, head, token]``: each head's attention from the pooled token;
* ``image_pixels`` uint8 ``[H, W, 3]``; the labels, the class names and the token layout as JSON.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._base import encode_array, to_numpy

if TYPE_CHECKING:
    from ..analysis.logit_attribution import DirectLogitAttribution

PARTS = ("head", "attn", "mlp", "embed", "bias")
NORMALIZATIONS = ("all", "heads")

#: classes whose position maps a widget precomputes when the vocabulary is larger: the top-scoring ones
DEFAULT_POSITION_CLASSES = 8


def position_classes_for(scores: np.ndarray, keep: Sequence[int], limit: int) -> list[int]:
    """Every class when there are at most ``limit``; else the ``limit`` best-scoring ones, plus ``keep``."""
    n = len(scores)
    if n <= limit:
        return list(range(n))
    chosen = [int(c) for c in np.argsort(-scores, kind="stable")[:limit]]
    return chosen + [int(c) for c in keep if 0 <= int(c) < n and int(c) not in chosen]


def attribution_state(dla: DirectLogitAttribution, image: int = 0) -> dict[str, Any]:
    """The data and layout traits of image ``image`` of a :class:`DirectLogitAttribution`."""
    values = np.asarray(to_numpy(dla.class_values[image]), dtype=np.float32)  # [component, class]
    state: dict[str, Any] = {
        "labels": list(dla.labels),
        "n_layers": int(dla.n_layers),
        "n_heads": int(dla.n_heads),
        "class_names": [str(c) for c in dla.class_names],
        "grid": [int(dla.grid[0]), int(dla.grid[1])],
        "n_prefix_tokens": int(dla.n_prefix_tokens),
        "token_labels": [str(t) for t in dla.token_labels],
        "component_values": encode_array(values, "float32"),
        "class_scores": encode_array(to_numpy(dla.scores[image]), "float32"),
    }
    state.update(position_state(dla, image))
    return state


def position_state(dla: DirectLogitAttribution, image: int = 0) -> dict[str, Any]:
    """The position maps of a result made with ``position_classes`` (``{}`` arrays when it has none)."""
    if dla.class_by_position is None or not dla.position_classes:
        return {"position_values": {}, "position_class_ids": [], "pooled_attention": {}}
    per_class = to_numpy(dla.class_by_position[image]).astype(np.float32)  # [k, pos, component]
    pooled = dla.pooled_attention
    return {
        "position_values": encode_array(np.ascontiguousarray(per_class.transpose(0, 2, 1)), "float32"),
        "position_class_ids": [int(c) for c in dla.position_classes],
        "pooled_attention": encode_array(to_numpy(pooled[image]), "float32") if pooled is not None else {},
    }


def default_selection(dla: DirectLogitAttribution, image: int, target: int, versus: int) -> dict[str, Any]:
    """Select the head with the largest contribution to the target (the layer's MLP when there are no heads)."""
    values = to_numpy(dla.class_values[image])
    col = values[:, target] - (values[:, versus] if versus >= 0 else 0.0)
    if dla.n_heads:
        heads = {i: m for i, name in enumerate(dla.labels) if (m := re.fullmatch(r"L(\d+)H(\d+)", name))}
        best = max(heads, key=lambda i: abs(float(col[i])))
        return {"layer": int(heads[best][1]), "head": int(heads[best][2]), "part": "head"}
    mlps = [i for i, name in enumerate(dla.labels) if name.endswith(" MLP")]
    best = max(mlps, key=lambda i: abs(float(col[i])))
    return {"layer": int(dla.labels[best][1:].split(" ")[0]), "head": 0, "part": "mlp"}
