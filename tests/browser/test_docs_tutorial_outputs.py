"""A docs tutorial page shows its widget working from file:// with the network blocked (issue 17, item 3).

One short tutorial is executed the docs way (docs/hooks.py ``execute_tutorial``: each widget's display carries its
saved page as a sandboxed ``<iframe srcdoc>``), rendered by nbconvert as mkdocs-jupyter renders it, stripped of
the CDN scripts as docs/hooks.py strips them, and opened with docs/javascripts/pw_embeds.js beside it."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from .conftest import canvas_digest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.notebooks]

ROOT = Path(__file__).resolve().parents[2]


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tutorial_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import os

    os.environ["PRISMA_WIDGETS_OFFLINE"] = "1"
    hooks = _module("docs_hooks_tutorial_page", ROOT / "docs" / "hooks.py")
    rendering = _module("docs_tutorial_rendering", ROOT / "tests" / "test_docs_tutorial_outputs.py")
    root = tmp_path_factory.mktemp("docs_tutorial")
    _, body = rendering.render_tutorial(root)
    (root / "javascripts").mkdir()
    shutil.copy(ROOT / "docs" / "javascripts" / "pw_embeds.js", root / "javascripts" / "pw_embeds.js")
    page = hooks.strip_cdn_scripts(body).replace(
        "</body>", '<script src="javascripts/pw_embeds.js"></script></body>'
    )
    out = root / "tutorial.html"
    out.write_text(page, encoding="utf-8")
    return out


def test_the_tutorial_widget_paints_offline(tutorial_page: Path, offline_page, artifacts: Path):
    page = offline_page
    page.goto(tutorial_page.as_uri())
    frame_el = page.locator("iframe.pw-static").first
    frame_el.scroll_into_view_if_needed()
    frame = page.frame_locator("iframe.pw-static").first
    frame.locator(".pw-root[data-paints]").wait_for(timeout=30_000)
    grid = frame.locator("canvas.pw-ag-grid")
    box = grid.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 50
    assert canvas_digest(grid)[1] > 0  # something is drawn, not an empty canvas
    # the frame takes the height its page posts (pw_embeds.js), so the widget is not clipped
    page.wait_for_function("() => document.querySelector('iframe.pw-static')?.dataset.fitted", timeout=30_000)
    fitted = float(frame_el.get_attribute("data-fitted"))
    assert abs(frame_el.evaluate("(f) => f.clientHeight") - fitted) <= 4
    # hover works in the saved page: the grid redraws
    query = frame.locator("canvas.pw-ag-query")
    d0 = canvas_digest(grid)
    qb = query.bounding_box()
    page.mouse.move(qb["x"] + qb["width"] * 0.6, qb["y"] + qb["height"] * 0.3)
    page.wait_for_timeout(150)
    assert canvas_digest(grid) != d0
    (artifacts / "i17c").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifacts / "i17c" / "tutorial_offline.png"), full_page=True)
    remote = [u for u in page.pw_log.requests if not u.startswith(("file:", "data:", "blob:", "about:"))]
    assert remote == [], remote
    assert page.pw_log.problems() == []
