"""Keys pressed in a widget stay in the widget, in a real JupyterLab 4 at 800 px (issue 17, item 4).

Click a widget's slider and press an arrow key: the value changes (and Python sees it), focus stays on the
slider, the notebook neither scrolls nor moves to another cell. The same for the arrow keys on a canvas
(AttentionGrid's query image) and for AttentionGrid's overlay slider. And at 800 px the grid fits the width.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import wait_until, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.jupyter, pytest.mark.slow]

CELLS = [
    "import prisma_widgets as pw\n"
    "model = pw.load('mouse-vit')\n"
    "scenes = pw.zoo.scenes(2, seed=3)\n"
    "lens = pw.LogitLens(model, scenes.images[0], layer=1)\n"
    "lens",
    "grid = pw.AttentionGrid(model, list(scenes.images), thumb_size=48)\n"
    "grid",
    # cells below the widgets, so that the notebook can scroll and a "next cell" exists
    *[f"x{i} = {i}\nx{i}" for i in range(6)],
]

STATE_JS = """() => {
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
  const scroller = document.querySelector('.jp-Notebook .jp-WindowedPanel-outer') || document.querySelector('.jp-Notebook');
  const a = document.activeElement;
  return { active: cells.findIndex((c) => c.classList.contains('jp-mod-active')), scroll: scroller.scrollTop,
           focus: a ? (a.className || a.tagName) + '' : '', inWidget: !!(a && a.closest('.pw-root')) };
}"""


def _state(page) -> dict:
    return page.evaluate(STATE_JS)


def test_arrow_keys_move_the_widget_not_the_notebook(jupyter_server, lab, page, artifacts: Path):
    page.set_viewport_size({"width": 800, "height": 700})
    write_notebook(jupyter_server.root / "keys.ipynb", CELLS)
    lab.open(page, "keys.ipynb")
    lab.run_all(page)
    lab.wait_for_widgets(page, 2, artifacts, "keyboard_lab")
    kc = lab.kernel_client("keys.ipynb")
    lens = page.locator(".jp-OutputArea-output .pw-logit-lens").first
    grid = page.locator(".jp-OutputArea-output .pw-attention-grid").first

    # the LogitLens layer slider: click it, then arrow keys
    slider = lens.locator("input.pw-ll-slider")
    slider.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    box = slider.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    wait_until(lambda: slider.evaluate("e => document.activeElement === e"), timeout=10, what="focus on the slider")
    before = _state(page)
    assert before["inWidget"], before
    value = int(slider.input_value())
    top = int(slider.get_attribute("max"))
    for key in ("ArrowLeft", "ArrowDown", "ArrowRight", "ArrowUp", "ArrowUp", "ArrowLeft"):
        step = 1 if key in ("ArrowRight", "ArrowUp") else -1
        expected = min(top, max(0, value + step))
        page.keyboard.press(key)
        page.wait_for_timeout(150)
        assert int(slider.input_value()) == expected, (key, slider.input_value(), expected)
        now = _state(page)
        assert now["inWidget"] and "pw-ll-slider" in now["focus"], (key, now)
        assert now["active"] == before["active"], (key, before, now)  # no other cell selected
        assert abs(now["scroll"] - before["scroll"]) <= 1, (key, before, now)  # the notebook did not scroll
        value = expected
    # Python sees the layer the keys chose
    wait_until(lambda: lab.evaluate(kc, "lens.layer") == str(value), what=f"lens.layer == {value} in the kernel")

    # AttentionGrid's query image: click locks a query, arrow keys move it (and the kernel's query)
    query = grid.locator("canvas.pw-ag-query")
    query.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    qb = query.bounding_box()
    page.mouse.click(qb["x"] + 2, qb["y"] + 2)  # the top-left patch: token 1 (after CLS)
    wait_until(lambda: lab.evaluate(kc, "grid.query") == "1", what="grid.query == 1")
    before = _state(page)
    page.keyboard.press("ArrowRight")
    wait_until(lambda: lab.evaluate(kc, "grid.query") == "2", what="grid.query == 2 after ArrowRight")
    page.keyboard.press("ArrowDown")
    wait_until(lambda: lab.evaluate(kc, "grid.query") == "10", what="grid.query == 10 after ArrowDown (8x8 patches)")
    now = _state(page)
    assert now["inWidget"] and now["active"] == before["active"] and abs(now["scroll"] - before["scroll"]) <= 1, (before, now)

    # the overlay slider
    overlay = grid.locator("input.pw-range")
    overlay.focus()
    v0 = float(overlay.input_value())
    page.keyboard.press("ArrowLeft")
    page.wait_for_timeout(150)
    assert float(overlay.input_value()) == pytest.approx(v0 - 0.05)
    wait_until(lambda: abs(float(lab.evaluate(kc, "grid.opacity")) - (v0 - 0.05)) < 1e-6, what="grid.opacity in the kernel")

    # in this notebook (800 px window, file browser open) the grid fits its output: no horizontal scrollbar
    sw, cw = grid.evaluate("r => [r.scrollWidth, r.clientWidth]")
    assert sw <= cw, (sw, cw)
    shots = artifacts / "i17b" / "after"
    shots.mkdir(parents=True, exist_ok=True)
    grid.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "keyboard_lab_800.png"))

    # Shift+Enter still runs the cell from inside a widget (the keys a widget leaves to the notebook)
    count = lab.evaluate(kc, "len(In)")
    page.keyboard.press("Shift+Enter")
    wait_until(lambda: int(lab.evaluate(kc, "len(In)")) > int(count), what="Shift+Enter ran a cell")
    assert page.pw_log.page_errors == [], page.pw_log.page_errors
