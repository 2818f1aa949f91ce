"""AttentionGrid in a real JupyterLab: clicks reach the kernel, kernel changes reach the view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import canvas_digest, wait_until, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.jupyter, pytest.mark.slow]

CELLS = [
    "import prisma_widgets as pw\n"
    "from skimage import data\n"
    "model = pw.load('vit_tiny_patch16_224', pretrained=False, img_size=64, depth=2)\n"
    "w = pw.AttentionGrid(model, [data.chelsea(), data.coffee()], title='grid in lab')\n"
    "w",
    "w2 = pw.AttentionGrid(model, data.astronaut(), layers=[1], thumb_size=48)\n"
    "w2",
]


def test_lab_click_sets_head_and_python_sets_layer(jupyter_server, lab, page, artifacts: Path):
    write_notebook(jupyter_server.root / "grid.ipynb", CELLS)
    lab.open(page, "grid.ipynb")
    lab.run_all(page)
    roots = page.locator(".jp-OutputArea-output .pw-root")
    lab.wait_for_widgets(page, 2, artifacts, "attention_grid_lab")
    # two widgets in one notebook do not collide: each has its own root and canvases, no ids
    assert roots.count() == 2
    assert page.locator(".jp-OutputArea-output .pw-root [id]").count() == 0
    first = roots.nth(0)
    assert first.locator(".pw-title").text_content() == "grid in lab"
    page.screenshot(path=str(artifacts / "attention_grid_lab.png"), full_page=True)

    kc = lab.kernel_client("grid.ipynb")
    assert lab.evaluate(kc, "(w.layer, w.head)") == "(0, 0)"

    # a click on the thumbnail of layer 1, head 2 sets head (and layer) in the kernel
    grid = first.locator("canvas.pw-ag-grid")
    grid.scroll_into_view_if_needed()
    cells = json.loads(grid.evaluate("c => c.dataset.cells"))
    _, _, x, y, w, h = next(c for c in cells if c[0] == 1 and c[1] == 2)
    grid.click(position={"x": x + w / 2, "y": y + h / 2})
    wait_until(lambda: lab.evaluate(kc, "(w.layer, w.head)") == "(1, 2)", what="head=2 in the kernel")

    # setting layer from Python moves the view: the selected head's outline and the detail view follow
    before = canvas_digest(grid)
    detail_before = canvas_digest(first.locator("canvas.pw-ag-matrix"))
    lab.execute(kc, "w.layer = 0")
    page.wait_for_function(
        "(el) => el.dataset.layer === '0'", arg=first.element_handle(), timeout=60_000
    )
    assert first.locator(".pw-ag-detail-title").text_content() == "L0 H2: query × key"
    assert canvas_digest(grid) != before
    assert canvas_digest(first.locator("canvas.pw-ag-matrix")) != detail_before
    # the query and the direction too
    lab.execute(kc, "w.query = 7; w.direction = 'column'")
    page.wait_for_function("(el) => el.dataset.query === '7'", arg=first.element_handle(), timeout=60_000)
    assert first.get_by_role("button", name="queries → key").get_attribute("aria-pressed") == "true"
    # and the second widget did not move
    assert roots.nth(1).evaluate("r => r.dataset.layer") == "1"
    first.screenshot(path=str(artifacts / "attention_grid_lab_after.png"))
    # a click on the query image locks a query, which Python sees
    q = first.locator("canvas.pw-ag-query")
    qb = q.bounding_box()
    q.click(position={"x": qb["width"] * 0.99, "y": qb["height"] * 0.01})
    wait_until(lambda: lab.evaluate(kc, "w.query") == "4", what="query=4 (top-right patch) in the kernel")
    errors = [e for e in page.pw_log.page_errors]
    assert errors == [], errors
