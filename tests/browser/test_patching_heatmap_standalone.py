"""PatchingHeatmap saved with save_html, opened from file:// with the network blocked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import canvas_digest, export_png, wait_painted

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=\"window.__pwned=1\">"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import prisma_widgets as pw
    from prisma_widgets import zoo
    from prisma_widgets.widgets.patching_heatmap import PatchingHeatmap

    model = pw.load("mouse-vit")
    images, _ = zoo.shapes(2, seed=1)
    labels = [HOSTILE] + list(zoo.SHAPE_CLASSES[1:])
    w = PatchingHeatmap(model, images[0], images[1], labels=labels, title=HOSTILE)
    w.selected = {"layer": 0, "position": 0}
    return w.save_html(tmp_path_factory.mktemp("patching") / "patching.html")


def _cell_point(page, row: int, col: int) -> tuple[float, float]:
    heat = page.locator("canvas.pw-ph-heat")
    x0, y0, cw, ch, gap, n_prefix, _, _ = json.loads(heat.get_attribute("data-layout"))
    box = heat.bounding_box()
    x = x0 + col * cw + (gap if col >= n_prefix else 0) + cw / 2
    return box["x"] + x, box["y"] + y0 + (row + 0.5) * ch


def test_renders_offline_and_a_cell_click_fills_the_panel(saved, offline_page, artifacts: Path):
    page = offline_page
    page.goto(saved.as_uri())
    wait_painted(page)
    root = page.locator(".pw-root")
    assert json.loads(root.get_attribute("data-selected")) == {"layer": 0, "position": 0}
    # prefix tokens are apart: the CLS column, a gap, then 64 patch columns; one map per layer
    assert page.locator("canvas.pw-ph-map").count() == 4
    heat = page.locator("canvas.pw-ph-heat")
    before = canvas_digest(heat)

    # click the cell (layer 2, token r3c4 = 1 + 3 * 8 + 4): selection and panel follow
    page.mouse.click(*_cell_point(page, 2, 29))
    page.wait_for_function("() => JSON.parse(document.querySelector('.pw-root').dataset.selected).position === 29")
    assert json.loads(root.get_attribute("data-selected")) == {"layer": 2, "position": 29}
    assert root.get_attribute("data-cell-filled") == "1"
    assert page.locator(".pw-ph-cell-title").text_content() == "layer 2 · r3c4"
    assert page.locator(".pw-ph-effect").text_content().startswith("effect ")
    patched = page.locator(".pw-ph-patched tbody tr")
    assert patched.count() == 5
    assert canvas_digest(heat) != before  # the outline moved
    for table in page.locator("table.pw-ph-table").all():
        assert table.locator("tbody tr").count() == 5

    # click a patch on the layer-1 map
    m = page.locator("canvas.pw-ph-map[data-layer='1']")
    box = m.bounding_box()
    page.mouse.click(box["x"] + 2, box["y"] + 2)  # top-left patch r0c0 = token 1
    page.wait_for_function("() => JSON.parse(document.querySelector('.pw-root').dataset.selected).layer === 1")
    assert json.loads(root.get_attribute("data-selected")) == {"layer": 1, "position": 1}
    assert page.locator(".pw-ph-cell-title").text_content() == "layer 1 · r0c0"

    # keyboard: right arrow moves along the row
    heat.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => JSON.parse(document.querySelector('.pw-root').dataset.selected).position === 2")

    # colour range and colour map are client-side: the heatmap redraws
    d = canvas_digest(heat)
    page.locator("label:has-text('colour range') select").select_option("unit")
    page.wait_for_function("() => Number(document.querySelector('.pw-root').dataset.paints) > 3")
    page.wait_for_timeout(100)
    assert canvas_digest(heat) != d

    # kernel-only controls are disabled and say so
    assert page.locator("button.pw-ph-run").is_disabled()
    assert page.locator("label:has-text('site') select").is_disabled()
    assert page.get_by_role("button", name="attribution").is_disabled()
    assert "no kernel" in page.locator(".pw-ph-note").text_content()
    assert "kernel" in page.locator("button.pw-ph-run").get_attribute("title")
    page.screenshot(path=str(artifacts / "patching_heatmap_standalone.png"), full_page=True)

    # user text is text: the hostile label and title are shown, never parsed
    assert page.locator(".pw-title").text_content() == HOSTILE
    assert page.evaluate("() => window.__pwned === undefined") and page.locator("img").count() == 0
    log = page.pw_log
    assert log.problems() == [], log.problems()
    assert all(u.startswith(("file:", "data:", "blob:")) for u in log.requests), log.requests


def test_png_export(saved, new_page, artifacts: Path):
    page = new_page(color_scheme="dark")
    page.goto(saved.as_uri())
    wait_painted(page)
    assert page.eval_on_selector(".pw-root", "r => r.classList.contains('pw-dark')")
    img, box = export_png(page, artifacts / "patching_heatmap_export.png")
    hb = page.locator("canvas.pw-ph-heat").bounding_box()
    y0, x0 = int(hb["y"] - box["y"]), int(hb["x"] - box["x"])
    assert img[y0 + 20 : y0 + int(hb["height"]) - 30, x0 + 52 : x0 + int(hb["width"]) - 8].std() > 5
    assert page.pw_log.problems() == []
