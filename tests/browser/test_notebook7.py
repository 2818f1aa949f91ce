"""The widgets in a real Jupyter Notebook 7 (``jupyter notebook``): they paint, clicks reach the kernel,
kernel changes reach the view. The AttentionGrid and the LogitLens on the bundled mouse ViT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import canvas_digest, wait_until, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.jupyter, pytest.mark.slow]

NOTEBOOK7_OWN_ERROR = "Cannot read properties of undefined (reading 'schema')"
CELLS = [
    (
        "import prisma_widgets as pw\n"
        "model = pw.load('mouse-vit')\n"
        "images = list(pw.zoo.scenes(2, seed=1).images)\n"
        "grid = pw.AttentionGrid(model, images, title='grid in notebook 7')\n"
        "grid"
    ),
    "lens = pw.LogitLens(model, images[0], title='lens in notebook 7')\nlens",
]


def test_notebook7_paints_and_syncs_both_ways(notebook_server, notebook7, page, artifacts: Path):
    nb = notebook7
    write_notebook(notebook_server.root / "hosts.ipynb", CELLS)
    nb.open(page, "hosts.ipynb")
    assert page.evaluate("document.body.dataset.notebook") == "notebooks"  # Notebook 7's page, not JupyterLab's
    nb.run_all(page)
    nb.wait_for_widgets(page, 2, artifacts, "notebook7")
    roots = page.locator(".jp-OutputArea-output .pw-root")
    grid_root, lens_root = roots.nth(0), roots.nth(1)
    assert grid_root.locator(".pw-title").text_content() == "grid in notebook 7"
    assert lens_root.locator(".pw-title").text_content() == "lens in notebook 7"
    grid = grid_root.locator("canvas.pw-ag-grid")
    grid.scroll_into_view_if_needed()
    assert canvas_digest(grid)[1] > 0  # the thumbnails are drawn, not a blank canvas
    assert canvas_digest(lens_root.locator("canvas.pw-ll-map"))[1] > 0
    page.screenshot(path=str(artifacts / "notebook7.png"), full_page=True)

    kc = nb.kernel_client("hosts.ipynb")
    assert nb.evaluate(kc, "(grid.layer, grid.head)") == "(0, 0)"

    # a click on the thumbnail of layer 2, head 1 reaches the kernel
    cells = json.loads(grid.evaluate("c => c.dataset.cells"))
    _, _, x, y, w, h = next(c for c in cells if c[0] == 2 and c[1] == 1)
    grid.click(position={"x": x + w / 2, "y": y + h / 2})
    wait_until(lambda: nb.evaluate(kc, "(grid.layer, grid.head)") == "(2, 1)", what="layer 2 head 1 in the kernel")

    # a trait set in the kernel moves the view
    before = canvas_digest(grid)
    nb.execute(kc, "grid.layer = 3")
    page.wait_for_function("(el) => el.dataset.layer === '3'", arg=grid_root.element_handle(), timeout=30_000)
    assert grid_root.locator(".pw-ag-detail-title").text_content() == "L3 H1: query × key"
    assert canvas_digest(grid) != before

    # the lens: a click on a patch of its map sets `patch` in the kernel, and the kernel's layer reaches the view
    mp = lens_root.locator("canvas.pw-ll-map")
    mp.scroll_into_view_if_needed()
    _, _, mw, mh, rows, cols, n_prefix = json.loads(mp.get_attribute("data-rect"))
    mp.click(position={"x": (5 + 0.5) * mw / cols, "y": (3 + 0.5) * mh / rows})
    want = n_prefix + 3 * cols + 5
    wait_until(lambda: nb.evaluate(kc, "lens.patch") == str(want), what=f"lens.patch == {want} in the kernel")
    nb.execute(kc, "lens.layer = 1")
    page.wait_for_function("(el) => el.dataset.layer === '1'", arg=lens_root.element_handle(), timeout=30_000)
    lens_root.screenshot(path=str(artifacts / "notebook7_lens.png"))
    # Notebook 7.6's own bundle (notebook_core) throws this once when a notebook opens, with no widget in it too
    errors = [e for e in page.pw_log.page_errors if e != NOTEBOOK7_OWN_ERROR]
    assert errors == [], errors
