"""Activation patching by a clip's position sets: a whole token frame, or one patch through time (a tube),
against plain forwards with the same tokens replaced by hand."""

from __future__ import annotations

import pytest
import torch
from conftest import patched_by_hand

import prisma_widgets as pw
from prisma_widgets import zoo
from prisma_widgets.analysis.patching import patch, position_groups, run_patched


@pytest.fixture(scope="module")
def setup():
    model = pw.load("mouse-video")
    clip = zoo.moving_shapes(1, seed=6).videos[0]
    return model, [clip], [clip[::-1].copy()]  # the same clip played backwards: the opposite motion


def metric(out: torch.Tensor) -> torch.Tensor:
    return out[:, 0].mean() - out[:, 1].mean()


@pytest.mark.parametrize("by", ["frame", "tube"])
def test_frame_and_tube_patching_match_plain_forwards(setup, by):
    model, clean, corrupted = setup
    cfg = model.cfg
    groups = position_groups(cfg, by)
    assert len(groups) == (cfg.frames if by == "frame" else cfg.grid[0] * cfg.grid[1])
    assert sorted(i for g in groups for i in g) == list(range(cfg.n_prefix_tokens, cfg.n_tokens))  # a partition
    result = patch(model, clean, corrupted, metric=metric, site="resid_pre", by=by, progress=False)
    assert result.axes == ("layer", by) and result.values.shape == (cfg.n_layers, len(groups))
    assert result.labels[by][1] == ("t1" if by == "frame" else "r0c1")
    with torch.no_grad():
        clean_m = float(metric(model(model.to_pixels(clean))))
        corrupted_m = float(metric(model(model.to_pixels(corrupted))))
    for layer in (0, cfg.n_layers - 1):
        for cell in (0, len(groups) - 1):
            out = patched_by_hand(model, clean, corrupted, layer, groups[cell])
            torch.testing.assert_close(run_patched(model, clean, corrupted, "resid_pre", by, layer, cell), out)
            want = (float(metric(out)) - corrupted_m) / (clean_m - corrupted_m)
            assert abs(float(result.values[layer, cell]) - want) < 1e-4


def test_every_frame_at_once_is_the_clean_run_and_attribution_sums_positions(setup):
    model, clean, corrupted = setup
    cfg = model.cfg
    every = [i for g in position_groups(cfg, "frame") for i in g]
    with torch.no_grad():
        torch.testing.assert_close(patched_by_hand(model, clean, corrupted, 0, every), model(model.to_pixels(clean)))
    per_position = patch(model, clean, corrupted, metric=metric, by="position", method="attribution", progress=False)
    per_frame = patch(model, clean, corrupted, metric=metric, by="frame", method="attribution", progress=False)
    # denoising from the corrupted run, a normalised estimate is change / (clean - corrupted): it adds up
    for t, tokens in enumerate(position_groups(cfg, "frame")):
        expected = per_position.values[:, tokens].sum(-1)
        torch.testing.assert_close(per_frame.values[:, t], expected, atol=1e-4, rtol=1e-4)


def test_position_sets_are_offered_and_checked(setup):
    model, clean, corrupted = setup
    with pytest.raises(ValueError, match=r"does not apply.*'frame', 'tube'"):
        patch(model, clean, corrupted, metric=metric, site="z", by="frames", progress=False)
    with pytest.raises(ValueError, match=r"cell must be in \[0, 4\)"):
        run_patched(model, clean, corrupted, "resid_pre", "frame", 0, cell=4)
