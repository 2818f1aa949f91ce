"""A FeatureGallery over clips saved with save_html, opened offline: cards show each top clip at its peak frame
(captioned with the frame), the detail has a strip of every frame of each top clip, and an image gallery none."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from .conftest import canvas_digest, export_png, wait_painted

pytestmark = pytest.mark.browser

HOOK = "blocks.3.hook_resid_post"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    import numpy as np

    import prisma_widgets as pw
    from prisma_widgets import zoo

    model = pw.load("mouse-video")
    clips = zoo.moving_shapes(12, seed=6)
    torch.manual_seed(0)
    sae = pw.SAE(d_in=model.cfg.d_model, d_sae=16, k=4, hook=HOOK)
    names = [zoo.MOTIONS[c] for c in clips.labels]
    g = pw.FeatureGallery(model, sae, list(clips.videos), image_labels=names, top_k=4, n_samples=4, hide_dead=False)
    live = [int(f) for f in np.flatnonzero(g.stats.frequency > 0)[:3]]
    g.feature = live[0]
    return g.save_html(tmp_path_factory.mktemp("clips") / "gallery_clips.html", features=live), live


def test_top_clips_and_their_frames_offline(saved, offline_page, artifacts: Path):
    path, live = saved
    page = offline_page
    page.goto(path.as_uri())
    wait_painted(page)
    root = page.locator(".pw-root")
    assert page.locator(".pw-fg-card").count() == len(live)
    assert page.locator(".pw-fg-card.pw-fg-loading").count() == 0
    assert root.get_attribute("data-feature") == str(live[0])
    strips = page.locator("canvas.pw-fg-frame-strips")
    assert strips.is_visible() and int(root.get_attribute("data-frame-strips")) >= 1
    box = strips.bounding_box()
    assert box["width"] > 4 * 40 and box["height"] > 40  # 4 frames a row, a row per top clip
    # click a patch of the first top clip (shown at its peak frame): the features at that clip token
    top = page.locator("canvas.pw-fg-top").bounding_box()
    page.mouse.click(top["x"] + 5, top["y"] + 5)
    page.wait_for_selector(".pw-fg-patch-feature")
    assert "patch r0c0: active features" in page.locator(".pw-fg-section-title.pw-export-text").text_content()
    before = canvas_digest(strips)
    page.locator(f".pw-fg-card[data-feature='{live[1]}'] .pw-fg-card-head").click()
    page.wait_for_function(f"() => document.querySelector('.pw-root').dataset.feature === '{live[1]}'")
    assert canvas_digest(strips) != before
    img, _ = export_png(page, artifacts / "gallery_clips_export.png")
    assert img.std() > 10
    page.screenshot(path=str(artifacts / "gallery_clips.png"), full_page=True)
    assert page.pw_log.problems() == [], page.pw_log.problems()
    assert all(u.startswith(("file:", "data:", "blob:")) for u in page.pw_log.requests), page.pw_log.requests
