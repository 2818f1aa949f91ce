"""The README's first example, pasted into ONE JupyterLab cell of an 800 px wide window: all four widgets
show (not only the last value), and the patching widget fits the notebook's width (issue 17, items 1 and 6)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.jupyter, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)[0]


def test_readme_example_shows_every_widget_in_one_cell_at_800px(jupyter_server, lab, page, artifacts: Path):
    code = readme_example()
    assert "display(" in code and "shape_pair" in code
    page.set_viewport_size({"width": 800, "height": 1000})
    write_notebook(jupyter_server.root / "readme.ipynb", [code])
    lab.open(page, "readme.ipynb")
    lab.run_all(page)
    lab.wait_for_widgets(page, 4, artifacts, "readme_lab")
    page.keyboard.press("Escape")
    page.keyboard.press("Control+b")  # the file browser closed: the notebook is the window's width
    page.wait_for_timeout(500)
    roots = page.locator(".jp-OutputArea-output .pw-root")
    kinds = [roots.nth(i).get_attribute("class") for i in range(roots.count())]
    for name in ("pw-attention-grid", "pw-logit-lens", "pw-patching", "pw-logit-attribution"):
        assert any(name in k for k in kinds), (name, kinds)
    patching = page.locator(".jp-OutputArea-output .pw-root.pw-patching").first
    patching.scroll_into_view_if_needed()
    # the minimal pair: only the shape's patches are painted in the editor
    assert 0 < int(patching.get_attribute("data-painted")) <= 32
    # nothing of the patching widget sticks out of the output area (no horizontal scrollbar)
    over = patching.evaluate(
        "(el) => { const area = el.closest('.jp-OutputArea-output'); const r = area.getBoundingClientRect();"
        " return Math.max(...[...el.querySelectorAll('*')].map((c) => c.getBoundingClientRect().right)) - r.right; }"
    )
    assert over <= 1, f"the patching widget overflows its output area by {over:.0f} px at 800 px"
    widths = patching.evaluate(
        "(el) => { const r = el.getBoundingClientRect(); const wide = [...el.querySelectorAll('*')]"
        ".filter((c) => c.getBoundingClientRect().right > r.right + 1).map((c) => c.className + ' ' + c.tagName);"
        " return [el.scrollWidth, el.clientWidth, wide.slice(0, 5)]; }"
    )
    assert widths[0] <= widths[1] + 1, widths
    (artifacts / "i17a" / "after").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifacts / "i17a" / "after" / "readme_lab_800.png"), full_page=False)
    patching.screenshot(path=str(artifacts / "i17a" / "after" / "patching_lab_800.png"))
    assert page.pw_log.page_errors == [], page.pw_log.page_errors
