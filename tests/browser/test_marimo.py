"""The AttentionGrid in a marimo app (``marimo run``, ``mo.ui.anywidget``) in headless chromium: it paints,
and a click on a thumbnail reaches Python, where a dependent cell re-runs and shows the new layer and head."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from .conftest import _free_port, _unavailable, canvas_digest, serving, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

APP = '''
import marimo

app = marimo.App()


@app.cell
def _():
    import marimo as mo
    import prisma_widgets as pw
    return mo, pw


@app.cell
def _(mo, pw):
    model = pw.load("mouse-vit")
    grid = pw.AttentionGrid(model, list(pw.zoo.scenes(2, seed=1).images), title="grid in marimo")
    w = mo.ui.anywidget(grid)
    return (w,)


@app.cell
def _(w):
    w
    return


@app.cell
def _(mo, w):
    mo.md(f"<span class='chosen'>layer {w.value['layer']} head {w.value['head']}</span>")
    return


if __name__ == "__main__":
    app.run()
'''


def test_marimo_app_paints_and_a_click_reruns_the_dependent_cell(page, tmp_path: Path, artifacts: Path):
    try:  # (chromium and playwright are checked by the `page` fixture)
        import marimo  # noqa: F401
    except ImportError:
        _unavailable("marimo is not installed (pip install marimo)")
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(APP).lstrip())
    port, token = _free_port(), uuid.uuid4().hex
    cmd = [sys.executable, "-m", "marimo", "run", str(app), "--headless", "--host", "127.0.0.1",
           "--port", str(port), "--token-password", token, "--no-sandbox"]
    with serving(cmd, f"http://127.0.0.1:{port}/?access_token={token}", tmp_path / "marimo.log") as url:
        page.goto(url)
        chosen = page.locator(".chosen")
        try:
            page.locator(".pw-root[data-paints]").first.wait_for(timeout=90_000)
            chosen.wait_for(timeout=30_000)
        except Exception:  # noqa: BLE001  (playwright TimeoutError)
            page.screenshot(path=str(artifacts / "marimo_failed.png"), full_page=True)
            raise AssertionError(f"no widget; marimo log:\n{(tmp_path / 'marimo.log').read_text()[-4000:]}") from None
        root = page.locator(".pw-root").first
        assert root.locator(".pw-title").text_content() == "grid in marimo"
        grid = root.locator("canvas.pw-ag-grid")
        grid.scroll_into_view_if_needed()
        assert canvas_digest(grid)[1] > 0
        assert chosen.text_content() == "layer 0 head 0"

        # a click on the thumbnail of layer 2, head 1: the trait reaches Python, the dependent cell re-runs
        cells = json.loads(grid.evaluate("c => c.dataset.cells"))
        _, _, x, y, w, h = next(c for c in cells if c[0] == 2 and c[1] == 1)
        before = canvas_digest(root.locator("canvas.pw-ag-matrix"))
        grid.click(position={"x": x + w / 2, "y": y + h / 2})
        wait_until(lambda: chosen.text_content() == "layer 2 head 1", timeout=30, what="the dependent cell re-ran")
        assert root.evaluate("r => [r.dataset.layer, r.dataset.head]") == ["2", "1"]
        assert canvas_digest(root.locator("canvas.pw-ag-matrix")) != before
        page.screenshot(path=str(artifacts / "marimo.png"), full_page=True)
    assert page.pw_log.page_errors == [], page.pw_log.page_errors
