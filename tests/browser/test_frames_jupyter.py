"""A clip's LogitLens in a real JupyterLab: the frame slider reaches Python, Python's frame reaches the view."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import canvas_digest, wait_until, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.jupyter, pytest.mark.slow]

CELLS = [
    "import prisma_widgets as pw\n"
    "from prisma_widgets import zoo\n"
    "model = pw.load('mouse-video')\n"
    "clip = zoo.moving_shapes(1, seed=3).videos[0]\n"
    "w = pw.LogitLens(model, clip, title='clip in lab')\n"
    "w",
]


def test_lab_frame_syncs_both_ways(jupyter_server, lab, page, artifacts: Path):
    write_notebook(jupyter_server.root / "clip.ipynb", CELLS)
    lab.open(page, "clip.ipynb")
    lab.run_all(page)
    lab.wait_for_widgets(page, 1, artifacts, "frames_lab")
    root = page.locator(".jp-OutputArea-output .pw-root").first
    assert root.locator(".pw-title").text_content() == "clip in lab"
    kc = lab.kernel_client("clip.ipynb")
    mp = root.locator("canvas.pw-ll-map")
    mp.scroll_into_view_if_needed()
    assert root.locator(".pw-frame-row").is_visible()

    # the view's frame slider reaches Python
    before = canvas_digest(mp)
    root.locator("input.pw-frame-slider").fill("2")
    wait_until(lambda: lab.evaluate(kc, "w.frame") == "2", what="frame=2 in the kernel")
    page.wait_for_function("(el) => el.dataset.frame === '2'", arg=root.element_handle(), timeout=30_000)
    assert canvas_digest(mp) != before

    # Python's frame reaches the view, and the play button steps on from there
    lab.execute(kc, "w.frame = 0")
    page.wait_for_function("(el) => el.dataset.frame === '0'", arg=root.element_handle(), timeout=30_000)
    root.get_by_role("button", name="▶ play frames").click()
    wait_until(lambda: lab.evaluate(kc, "w.frame") == "1", what="play reached the kernel")
    root.get_by_role("button", name="❚❚ pause").click()
    root.screenshot(path=str(artifacts / "frames_lab.png"))
    assert page.pw_log.page_errors == [], page.pw_log.page_errors
