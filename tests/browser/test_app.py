"""The Panel workshop app, served by ``python -m prisma_widgets.app`` on 127.0.0.1, in headless chromium.

Upload a photo through the page's file input: the attention grid is computed in Python for that photo
and drawn by the same front-end bundle the notebook uses, hosted by Panel's ``AnyWidgetComponent``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import _chromium_path, _free_port, _unavailable, canvas_digest, serving

pytestmark = [pytest.mark.browser]



@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m prisma_widgets.app`` on a free port of 127.0.0.1; its URL once it serves."""
    if _chromium_path() is None:
        _unavailable("chromium is not installed (apt-get install -y chromium)")
    port = _free_port()
    cmd = [sys.executable, "-m", "prisma_widgets.app", "--host", "127.0.0.1", "--port", str(port)]
    with serving(cmd, f"http://127.0.0.1:{port}/", tmp_path_factory.mktemp("app") / "app.log") as url:
        yield url


def _png(tmp_path: Path) -> Path:
    from PIL import Image
    from skimage import data

    path = tmp_path / "chelsea.png"
    Image.fromarray(data.chelsea()).save(path)
    return path


def _wait_grid(page, timeout_ms: int = 45_000):
    page.locator(".pw-root[data-paints]").first.wait_for(timeout=timeout_ms)
    return page.locator("canvas.pw-ag-query").first, page.locator("canvas.pw-ag-grid").first


def test_upload_draws_the_attention_grid_for_the_photo(app_url: str, page, tmp_path: Path, artifacts: Path):
    page.goto(app_url)
    query, grid = _wait_grid(page)
    before_query = canvas_digest(query)

    page.locator("input[type=file]").set_input_files(str(_png(tmp_path)))
    page.get_by_text("chelsea.png").first.wait_for(timeout=45_000)  # Python read it and says so
    deadline = time.monotonic() + 45
    while True:  # the old grid is replaced by one computed on the photo
        query, grid = _wait_grid(page)
        try:
            after_query = canvas_digest(query)
        except Exception:  # noqa: BLE001  (the old canvas was detached mid-read)
            after_query = before_query
        if after_query != before_query:
            break
        assert time.monotonic() < deadline, "the query image did not change after the upload"
        page.wait_for_timeout(200)
    _, grid_sum = canvas_digest(grid)
    _, query_sum = canvas_digest(query)
    assert grid_sum > 0 and query_sum > 0, "blank canvas"
    assert grid.bounding_box()["width"] > 100
    # the photo is drawn: a tabby cat is mostly warm grey-brown, not the scene's green stripes
    r, g, b = query.evaluate(
        """(el) => { const d = el.getContext('2d').getImageData(0, 0, el.width, el.height).data;
                     let s = [0, 0, 0]; for (let i = 0; i < d.length; i += 4) { s[0] += d[i]; s[1] += d[i+1]; s[2] += d[i+2]; }
                     return s; }"""
    )
    assert r > b, (r, g, b)
    page.screenshot(path=str(artifacts / "app_attention_grid.png"), full_page=True)
    assert page.pw_log.problems() == [], page.pw_log.problems()
    assert all(u.startswith((app_url.rstrip("/"), "data:", "blob:"))
               for u in page.pw_log.requests), "the app fetched something from outside"


def test_bad_upload_shows_a_message(app_url: str, page, tmp_path: Path):
    page.goto(app_url)
    _wait_grid(page)
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"this is not a PNG")
    page.locator("input[type=file]").set_input_files(str(bad))
    message = page.locator(".pw-app-message")
    message.get_by_text("holiday.png is not a PNG or JPEG image").wait_for(timeout=30_000)
    # the grid stays, drawn from the default scene
    assert page.locator("canvas.pw-ag-grid").count() == 1


def test_clip_logit_lens_prompt_edit_round_trips_through_python(app_url: str, page, artifacts: Path):
    """Choose mouse-clip, open the logit lens, edit a prompt in the view: Python recomputes, the page follows."""
    page.goto(app_url)
    _wait_grid(page)
    page.locator("select").first.select_option("mouse-clip")
    page.get_by_text("mouse-clip", exact=True).last.wait_for(timeout=30_000)
    page.locator(".bk-tab", has_text="Logit lens").click()
    root = page.locator(".pw-root[data-paints]").filter(has=page.locator("canvas.pw-ll-map")).first
    root.wait_for(timeout=45_000)
    legend = root.locator(".pw-ll-legend")
    assert "a photo of a circle" in legend.text_content()  # the scene's circle is top-1 on some patches
    first = root.locator("input.pw-ll-prompt-input").first
    assert first.get_attribute("readonly") is None  # editable: a Python process holds the model
    first.fill("a photo of the sky")
    first.press("Enter")
    # only Python can compute the new lens: once it came back, no patch's top-1 is the replaced prompt
    page.wait_for_function(
        "(el) => !el.textContent.includes('a photo of a circle')", arg=legend.element_handle(), timeout=30_000
    )
    page.screenshot(path=str(artifacts / "app_logit_lens_clip.png"), full_page=True)
    assert page.pw_log.problems() == [], page.pw_log.problems()


def test_panel_serve_on_the_module_file(page, tmp_path: Path):
    """``panel serve prisma_widgets/app/__main__.py`` serves the same app."""
    from prisma_widgets.app import SERVE_FILE

    port = _free_port()
    cmd = [sys.executable, "-m", "panel", "serve", str(SERVE_FILE), "--address", "127.0.0.1", "--port", str(port)]
    with serving(cmd, f"http://127.0.0.1:{port}/__main__", tmp_path / "serve.log") as url:
        page.goto(url)
        assert page.title() == "prisma_widgets workshop"
        _, grid = _wait_grid(page)
        assert canvas_digest(grid)[1] > 0
    assert page.pw_log.problems() == [], page.pw_log.problems()
