"""LogitLens saved with save_html, opened from file:// with the network blocked."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from prisma_widgets.widgets.logit_lens import LogitLens

from .conftest import canvas_digest, export_png, wait_painted

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=\"window.__pwned=1\">"


def _clip():
    import open_clip

    import prisma_widgets as pw

    torch.manual_seed(0)
    clip = open_clip.CLIP(
        embed_dim=32,
        vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2, head_width=16),
        text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1),
    )
    return pw.HookedViT(clip)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from conftest import build
    from skimage import data

    out = tmp_path_factory.mktemp("logit_lens")
    model = build("vit_tiny_patch16_224")
    labels = list(model.labels)
    labels = [HOSTILE if i % 7 == 0 else name for i, name in enumerate(labels)]
    timm = LogitLens(model, data.chelsea(), labels=labels, title=HOSTILE, show_labels=True, layer=0)
    clip = LogitLens(_clip(), data.chelsea(), prompts=["a cat", "a dog", HOSTILE])
    return {"timm": timm.save_html(out / "timm.html"), "clip": clip.save_html(out / "clip.html")}


def test_renders_offline_slider_and_modes_change_the_map(saved, offline_page, artifacts: Path):
    page = offline_page
    page.goto(saved["timm"].as_uri())
    wait_painted(page)
    root = page.locator(".pw-root")
    mp = page.locator("canvas.pw-ll-map")
    assert mp.bounding_box()["width"] > 100
    assert root.get_attribute("data-layer") == "0"

    # the layer slider: the map's pixels change
    before = canvas_digest(mp)
    page.locator("input.pw-ll-slider").fill("1")
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.layer === '1'")
    assert canvas_digest(mp) != before, "moving the layer slider did not change the map"
    assert "layer 1" in page.locator(".pw-ll-layer-label").text_content()

    # hover a patch: the top-k table and the chart follow it
    box = mp.bounding_box()
    chart0 = canvas_digest(page.locator("canvas.pw-ll-chart"))
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.9)
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.patch === '16'")
    assert page.locator(".pw-ll-detail-title").text_content().startswith("r3c3 at layer 1")
    assert page.locator(".pw-ll-table tbody tr").count() == 5
    assert canvas_digest(page.locator("canvas.pw-ll-chart")) != chart0

    # click a class in the legend: the map shows that class's probability, with a colour bar
    d0 = canvas_digest(mp)
    cb0 = canvas_digest(page.locator("canvas.pw-ll-colorbar"))
    page.locator("button.pw-ll-legend-item").first.click()
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.mode === 'class_prob'")
    assert canvas_digest(mp) != d0 and canvas_digest(page.locator("canvas.pw-ll-colorbar")) != cb0
    assert page.locator("button.pw-ll-legend-item[aria-pressed=true]").count() == 1
    # at the last layer KL and rank are zero everywhere; look at the first
    page.locator("input.pw-ll-slider").fill("0")
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.layer === '0'")
    for mode in ("entropy", "kl", "rank", "top1"):
        d = canvas_digest(mp)
        page.locator("label:has-text('show') select").select_option(mode)
        page.wait_for_function(f"() => document.querySelector('.pw-root').dataset.mode === '{mode}'")
        assert canvas_digest(mp) != d, mode

    # play animates through the layers
    page.get_by_role("button", name="▶ play").click()
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.layer === '1'", timeout=5_000)
    page.get_by_role("button", name="❚❚ pause").click()
    page.screenshot(path=str(artifacts / "logit_lens_standalone.png"), full_page=True)

    # prefix tokens live apart from the grid
    assert page.locator(".pw-ll-prefix-button").all_text_contents() == ["CLS"]
    log = page.pw_log
    assert log.problems() == [], log.problems()
    assert all(u.startswith(("file:", "data:", "blob:")) for u in log.requests), log.requests
    assert page.evaluate("() => window.__pwned === undefined") and page.locator("img").count() == 0
    assert page.locator(".pw-title").text_content() == HOSTILE


def test_clip_prompts_are_read_only_offline(saved, offline_page, artifacts: Path):
    page = offline_page
    page.goto(saved["clip"].as_uri())
    wait_painted(page)
    inputs = page.locator("input.pw-ll-prompt-input")
    assert inputs.count() == 3
    assert [inputs.nth(i).input_value() for i in range(3)] == ["a cat", "a dog", HOSTILE]
    assert all(inputs.nth(i).get_attribute("readonly") is not None for i in range(3))
    assert "read-only" in page.locator(".pw-ll-prompt-note").text_content()
    assert page.locator(".pw-ll-add-prompt").is_hidden()
    page.screenshot(path=str(artifacts / "logit_lens_clip_standalone.png"), full_page=True)
    assert page.pw_log.problems() == [] and page.locator("img").count() == 0


def test_png_export_and_dark_theme(saved, new_page, artifacts: Path):
    page = new_page(color_scheme="dark")
    page.goto(saved["timm"].as_uri())
    wait_painted(page)
    assert page.eval_on_selector(".pw-root", "r => r.classList.contains('pw-dark')")
    img, box = export_png(page, artifacts / "logit_lens_export.png")
    mp = page.locator("canvas.pw-ll-map").bounding_box()
    y0, x0 = int(mp["y"] - box["y"]), int(mp["x"] - box["x"])
    patch = img[y0 + 5 : y0 + int(mp["height"]) - 5, x0 + 5 : x0 + int(mp["width"]) - 5]
    assert patch.std() > 10  # the map is in the export, not background
    # what is HTML on screen is in the export too: the legend's swatches and names, the top-k table
    for selector in (".pw-ll-legend", "table.pw-ll-table"):
        r = page.locator(selector).bounding_box()
        part = img[int(r["y"] - box["y"]) : int(r["y"] - box["y"] + r["height"]), int(r["x"] - box["x"]) : int(r["x"] - box["x"] + r["width"])]
        assert part.std() > 10, selector
    assert page.pw_log.problems() == []
