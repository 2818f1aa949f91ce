"""AttentionGrid's per-head summaries in a saved page: the table, the bars, sorting, clicking a head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

import prisma_widgets as pw

from .conftest import canvas_digest, wait_painted

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    model = pw.load("mouse-vit")
    scenes = pw.zoo.scenes(3, seed=1)
    grid = pw.AttentionGrid(model, list(scenes.images), thumb_size=56)
    return grid.save_html(tmp_path_factory.mktemp("summary") / "grid.html"), grid


def _cells(page) -> list[list[float]]:
    return json.loads(page.eval_on_selector("canvas.pw-ag-grid", "c => c.dataset.cells"))


def test_summary_table_bars_and_sort(saved, offline_page, artifacts: Path):
    path, widget = saved
    page = offline_page
    page.goto(path.as_uri())
    wait_painted(page)
    table = page.locator("canvas.pw-ag-summary")
    assert not table.is_visible()  # summary "none": hidden
    plain = _cells(page)
    page.locator("label:has-text('head summary') select").select_option("distance")
    page.wait_for_function("() => document.querySelector('canvas.pw-ag-summary').offsetParent !== null")
    # the summary adds a bar under each thumbnail: wait for that geometry before hovering the table
    page.wait_for_function(f"() => document.querySelector('canvas.pw-ag-grid').dataset.cells !== {json.dumps(json.dumps(plain))}")
    expect(page.locator(".pw-ag-summary-title")).to_contain_text("mean attention distance")
    # hover the table: a head's value, as the widget computed it
    box = table.bounding_box()
    page.mouse.move(box["x"] + 26 + 3, box["y"] + 14 + 3)  # the first cell: L0 H0
    expected = float(widget.head_summary()["distance"][0, 0])
    expect(page.locator(".pw-ag-summary-status")).to_contain_text("L0 H0: ")
    text = page.locator(".pw-ag-summary-status").text_content()
    assert text.startswith("L0 H0: ") and abs(float(text.split(": ")[1]) - expected) < 0.01 * expected
    # sort: each layer's thumbnails in increasing distance
    page.locator("label:has-text('sort heads') input").check()
    distance = widget.head_summary()["distance"]
    expected = {layer: [int(h) for h in np.argsort(distance[layer], kind="stable")] for layer in range(4)}
    # the grid repaints when it gets there: wait for each layer's heads, left to right, in increasing distance
    page.wait_for_function(
        """expected => {
            const cells = JSON.parse(document.querySelector('canvas.pw-ag-grid').dataset.cells);
            return Object.entries(expected).every(([layer, heads]) => {
                const row = cells.filter(c => c[0] === Number(layer) && c[1] >= 0).sort((a, b) => a[2] - b[2]);
                return JSON.stringify(row.map(c => c[1])) === JSON.stringify(heads);
            });
        }""",
        arg=expected,
    )
    for layer in range(4):
        row = sorted((c for c in _cells(page) if c[0] == layer and c[1] >= 0), key=lambda c: c[2])
        shown = [distance[layer, int(c[1])] for c in row]
        assert shown == sorted(shown), (layer, shown)
    # clicking a table cell selects that head
    page.wait_for_timeout(100)  # let the sorted grid's repaint land before taking its digest
    grid_before = canvas_digest(page.locator("canvas.pw-ag-grid"))
    page.mouse.click(box["x"] + 26 + 3, box["y"] + 14 + 3 + 2 * (box["width"] - 26) / 4)  # L2 H0
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.layer === '2' && document.querySelector('.pw-root').dataset.head === '0'")
    assert canvas_digest(page.locator("canvas.pw-ag-grid")) != grid_before
    page.locator("label:has-text('head summary') select").select_option("entropy")
    expect(page.locator(".pw-ag-summary-title")).to_contain_text("entropy")
    page.screenshot(path=str(artifacts / "attention_grid_summary.png"), full_page=True)
    assert page.pw_log.problems() == [], page.pw_log.problems()
