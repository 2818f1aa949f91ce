"""A clip's PatchingHeatmap saved with save_html, opened offline: the position strip grouped per token frame,
per-frame maps under a frame strip (clicks select the shown frame's tokens), and whole-frame / tube results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import canvas_digest, export_png, wait_painted

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def pair():
    import prisma_widgets as pw
    from prisma_widgets import zoo

    clip = zoo.moving_shapes(1, seed=6).videos[0]
    return pw.load("mouse-video"), clip, clip[::-1].copy()


def _save(pair, tmp: Path, name: str, **kw) -> Path:
    from prisma_widgets.widgets.patching_heatmap import PatchingHeatmap

    model, clean, corrupted = pair
    return PatchingHeatmap(model, clean, corrupted, **kw).save_html(tmp / name)


def _hover(page, row: int, col: int) -> str:
    heat = page.locator("canvas.pw-ph-heat")
    x0, y0, cw, ch, gap, n_prefix, _, _ = json.loads(heat.get_attribute("data-layout"))
    box = heat.bounding_box()
    page.mouse.move(box["x"] + x0 + col * cw + (gap if col >= n_prefix else 0) + cw / 2, box["y"] + y0 + (row + 0.5) * ch)
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.hover !== ''")
    return page.locator(".pw-root").get_attribute("data-hover")


def test_positions_by_frame_with_a_frame_strip_offline(pair, tmp_path: Path, offline_page, artifacts: Path):
    page = offline_page
    page.goto(_save(pair, tmp_path, "clip_position.html", frame=1).as_uri())
    wait_painted(page)
    root = page.locator(".pw-root")
    assert root.get_attribute("data-frame") == "1"
    assert page.locator(".pw-frame-row").is_visible()
    assert "frame 2/4 (t1)" in page.locator(".pw-frame-label").text_content()
    assert page.locator("canvas.pw-ph-map").count() == 4
    # the strip holds every token of the clip: column 16 * 2 + 5 is t2 r1c1
    assert _hover(page, 0, 37).startswith("L0 · t2 r1c1 · effect ")
    # the clip's by choices are offered (a saved page cannot run them: the kernel is gone)
    by = page.locator("label:has-text('by') select").first
    hidden = by.evaluate("s => Array.from(s.options).filter(o => o.hidden).map(o => o.value)")
    assert hidden == []
    m = page.locator("canvas.pw-ph-map[data-layer='2']")
    digests = {1: canvas_digest(m)}
    for f in (0, 3):
        page.locator("input.pw-frame-slider").fill(str(f))
        page.wait_for_function(f"() => document.querySelector('.pw-root').dataset.frame === '{f}'")
        digests[f] = canvas_digest(m)
    assert len(set(digests.values())) == 3, digests
    # a click on frame t3's map selects that frame's token: t3 r0c0 is token 48
    box = m.bounding_box()
    page.mouse.click(box["x"] + 2, box["y"] + 2)
    page.wait_for_function("() => JSON.parse(document.querySelector('.pw-root').dataset.selected).position === 48")
    assert json.loads(root.get_attribute("data-selected")) == {"layer": 2, "position": 48}
    assert page.locator(".pw-ph-cell-title").text_content() == "layer 2 · t3 r0c0"
    img, _ = export_png(page, artifacts / "patching_clip_export.png")
    assert img.std() > 10
    page.screenshot(path=str(artifacts / "patching_clip_frames.png"), full_page=True)
    assert page.pw_log.problems() == [], page.pw_log.problems()
    assert all(u.startswith(("file:", "data:", "blob:")) for u in page.pw_log.requests), page.pw_log.requests


def test_whole_frames_and_tubes_offline(pair, tmp_path: Path, offline_page, artifacts: Path):
    page = offline_page
    page.goto(_save(pair, tmp_path, "clip_frame.html", by="frame").as_uri())
    wait_painted(page)
    root = page.locator(".pw-root")
    assert root.get_attribute("data-by") == "frame"
    assert json.loads(page.locator("canvas.pw-ph-heat").get_attribute("data-layout"))[7] == 4  # one column per frame
    assert _hover(page, 1, 2).startswith("L1 · t2 · effect ")
    assert page.locator("canvas.pw-ph-map").count() == 0 and not page.locator(".pw-frame-row").is_visible()

    page.goto(_save(pair, tmp_path, "clip_tube.html", by="tube").as_uri())
    wait_painted(page)
    assert root.get_attribute("data-by") == "tube"
    assert _hover(page, 0, 5).startswith("L0 · r1c1 · effect ")
    assert page.locator("canvas.pw-ph-map").count() == 4 and page.locator(".pw-frame-row").is_visible()
    m = page.locator("canvas.pw-ph-map[data-layer='3']")
    box = m.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + 2)  # patch r0c3: tube 3
    page.wait_for_function("() => JSON.parse(document.querySelector('.pw-root').dataset.selected).tube === 3")
    assert page.locator(".pw-ph-cell-title").text_content() == "layer 3 · tube r0c3"
    page.screenshot(path=str(artifacts / "patching_clip_tubes.png"), full_page=True)
    assert page.pw_log.problems() == [], page.pw_log.problems()
