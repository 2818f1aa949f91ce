"""PatchingHeatmap in a real JupyterLab: a click sets `selected` in Python, and a painted corruption + Run
runs a new sweep in the kernel (a new result in Python, progress reported, the heatmap redrawn)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import canvas_digest, wait_until, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.jupyter, pytest.mark.slow]

CELLS = [
    "import prisma_widgets as pw\n"
    "from prisma_widgets import zoo\n"
    "model = pw.load('mouse-vit')\n"
    "images, classes = zoo.shapes(2, seed=1)\n"
    "w = pw.PatchingHeatmap(model, images[0], images[1], layers=[0, 3], title='patching in lab')\n"
    "first = w.result\n"
    "w",
]


def test_lab_click_selects_and_painted_run_recomputes(jupyter_server, lab, page, artifacts: Path):
    write_notebook(jupyter_server.root / "patching.ipynb", CELLS)
    lab.open(page, "patching.ipynb")
    lab.run_all(page)
    lab.wait_for_widgets(page, 1, artifacts, "patching_heatmap_lab")
    root = page.locator(".jp-OutputArea-output .pw-root").first
    assert root.locator(".pw-title").text_content() == "patching in lab"
    kc = lab.kernel_client("patching.ipynb")
    heat = root.locator("canvas.pw-ph-heat")
    heat.scroll_into_view_if_needed()
    assert not root.locator("button.pw-ph-run").is_disabled()  # there is a kernel

    # a click on a heatmap cell reaches Python
    x0, y0, cw, ch, gap, n_prefix, _, _ = json.loads(heat.get_attribute("data-layout"))
    box = heat.bounding_box()
    col = 1 + 2 * 8 + 5  # r2c5
    page.mouse.click(box["x"] + x0 + col * cw + gap + cw / 2, box["y"] + y0 + 1.5 * ch)  # second row: layer 3
    wait_until(lambda: lab.evaluate(kc, "w.selected") == "{'layer': 3, 'position': 22}", what="selected in the kernel")
    page.wait_for_function("(el) => el.dataset.cellFilled === '1'", arg=root.element_handle(), timeout=30_000)
    # and Python's selection reaches the view
    lab.execute(kc, "w.selected = {'layer': 0, 'position': 0}")
    page.wait_for_function(
        "(el) => el.dataset.selected === JSON.stringify({layer: 0, position: 0})", arg=root.element_handle(), timeout=30_000
    )

    # paint the triangle's patches (r1c3, r1c4 by dragging; r2c3, r2c4 by clicking), mask them and Run
    root.get_by_role("button", name="clear").click()
    ed = root.locator("canvas.pw-ph-editor")
    ed.scroll_into_view_if_needed()
    eb = ed.bounding_box()
    cell = eb["width"] / 8
    page.mouse.move(eb["x"] + 3.5 * cell, eb["y"] + 1.5 * cell)
    page.mouse.down()
    page.mouse.move(eb["x"] + 4.5 * cell, eb["y"] + 1.5 * cell, steps=4)
    page.mouse.up()
    for c in (3, 4):
        page.mouse.click(eb["x"] + (c + 0.5) * cell, eb["y"] + 2.5 * cell)
    page.wait_for_function("(el) => el.dataset.painted === '4'", arg=root.element_handle())
    before = canvas_digest(heat)
    root.locator("label:has-text('corrupt by') select").select_option("blur")
    root.get_by_role("button", name="▶ Run").click()
    wait_until(lambda: lab.evaluate(kc, "w.result is not first") == "True", timeout=60,
          what=f"a new sweep in the kernel (status: {lab.evaluate(kc, 'w.status')})")
    assert lab.evaluate(kc, "w.corruption_patches") == "[11, 12, 19, 20]", lab.evaluate(kc, "w.status")
    assert lab.evaluate(kc, "w.corruption_mode") == "'blur'"
    assert lab.evaluate(kc, "w.progress") == "1.0"
    # the new result is the engine's result for that corruption
    lab.execute(
        kc,
        "import numpy as np\n"
        "from prisma_widgets.widgets._base import decode_array\n"
        "clean = decode_array(w.image_pixels)\n"
        "bad = pw.corrupt(clean, [(1, 3), (1, 4), (2, 3), (2, 4)], mode='blur', grid=(8, 8))\n"
        "ref = pw.analysis.patch(model, clean, bad, layers=[0, 3], progress=False)\n"
        "same = bool(np.array_equal(w.values_array(), ref.values.numpy()))",
    )
    assert lab.evaluate(kc, "same") == "True"
    page.wait_for_function(
        "([el, d]) => { const c = el.getContext('2d').getImageData(0, 0, el.width, el.height).data;"
        " let s = 0; for (let i = 0; i < c.length; i += 4) s += c[i] + c[i + 1] + c[i + 2]; return s !== d; }",
        arg=[heat.element_handle(), before[1]],
        timeout=30_000,
    )
    # switching to attribution from the view recomputes in the kernel
    root.get_by_role("button", name="attribution").click()
    wait_until(lambda: lab.evaluate(kc, "w.result.method") == "'attribution'", what="attribution result")
    page.wait_for_function("(el) => el.dataset.method === 'attribution'", arg=root.element_handle(), timeout=30_000)
    root.screenshot(path=str(artifacts / "patching_heatmap_lab.png"))
    assert page.pw_log.page_errors == [], page.pw_log.page_errors
