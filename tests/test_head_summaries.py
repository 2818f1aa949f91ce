"""Per-head attention summaries (mean attention distance, entropy): a hand computation, and AttentionGrid's
table equal to the analysis averaged over its images."""

from __future__ import annotations

import numpy as np
import pytest
import traitlets

import prisma_widgets as pw
from prisma_widgets.analysis import head_summaries


def test_distance_and_entropy_by_hand():
    # CLS + a 2x3 grid (7 tokens), 2 heads
    T = 7
    p = np.zeros((2, T, T))
    p[0, :, 0] = 1.0  # head 0: everything on CLS -> no patch attention, entropy 0
    for q in range(1, T):
        p[1, q, 1] = 0.5  # head 1: half on patch r0c0, half on CLS
        p[1, q, 0] = 0.5
    s = head_summaries(p, (2, 3), 1)
    assert s["distance"][0] == 0.0 and s["entropy"][0] == 0.0
    # the patch attention of head 1 is all on r0c0: distances from each patch query to (0, 0)
    coords = [(r, c) for r in range(2) for c in range(3)]
    expected = np.mean([np.hypot(r, c) for r, c in coords])
    assert np.isclose(s["distance"][1], expected)
    assert np.isclose(s["entropy"][1], np.log(2))
    with pytest.raises(ValueError, match="do not fit"):
        head_summaries(p, (3, 3), 1)


def test_the_grid_table_is_the_analysis_over_its_images():
    model = pw.load("mouse-vit")
    scenes = pw.zoo.scenes(3, seed=1)
    grid = pw.AttentionGrid(model, list(scenes.images), layers=[1, 3], heads=[0, 2])
    _, cache = model.run_with_cache(list(scenes.images), names_filter=lambda n: n.endswith("hook_pattern"))
    for i, layer in enumerate([1, 3]):
        ref = head_summaries(cache["pattern", layer].numpy(), model.cfg.grid, 1)
        for key in ("distance", "entropy"):
            np.testing.assert_allclose(grid.head_summary()[key][i], ref[key].mean(0)[[0, 2]], rtol=1e-5)
    assert grid.summary == "none" and grid.sort_heads is False
    grid.summary, grid.sort_heads = "distance", True
    with pytest.raises(traitlets.TraitError):
        grid.summary = "variance"
    # from arrays: the same table
    patterns = np.stack([cache["pattern", l].numpy() for l in range(4)], 1)
    again = pw.AttentionGrid.from_patterns(patterns, model.display_images(list(scenes.images)))
    np.testing.assert_allclose(again.head_summary()["entropy"][[1, 3]][:, [0, 2]], grid.head_summary()["entropy"], rtol=1e-5)
