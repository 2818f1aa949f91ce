"""FeatureGallery saved with save_html, opened from file:// with the network blocked."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from .conftest import canvas_digest, wait_painted

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror="window.__pwned=1">'
CHOSEN = [0, 2, 5, 9, 13]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import prisma_widgets as pw
    from prisma_widgets.widgets.feature_gallery import FeatureGallery
    from prisma_widgets.zoo.shapes import SHAPE_CLASSES, shapes

    model = pw.load("mouse-vit")
    g = torch.Generator().manual_seed(0)
    sae = pw.SAE(d_in=128, d_sae=24, k=6, hook="blocks.3.hook_resid_post", generator=g)
    with torch.no_grad():
        sae.b_enc.copy_(torch.randn(24, generator=g) * 0.3)
    images, labels = shapes(24, seed=3)
    names = [HOSTILE if i % 4 == 0 else SHAPE_CLASSES[c] for i, c in enumerate(labels)]
    w = FeatureGallery(model, sae, images, image_labels=names, title=HOSTILE, feature=5, hide_dead=False)
    return w.save_html(tmp_path_factory.mktemp("gallery") / "gallery.html", features=CHOSEN)


def test_cards_detail_and_patch_lookup_offline(saved, offline_page, artifacts: Path):
    page = offline_page
    page.goto(saved.as_uri())
    wait_painted(page)
    root = page.locator(".pw-root")
    cards = page.locator(".pw-fg-card")
    assert cards.count() == len(CHOSEN)
    assert sorted(int(c.get_attribute("data-feature")) for c in cards.all()) == CHOSEN
    assert page.locator(".pw-fg-card.pw-fg-loading").count() == 0  # every saved card has its images
    assert root.get_attribute("data-feature") == "5"
    assert page.locator(".pw-fg-detail-title").text_content() == "feature #5"
    assert page.locator(".pw-fg-card[aria-selected=true]").get_attribute("data-feature") == "5"
    top = page.locator("canvas.pw-fg-top")
    assert top.bounding_box()["width"] > 100

    # click another card: the detail view follows (its data is in the page)
    before = canvas_digest(top)
    hist0 = canvas_digest(page.locator("canvas.pw-fg-histogram"))
    page.locator(".pw-fg-card[data-feature='9'] .pw-fg-card-head").click()
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.feature === '9'")
    assert page.locator(".pw-fg-detail-title").text_content() == "feature #9"
    assert "loading" not in page.locator(".pw-fg-detail-stats").text_content()
    assert canvas_digest(top) != before
    assert canvas_digest(page.locator("canvas.pw-fg-histogram")) != hist0  # another bar marked
    # 8 classes: the top 4 and the bottom 4 class effects, never one class in both lists
    assert page.locator(".pw-fg-effect").count() == 8
    cols = page.locator(".pw-fg-effect-col")
    up = set(cols.nth(0).locator(".pw-fg-effect-name").all_text_contents())
    down = set(cols.nth(1).locator(".pw-fg-effect-name").all_text_contents())
    assert len(up) == len(down) == 4 and not up & down
    # its histograms are painted; steering needs a kernel, and the saved page says so instead of showing buttons
    assert page.locator("canvas.pw-fg-act-histogram").bounding_box()["height"] > 50
    assert page.locator("canvas.pw-fg-effect-histogram").bounding_box()["height"] > 50
    assert "needs a running kernel" in page.locator(".pw-fg-steer").text_content()
    assert page.locator(".pw-fg-steer-zero").is_hidden()
    # the cards' class is what the decoder direction pushes up, and says so
    head = page.locator(".pw-fg-card[data-feature='9'] .pw-fg-card-stats")
    assert "pushes ↑" in head.text_content() and "not what the feature detects" in head.get_attribute("title")
    assert page.locator(".pw-fg-quantile-group").count() >= 1

    # click a patch of a top image: the features active there, from the precomputed table
    box = top.bounding_box()
    page.mouse.click(box["x"] + 30, box["y"] + 30)
    page.wait_for_selector(".pw-fg-patch-feature")
    buttons = page.locator(".pw-fg-patch-feature")
    assert buttons.count() >= 1
    assert "active features" in page.locator(".pw-fg-section-title.pw-export-text").text_content()
    enabled = [b for b in buttons.all() if b.is_enabled()]
    assert enabled, "the page holds none of the features active at this patch"
    target = enabled[0].text_content().split()[0][1:]  # a listed feature that this page holds opens it
    enabled[0].click()
    page.wait_for_function(f"() => document.querySelector('.pw-root').dataset.feature === '{target}'")

    # sorting and search run in the page
    page.locator("input.pw-fg-search").fill("13")
    page.wait_for_function("() => document.querySelectorAll('.pw-fg-card').length === 1")
    assert page.locator(".pw-fg-card").get_attribute("data-feature") == "13"
    page.locator("input.pw-fg-search").fill("")
    page.wait_for_function(f"() => document.querySelectorAll('.pw-fg-card').length === {len(CHOSEN)}")
    page.locator("label:has-text('sort by') select").select_option("index")
    page.locator("button.pw-fg-order").click()  # ascending
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.pw-fg-card')).map(c => c.dataset.feature).join() === '0,2,5,9,13'"
    )
    page.screenshot(path=str(artifacts / "feature_gallery_standalone.png"), full_page=True)

    # PNG export of the view
    with page.expect_download() as dl:
        page.get_by_role("button", name="PNG").click()
    assert dl.value.suggested_filename.startswith("feature_gallery_")

    log = page.pw_log
    assert log.problems() == [], log.problems()
    assert all(u.startswith(("file:", "data:", "blob:")) for u in log.requests), log.requests
    assert page.evaluate("() => window.__pwned === undefined") and page.locator("img").count() == 0
    assert page.locator(".pw-title").text_content() == HOSTILE


def test_clip_gallery_names_prompt_effects_as_text_offline(tmp_path: Path, offline_page):
    """On mouse-clip the effects are per prompt (through the text tower); a prompt is user text, shown as text."""
    import prisma_widgets as pw
    from prisma_widgets.widgets.feature_gallery import FeatureGallery
    from prisma_widgets.zoo.shapes import shapes

    model = pw.load("mouse-clip")
    g = torch.Generator().manual_seed(1)
    sae = pw.SAE(d_in=model.cfg.d_model, d_sae=16, k=4, hook="blocks.3.hook_resid_post", generator=g)
    images, _ = shapes(16, seed=4)
    prompts = ["a photo of a circle", "a photo of a star", HOSTILE]
    w = FeatureGallery(model, sae, images, prompts=prompts, tokens="all", feature=3, hide_dead=False)
    saved = w.save_html(tmp_path / "clip_gallery.html", features=[1, 3])

    page = offline_page
    page.goto(saved.as_uri())
    wait_painted(page)
    assert page.locator(".pw-fg-detail-title").text_content() == "feature #3"
    names = [n.text_content() for n in page.locator(".pw-fg-effect-name").all()]
    assert set(names) == set(prompts), names  # 3 prompts: 2 on top, 1 at the bottom, none in both
    assert len(names) == 3, names
    assert page.evaluate("() => window.__pwned === undefined") and page.locator("img").count() == 0
    assert page.pw_log.problems() == [], page.pw_log.problems()
