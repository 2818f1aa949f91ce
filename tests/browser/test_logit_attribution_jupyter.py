"""LogitAttribution in a real JupyterLab: clicks reach the kernel and, through pw.link, a linked AttentionGrid;
Python's target reaches the view; editing a CLIP prompt in the view recomputes in the kernel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import canvas_digest, wait_until, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.jupyter, pytest.mark.slow]

CELLS = [
    "import prisma_widgets as pw\n"
    "model = pw.load('mouse-vit')\n"
    "scene = pw.zoo.scenes(1, seed=2).images[0]\n"
    "w = pw.LogitAttribution(model, scene, title='dla in lab')\n"
    "w",
    "grid = pw.AttentionGrid(model, scene, thumb_size=48)\n"
    "links = pw.link(w, grid)\n"
    "grid",
    "clip = pw.load('mouse-clip')\n"
    "c = pw.LogitAttribution(clip, scene, prompts=['a photo of a circle', 'a photo of a heart'])\n"
    "c",
]


def _click(root, label: str) -> None:
    canvas = root.locator("canvas.pw-la-heatmap")
    canvas.scroll_into_view_if_needed()
    x, y, w, h = {c[0]: c[1:] for c in json.loads(canvas.evaluate("c => c.dataset.cells"))}[label]
    canvas.click(position={"x": x + w / 2, "y": y + h / 2})


def test_lab_click_link_target_and_prompts(jupyter_server, lab, page, artifacts: Path):
    write_notebook(jupyter_server.root / "dla.ipynb", CELLS)
    lab.open(page, "dla.ipynb")
    lab.run_all(page)
    lab.wait_for_widgets(page, 3, artifacts, "logit_attribution_lab")
    roots = page.locator(".jp-OutputArea-output .pw-root")
    la, grid, clip = roots.nth(0), roots.nth(1), roots.nth(2)
    assert la.locator(".pw-title").text_content() == "dla in lab"
    assert page.locator(".jp-OutputArea-output .pw-root [id]").count() == 0
    kc = lab.kernel_client("dla.ipynb")

    # a click on a head reaches the kernel, and the linked grid follows (kernel and view)
    _click(la, "L1H2")
    wait_until(lambda: lab.evaluate(kc, "(w.layer, w.head, w.part)") == "(1, 2, 'head')", what="L1H2 in the kernel")
    wait_until(lambda: lab.evaluate(kc, "(grid.layer, grid.head)") == "(1, 2)", what="the grid linked in the kernel")
    page.wait_for_function("(el) => el.dataset.layer === '1' && el.dataset.head === '2'", arg=grid.element_handle(),
                           timeout=30_000)
    # an MLP cell: the view says so, the grid stays
    _click(la, "L3 MLP")
    wait_until(lambda: lab.evaluate(kc, "(w.part, w.layer)") == "('mlp', 3)", what="the MLP in the kernel")
    assert lab.evaluate(kc, "(grid.layer, grid.head)") == "(1, 2)"

    # Python sets the target (a difference): the view follows
    heat = la.locator("canvas.pw-la-heatmap")
    before = canvas_digest(heat)
    lab.execute(kc, "w.target, w.versus = 1, 0; w.layer, w.head = 2, 3")
    page.wait_for_function("(el) => el.dataset.target === '1' && el.dataset.versus === '0' && el.dataset.selected === 'L2H3'",
                           arg=la.element_handle(), timeout=30_000)
    assert canvas_digest(heat) != before
    assert "−" in la.locator(".pw-la-heat-title").text_content()
    page.wait_for_function("(el) => el.dataset.layer === '2' && el.dataset.head === '3'", arg=grid.element_handle(),
                           timeout=30_000)
    # the picker in the view reaches Python
    la.locator("select.pw-la-versus").select_option("-1")
    wait_until(lambda: lab.evaluate(kc, "w.versus") == "-1", what="versus=-1 in the kernel")

    # CLIP: edit a prompt in the view, the kernel recomputes, the picker lists the new prompt
    first = clip.locator("input.pw-la-prompt-input").first
    first.scroll_into_view_if_needed()
    assert first.get_attribute("readonly") is None
    first.fill("a photo of a star")
    first.press("Enter")
    wait_until(lambda: lab.evaluate(kc, "c.class_names[0]") == "'a photo of a star'", what="recomputed CLIP attribution")
    page.wait_for_function(
        "(el) => Array.from(el.querySelectorAll('select.pw-la-target option')).some(o => o.textContent.startsWith('a photo of a star'))",
        arg=clip.element_handle(), timeout=30_000,
    )
    assert lab.evaluate(kc, "abs(float(c.values().sum()) - c.logit()) < 1e-4") == "True"
    la.screenshot(path=str(artifacts / "logit_attribution_lab.png"))
    assert page.pw_log.page_errors == [], page.pw_log.page_errors
