"""PatchingHeatmap feedback and strip (issue 17, items 2, 7 and 12), in the browser.

* JupyterLab: paint background patches, Run with mask: the refusal is an alert over the heatmap (not grey text
  under the editor) that names the fix; the old result is dimmed and labelled as the previous one; the editor
  offers every corruption mode and 'swap' runs; the progress bar is next to the heatmap.
* Saved page (800 px, light and dark): cells at least 10 px wide and rows at least 24 px tall for 4 x 65 cells,
  hovering a cell shows its exact value, patch rows labelled; nothing overflows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import wait_painted, wait_until, write_notebook

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent.parent / "artifacts" / "i17a" / "after"

CELLS = [
    "import prisma_widgets as pw\n"
    "from prisma_widgets import zoo\n"
    "model = pw.load('mouse-vit')\n"
    "clean, corrupted, classes, changed = zoo.shape_pair(seed=0)\n"
    "w = pw.PatchingHeatmap(model, clean, corrupted, layers=[0, 3])\n"
    "first = w.result\n"
    "w",
]


@pytest.mark.browser
@pytest.mark.jupyter
@pytest.mark.slow
def test_a_refused_run_is_an_alert_over_the_heatmap_and_swap_runs(jupyter_server, lab, page, artifacts: Path):
    from prisma_widgets import zoo

    _, _, _, changed = zoo.shape_pair(seed=0)
    background = [p for p in range(64) if p not in changed][:3]
    write_notebook(jupyter_server.root / "feedback.ipynb", CELLS)
    lab.open(page, "feedback.ipynb")
    lab.run_all(page)
    lab.wait_for_widgets(page, 1, artifacts, "patching_feedback_lab")
    root = page.locator(".jp-OutputArea-output .pw-root").first
    kc = lab.kernel_client("feedback.ipynb")
    modes = root.locator("label:has-text('corrupt by') select option").evaluate_all("(os) => os.map((o) => o.value)")
    assert modes == ["mask", "blur", "noise", "swap"]
    # paint three background patches (nothing of the shape), mask them, Run
    root.get_by_role("button", name="clear").click()
    ed = root.locator("canvas.pw-ph-editor")
    ed.scroll_into_view_if_needed()
    eb = ed.bounding_box()
    cell = eb["width"] / 8
    for p in background:
        r, c = divmod(p, 8)
        page.mouse.click(eb["x"] + (c + 0.5) * cell, eb["y"] + (r + 0.5) * cell)
    page.wait_for_function("(el) => el.dataset.painted === '3'", arg=root.element_handle())
    assert root.get_attribute("data-pending") == "1"  # painted, not run: the view says so
    root.get_by_role("button", name="▶ Run").click()
    alert = root.locator(".pw-ph-alert[role=alert]")
    alert.wait_for(state="visible", timeout=60_000)
    text = alert.text_content()
    assert "Not run" in text and "'swap'" in text and "previous" in text
    assert lab.evaluate(kc, "w.result is first") == "True"
    assert root.get_attribute("data-error") == "1"
    # where the user looks: the alert sits between the heatmap's title and the heatmap, in the same column
    heat = root.locator("canvas.pw-ph-heat")
    ab, hb = alert.bounding_box(), heat.bounding_box()
    assert ab["y"] + ab["height"] <= hb["y"] + 1 and hb["y"] - (ab["y"] + ab["height"]) < 60
    assert abs(ab["x"] - hb["x"]) < 30
    assert float(heat.evaluate("(el) => getComputedStyle(el).opacity")) < 0.6  # the old result is dimmed
    assert root.locator(".pw-ph-stale-tag").is_visible()
    # the red border is the alert's, and the text is not grey
    colour = alert.evaluate("(el) => getComputedStyle(el).color")
    assert colour not in ("rgb(95, 99, 104)", "rgb(154, 160, 166)"), colour
    root.locator(".pw-ph-left > .pw-ph-label").first.scroll_into_view_if_needed()
    page.screenshot(path=str(OUT / "patching_refused_lab.png"))
    # the fix it names: swap the shape's patches in, Run: a new result, no alert, nothing dimmed
    root.get_by_role("button", name="clear").click()
    ed.scroll_into_view_if_needed()
    eb = ed.bounding_box()  # the alert above the heatmap may have moved the editor
    for p in changed:
        r, c = divmod(p, 8)
        page.mouse.click(eb["x"] + (c + 0.5) * cell, eb["y"] + (r + 0.5) * cell)
    page.wait_for_function("([el, n]) => el.dataset.painted === String(n)", arg=[root.element_handle(), len(changed)])
    root.locator("label:has-text('corrupt by') select").select_option("swap")
    root.get_by_role("button", name="▶ Run").click()
    wait_until(lambda: lab.evaluate(kc, "w.result is not first and w.error == ''") == "True", timeout=90,
               what=f"the swap sweep (status: {lab.evaluate(kc, 'w.status')})")
    page.wait_for_function("(el) => el.dataset.error === '0'", arg=root.element_handle(), timeout=30_000)
    assert not alert.is_visible()
    assert float(heat.evaluate("(el) => getComputedStyle(el).opacity")) == 1
    assert lab.evaluate(kc, "w.corruption_mode") == "'swap'"
    # a passing note (not a failure, no sweep running) shows, then fades instead of staying for minutes
    lab.execute(kc, "w.status = 'by=head does not apply here: showing by=position'")
    note = root.locator(".pw-ph-status")
    note.wait_for(state="visible", timeout=10_000)
    assert "showing by=position" in note.text_content()
    note.wait_for(state="hidden", timeout=15_000)  # NOTE_MS = 8 s
    root.locator(".pw-ph-left > .pw-ph-label").first.scroll_into_view_if_needed()
    page.screenshot(path=str(OUT / "patching_swapped_lab.png"))
    assert page.pw_log.page_errors == [], page.pw_log.page_errors


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    import prisma_widgets as pw
    from prisma_widgets import zoo

    clean, corrupted, _, _ = zoo.shape_pair(seed=0)
    w = pw.PatchingHeatmap(pw.load("mouse-vit"), clean, corrupted)
    return w.save_html(tmp_path_factory.mktemp("strip") / "strip.html"), w.values_array()


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_strip_cells_hover_values_at_800px(saved, new_page, scheme: str):
    path, values = saved
    page = new_page(color_scheme=scheme)
    page.set_viewport_size({"width": 800, "height": 1000})
    page.goto(path.as_uri())
    wait_painted(page)
    root = page.locator(".pw-root")
    assert root.evaluate("(r) => r.classList.contains('pw-dark')") == (scheme == "dark")
    heat = page.locator("canvas.pw-ph-heat")
    x0, y0, cw, ch, gap, n_prefix, rows, cols = json.loads(heat.get_attribute("data-layout"))
    assert (rows, cols) == (4, 65) and cw >= 10 and ch >= 24, (cw, ch)  # was 7 x 12 px
    box = heat.bounding_box()
    assert box["width"] > 600 and box["x"] + box["width"] <= 800
    for layer, token in ((2, 29), (0, 0), (3, 64)):
        x = box["x"] + x0 + token * cw + (gap if token >= n_prefix else 0) + cw / 2
        page.mouse.move(x, box["y"] + y0 + (layer + 0.5) * ch)
        page.wait_for_function("(t) => document.querySelector('.pw-root').dataset.hover.includes(t)",
                               arg=f"L{layer} · ")
        hover = root.get_attribute("data-hover")
        label = "CLS" if token == 0 else f"r{(token - 1) // 8}c{(token - 1) % 8}"
        assert hover.startswith(f"L{layer} · {label} · effect "), hover
        shown = float(hover.rsplit(" ", 1)[1])
        assert shown == pytest.approx(float(values[layer, token]), abs=0.006), (hover, values[layer, token])
        assert page.locator(".pw-ph-tip").is_visible()
    page.mouse.move(2, 2)
    assert not page.locator(".pw-ph-tip").is_visible()
    # nothing of the widget sticks out of the 800 px window
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 800
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"patching_saved_800_{scheme}.png"), full_page=True)
    assert page.pw_log.problems() == [], page.pw_log.problems()
