"""The README's screenshots come from here: every widget, built on the bundled mice exactly as its docs page
builds it (``docs/hooks.py``), saved as HTML, opened offline in chromium and photographed.

Fresh shots land in ``tests/artifacts/screenshots/``; ``docs/images/`` holds the committed copies the README
shows (refresh: copy them over after a run).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from .conftest import wait_painted

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _docs_widgets() -> list:
    spec = importlib.util.spec_from_file_location("docs_hooks_for_screenshots", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.built_widgets()


WIDGETS = _docs_widgets()


@pytest.mark.parametrize("spec", WIDGETS, ids=[w.name for w in WIDGETS])
def test_screenshot(spec, tmp_path: Path, new_page, artifacts: Path):
    scope: dict = {}
    exec(spec.code, scope)  # noqa: S102  (our own docs code, the same that builds the docs embed)
    page_file = scope["widget"].save_html(tmp_path / f"{spec.name}.html")
    page = new_page()
    page.goto(page_file.as_uri())
    wait_painted(page)
    out = artifacts / "screenshots"
    out.mkdir(exist_ok=True)
    shot = out / f"{spec.name}.png"
    page.locator(".pw-root").screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000  # a picture, not a blank box
    assert page.pw_log.problems() == []


def test_readme_shows_every_widget():
    readme = (ROOT / "README.md").read_text()
    shown = set(re.findall(r"docs/images/(\w+)\.png", readme))
    assert {w.name for w in WIDGETS} <= shown, shown
    for name in shown:
        image = ROOT / "docs" / "images" / f"{name}.png"
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", image
