"""AttentionGrid saved with save_html, opened from file:// with the network blocked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from prisma_widgets.widgets.attention_grid import AttentionGrid

from .conftest import canvas_digest, export_png, wait_painted

pytestmark = pytest.mark.browser

HOSTILE_TITLE = "</script><script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">"
HOSTILE_LABEL = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A grid from a real (random-weight) timm model on two real photos, with hostile user strings."""
    from conftest import build
    from skimage import data

    model = build("vit_tiny_patch16_224")
    images = [data.chelsea(), data.coffee()]
    with torch.no_grad():
        _, cache = model.run_with_cache(images, names_filter=lambda n: n.endswith("hook_pattern"))
    patterns = torch.stack([cache[f"blocks.{i}.attn.hook_pattern"] for i in range(model.cfg.n_layers)], 1)
    labels = model.token_labels()
    labels[0] = "CLS</script><script>window.__pwned=3</script>"
    labels[5] = HOSTILE_LABEL
    grid = AttentionGrid.from_patterns(
        patterns,
        model.display_images(images),
        grid=model.cfg.grid,
        n_prefix_tokens=model.cfg.n_prefix_tokens,
        token_labels=labels,
        rollout=True,
        image_labels=["cat", HOSTILE_LABEL],
        title=HOSTILE_TITLE,
        thumb_size=72,
    )
    out = tmp_path_factory.mktemp("standalone")
    path = grid.save_html(out / "attention_grid.html")
    (out / "blog.html").write_text(
        "<!DOCTYPE html><html><body><h1>A blog post</h1>"
        '<iframe src="attention_grid.html" width="1300" height="800" sandbox="allow-scripts allow-downloads"></iframe>'
        "</body></html>"
    )
    return path


def _paints(page) -> int:
    return int(page.eval_on_selector(".pw-root", "r => Number(r.dataset.paints)"))


def _cells(page) -> list[list[float]]:
    return json.loads(page.eval_on_selector("canvas.pw-ag-grid", "c => c.dataset.cells"))


def test_standalone_renders_offline_and_hover_repaints(saved: Path, offline_page, artifacts: Path):
    page = offline_page
    page.goto(saved.as_uri())
    wait_painted(page)
    grid = page.locator("canvas.pw-ag-grid")
    query = page.locator("canvas.pw-ag-query")
    assert grid.bounding_box()["width"] > 100

    # hover a patch in the query image: every thumbnail repaints for that query
    before = canvas_digest(grid)
    n0 = _paints(page)
    box = query.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.8)
    page.wait_for_function(f"() => Number(document.querySelector('.pw-root').dataset.paints) > {n0}")
    after = canvas_digest(grid)
    assert after != before, "thumbnails did not change when hovering a new query patch"
    shown = int(page.eval_on_selector(".pw-root", "r => r.dataset.query"))
    assert shown == 1 + 3 * 4 + 3  # CLS + bottom-right patch of the 4x4 grid
    page.screenshot(path=str(artifacts / "attention_grid_standalone_hover.png"), full_page=True)

    # click locks the query: moving elsewhere does not change it, leaving keeps it
    page.mouse.click(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.1)
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.5)
    page.mouse.move(box["x"] - 20, box["y"] - 20)
    assert int(page.eval_on_selector(".pw-root", "r => r.dataset.query")) == 1

    # click a thumbnail: the detail view opens on that head
    cells = _cells(page)
    layer, head, x, y, w, h = next(c for c in cells if c[0] == 1 and c[1] == 2)
    gb = grid.bounding_box()
    page.mouse.click(gb["x"] + x + w / 2, gb["y"] + y + h / 2)
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.head === '2'")
    assert page.locator(".pw-ag-detail-title").text_content() == "L1 H2: query × key"
    assert any(c[1] == -1 for c in cells), "rollout row missing"

    # toolbar: direction, normalisation, log scale, image switch all repaint without errors
    for action in (
        lambda: page.get_by_role("button", name="queries → key").click(),
        lambda: page.locator("label:has-text('colour range') select").select_option("global"),
        lambda: page.locator("label:has-text('scale') select").select_option("log"),
        lambda: page.locator("label:has-text('scale') select").select_option("percentile"),
        lambda: page.locator("label:has-text('image') select").select_option("1"),
    ):
        d0 = canvas_digest(grid)
        action()
        page.wait_for_timeout(50)
        assert canvas_digest(grid) != d0
    # the image switcher changed the photo under the query and in the thumbnails
    assert page.eval_on_selector(".pw-root", "r => r.dataset.imageIndex") == "1"
    q0 = canvas_digest(query)
    page.locator("label:has-text('image') select").select_option("0")
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.imageIndex === '0'")
    assert canvas_digest(query) != q0
    # hover the detail matrix: read-out names both tokens (as text)
    mb = page.locator("canvas.pw-ag-matrix").bounding_box()
    page.mouse.move(mb["x"] + 10, mb["y"] + 10)
    assert "→ key" in page.locator(".pw-ag-detail-status").text_content()
    page.screenshot(path=str(artifacts / "attention_grid_standalone.png"), full_page=True)

    log = page.pw_log
    assert log.problems() == [], log.problems()
    assert all(u.startswith(("file:", "data:", "blob:")) for u in log.requests), log.requests


def test_hostile_strings_execute_nothing(saved: Path, offline_page):
    page = offline_page
    page.goto(saved.as_uri())
    wait_painted(page)
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.__pwned === undefined")
    assert page.pw_log.dialogs == []
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 3  # state, bundle, bootstrap: nothing injected
    assert page.locator(".pw-title").text_content() == HOSTILE_TITLE
    options = page.locator("label:has-text('image') select option").all_text_contents()
    assert options == ["cat", HOSTILE_LABEL]
    assert page.locator(".pw-ag-prefix-button").first.text_content().startswith("CLS</script>")
    assert page.pw_log.problems() == []


def test_png_export_is_the_view_with_colour_bar(saved: Path, offline_page, artifacts: Path):
    page = offline_page
    page.goto(saved.as_uri())
    wait_painted(page)
    img, box = export_png(page, artifacts / "attention_grid_export.png")
    cb = page.locator("canvas.pw-ag-colorbar").bounding_box()
    y = int(cb["y"] - box["y"] + 12)
    xs = [int(cb["x"] - box["x"] + f * cb["width"]) for f in (0.1, 0.5, 0.9)]
    colours = [tuple(img[y, x]) for x in xs]
    assert len(set(colours)) == 3, colours  # a gradient, not background
    assert page.pw_log.problems() == []


def test_works_inside_a_sandboxed_iframe(saved: Path, offline_page, artifacts: Path):
    page = offline_page
    page.goto((saved.parent / "blog.html").as_uri())
    frame = page.frame_locator("iframe")
    frame.locator(".pw-root[data-paints]").wait_for(timeout=15_000)
    q = frame.locator("canvas.pw-ag-query")
    g = frame.locator("canvas.pw-ag-grid")
    d0 = canvas_digest(g)
    box = q.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.3)
    page.wait_for_timeout(100)
    assert canvas_digest(g) != d0
    page.screenshot(path=str(artifacts / "attention_grid_iframe.png"), full_page=True)
    assert page.pw_log.problems() == []


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_theme_follows_prefers_color_scheme(saved: Path, new_page, scheme: str):
    page = new_page(color_scheme=scheme)
    page.goto(saved.as_uri())
    wait_painted(page)
    dark = page.eval_on_selector(".pw-root", "r => r.classList.contains('pw-dark')")
    assert dark == (scheme == "dark")
    assert page.pw_log.problems() == []
