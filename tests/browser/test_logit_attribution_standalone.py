"""LogitAttribution saved with save_html, opened from file:// with the network blocked; and a page of linked
widgets (pw.save_html) whose links work with no kernel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import prisma_widgets as pw
from prisma_widgets.analysis import direct_logit_attribution

from .conftest import canvas_digest, export_png, wait_painted

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=\"window.__pwned=1\">"


@pytest.fixture(scope="module")
def mouse():
    return pw.load("mouse-vit")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, mouse) -> Path:
    scene = pw.zoo.scenes(1, seed=2).images[0]
    dla = direct_logit_attribution(mouse, [scene], by_position=True, position_classes=[0, 1, 4])
    dla.class_names[2] = HOSTILE  # a user's label, shown as text
    w = pw.LogitAttribution.from_arrays(dla, mouse.display_images([scene])[0],
                                        title="</script><script>window.__pwned=2</script>")
    return w.save_html(tmp_path_factory.mktemp("la") / "dla.html")


def _cells(page) -> dict[str, list[float]]:
    return {c[0]: c[1:] for c in json.loads(page.eval_on_selector("canvas.pw-la-heatmap", "c => c.dataset.cells"))}


def _click_cell(page, label: str, root: str = ".pw-logit-attribution") -> None:
    canvas = page.locator(f"{root} canvas.pw-la-heatmap")
    x, y, w, h = {c[0]: c[1:] for c in json.loads(canvas.evaluate("c => c.dataset.cells"))}[label]
    canvas.click(position={"x": x + w / 2, "y": y + h / 2})


def test_renders_offline_hover_click_and_target(saved: Path, offline_page, artifacts: Path):
    page = offline_page
    page.goto(saved.as_uri())
    wait_painted(page)
    heat = page.locator("canvas.pw-la-heatmap")
    assert heat.bounding_box()["width"] > 150
    assert "= sum of the cells" in page.locator(".pw-la-heat-title").text_content()
    # hover a cell: its value in logits, as text
    x, y, w, h = _cells(page)["L3 MLP"]
    box = heat.bounding_box()
    page.mouse.move(box["x"] + x + w / 2, box["y"] + y + h / 2)
    assert page.locator(".pw-la-status").text_content().startswith("L3 MLP → ")
    assert "logits" in page.locator(".pw-la-status").text_content()
    # click a head: the selection and both maps follow
    source = page.locator("canvas.pw-la-source")
    before = canvas_digest(source)
    _click_cell(page, "L2H2")
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.selected === 'L2H2'")
    assert page.locator(".pw-la-detail-title").text_content().startswith("L2H2 → ")
    assert canvas_digest(source) != before
    assert page.locator("canvas.pw-la-attention").is_visible()
    # the MLP: no attention map
    _click_cell(page, "L1 MLP")
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.part === 'mlp'")
    assert not page.locator("canvas.pw-la-attention").is_visible()
    # change the target and subtract a class: no kernel needed for the heatmap
    d0 = canvas_digest(heat)
    page.locator("select.pw-la-target").select_option("1")
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.target === '1'")
    assert canvas_digest(heat) != d0
    page.locator("select.pw-la-versus").select_option("0")
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.versus === '0'")
    assert "−" in page.locator(".pw-la-heat-title").text_content()
    # a class without maps in this saved page says so instead of drawing nothing
    page.locator("select.pw-la-versus").select_option("-1")
    page.locator("select.pw-la-target").select_option("3")
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.target === '3'")
    # the largest contributions list selects too
    first = page.locator(".pw-la-top-row").first
    label = first.get_attribute("data-label")
    first.click()
    page.wait_for_function("(l) => document.querySelector('.pw-root').dataset.selected === l", arg=label)
    page.locator("label:has-text('colour range') select").select_option("heads")
    page.screenshot(path=str(artifacts / "logit_attribution_standalone.png"), full_page=True)
    log = page.pw_log
    assert log.problems() == [], log.problems()
    assert all(u.startswith(("file:", "data:", "blob:")) for u in log.requests), log.requests
    assert page.locator(".pw-root [id]").count() == 0


def test_hostile_strings_execute_nothing(saved: Path, offline_page):
    page = offline_page
    page.goto(saved.as_uri())
    wait_painted(page)
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.__pwned === undefined")
    assert page.locator("img").count() == 0
    assert page.locator(".pw-title").text_content() == "</script><script>window.__pwned=2</script>"
    options = page.locator("select.pw-la-target option").all_text_contents()
    assert any(o.startswith(HOSTILE) for o in options)
    assert page.pw_log.problems() == []


def test_png_export_has_the_colour_bar(saved: Path, offline_page, artifacts: Path):
    page = offline_page
    page.goto(saved.as_uri())
    wait_painted(page)
    img, box = export_png(page, artifacts / "logit_attribution_export.png")
    cb = page.locator("canvas.pw-la-colorbar").bounding_box()
    y = int(cb["y"] - box["y"] + 8)
    colours = [tuple(img[y, int(cb["x"] - box["x"] + f * cb["width"])]) for f in (0.1, 0.5, 0.9)]
    assert len(set(colours)) == 3, colours  # blue, white, red: a diverging bar centred at 0
    assert colours[1][0] > 200 and colours[1][1] > 200 and colours[1][2] > 200
    assert page.pw_log.problems() == []


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_theme_follows_prefers_color_scheme(saved: Path, new_page, scheme: str):
    page = new_page(color_scheme=scheme)
    page.goto(saved.as_uri())
    wait_painted(page)
    assert page.eval_on_selector(".pw-root", "r => r.classList.contains('pw-dark')") == (scheme == "dark")
    assert page.pw_log.problems() == []


# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def linked_page(tmp_path_factory: pytest.TempPathFactory, mouse) -> Path:
    scene = pw.zoo.scenes(1, seed=2).images[0]
    dla = pw.LogitAttribution(mouse, scene)
    grid = pw.AttentionGrid(mouse, scene, thumb_size=48)
    images, _ = pw.zoo.shapes(2, seed=1)
    heads = pw.PatchingHeatmap(mouse, images[0], images[1], site="z", by="head")
    links = pw.link(dla, grid, heads)
    dla.layer, dla.head = 0, 0
    path = pw.save_html([dla, grid, heads], tmp_path_factory.mktemp("page") / "circuit.html", title="circuit")
    for link in links:
        link.unlink()
    return path


def test_linked_page_follows_clicks_with_no_kernel(linked_page: Path, offline_page, artifacts: Path):
    page = offline_page
    page.goto(linked_page.as_uri())
    page.wait_for_function("() => document.querySelectorAll('.pw-root[data-paints]').length === 3", timeout=20_000)
    la = ".pw-logit-attribution"
    ag = page.locator(".pw-attention-grid")
    assert ag.evaluate("r => [r.dataset.layer, r.dataset.head]") == ["0", "0"]
    _click_cell(page, "L3H1")
    page.wait_for_function("() => document.querySelector('.pw-attention-grid').dataset.head === '1'")
    assert ag.evaluate("r => r.dataset.layer") == "3"
    assert page.locator(".pw-attention-grid .pw-ag-detail-title").text_content() == "L3 H1: query × key"
    # the patching heatmap (heads mode) selected the same head
    panel = page.locator(".pw-patching")
    page.wait_for_function("() => document.querySelector('.pw-patching').dataset.selected === JSON.stringify({layer: 3, head: 1})")
    # and back: a thumbnail in the grid moves the attribution
    grid = page.locator("canvas.pw-ag-grid")
    cells = json.loads(grid.evaluate("c => c.dataset.cells"))
    _, _, x, y, w, h = next(c for c in cells if c[0] == 1 and c[1] == 2)
    grid.click(position={"x": x + w / 2, "y": y + h / 2})
    page.wait_for_function(f"() => document.querySelector('{la}').dataset.selected === 'L1H2'")
    # an MLP click moves nobody
    _click_cell(page, "L2 MLP")
    page.wait_for_function(f"() => document.querySelector('{la}').dataset.part === 'mlp'")
    page.wait_for_timeout(100)
    assert ag.evaluate("r => [r.dataset.layer, r.dataset.head]") == ["1", "2"]
    page.screenshot(path=str(artifacts / "linked_page.png"), full_page=True)
    assert panel.count() == 1 and page.locator("[id]").count() == 0
    log = page.pw_log
    assert log.problems() == [], log.problems()
    assert all(u.startswith(("file:", "data:", "blob:")) for u in log.requests), log.requests
