"""A saved FeatureGallery says how many features it holds, and save_html(features="all") holds every feature
that fires (issue 17, item 12): opened offline, the page lists them and says so."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from .conftest import wait_painted

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    import prisma_widgets as pw
    from prisma_widgets.zoo.shapes import shapes

    model = pw.load("mouse-vit")
    g = torch.Generator().manual_seed(0)
    sae = pw.SAE(d_in=128, d_sae=40, k=6, hook="blocks.3.hook_resid_post", generator=g)
    with torch.no_grad():
        sae.b_enc.copy_(torch.randn(40, generator=g) * 0.3)
    images, _ = shapes(30, seed=7)
    w = pw.FeatureGallery(model, sae, images, page_size=6)
    live = int((np.asarray(w.stats.frequency) > 0).sum())
    out = tmp_path_factory.mktemp("gallery")
    return w.save_html(out / "screen.html"), w.save_html(out / "all.html", features="all"), live


def _state(path: Path) -> dict:
    text = path.read_text()
    return json.loads(re.search(r'class="pw-state">(.*?)</script>', text, re.DOTALL).group(1))["state"]


def test_saved_gallery_says_what_it_holds(pages, offline_page, new_page, artifacts: Path):
    screen, everything, live = pages
    assert live > 7  # more features fire than the 6 cards on screen
    state = _state(screen)
    held = len(state["card_features"])
    assert held < live and f"{held} of the {live} features" in state["status"] and "features='all'" in state["status"]
    page = offline_page
    page.goto(screen.as_uri())
    wait_painted(page)
    status = page.locator(".pw-feature-gallery .pw-status").first
    assert f"{held} of the {live} features that fire" in status.text_content()
    assert status.is_visible()
    out = artifacts / "i17a" / "after"
    out.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 800, "height": 1000})
    page.screenshot(path=str(out / "gallery_saved_800.png"), full_page=True)
    # "all": every feature that fires is in the page, and the page says so
    all_state = _state(everything)
    assert len(all_state["card_features"]) == live and f"all {live} features" in all_state["status"]
    dark = new_page(color_scheme="dark")
    dark.goto(everything.as_uri())
    wait_painted(dark)
    assert f"all {live} features that fire" in dark.locator(".pw-feature-gallery .pw-status").first.text_content()
    dark.screenshot(path=str(out / "gallery_saved_all_dark.png"), full_page=True)
    assert page.pw_log.problems() == [] and dark.pw_log.problems() == []
