"""The docs show each tutorial WITH its outputs: a widget as its saved page in a sandboxed iframe.

docs/hooks.py executes the tutorials with ``PRISMA_WIDGETS_STATIC_HTML=1`` (see ``execute_tutorial``); here one
short tutorial runs that way and is rendered by nbconvert's HTML exporter, as mkdocs-jupyter renders it.
tests/browser/test_docs_tutorial_outputs.py opens such a page offline and sees the widget paint.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "tutorials" / "01_attention_heads.ipynb"  # short, and shows an AttentionGrid


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks_outputs", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def render_tutorial(out_dir: Path) -> tuple[Path, str]:
    """Execute the tutorial the docs way; return the executed notebook and nbconvert's HTML of it."""
    from nbconvert import HTMLExporter

    executed = _hooks().execute_tutorial(TUTORIAL, out_dir)
    body, _ = HTMLExporter(template_name="lab").from_filename(str(executed))
    return executed, body


def frames(page: str) -> list[str]:
    """The saved pages of the page's static widget iframes (srcdoc, unescaped)."""
    return [html.unescape(m) for m in re.findall(r'<iframe class="pw-embed pw-static"[^>]*srcdoc="([^"]*)"', page)]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    import os

    os.environ["PRISMA_WIDGETS_OFFLINE"] = "1"
    return render_tutorial(tmp_path_factory.mktemp("executed"))


@pytest.mark.notebooks
def test_the_rendered_tutorial_holds_the_widget_as_its_saved_page(rendered):
    _, page = rendered
    saved = frames(page)
    assert saved, "no static widget iframe in the rendered tutorial"
    for doc in saved:
        assert 'class="pw-standalone-host"' in doc  # the standalone page: host, state, bundle, bootstrap
        assert 'class="pw-state"' in doc and re.search(r'"widget":\s*"attention_grid"', doc)
        assert "default-src 'none'" in doc  # its CSP: it fetches nothing
        assert "prisma_widgets" in doc and "height" in doc  # the height report that sizes the frame
    assert re.search(r'<iframe class="pw-embed pw-static" sandbox="allow-scripts"', page)
    assert len(page) < 3 * 1024 * 1024, f"rendered tutorial is {len(page) // 1024} kB"


@pytest.mark.notebooks
def test_no_widget_manager_and_no_widget_state(rendered):
    executed, page = rendered
    notebook = json.loads(executed.read_text(encoding="utf-8"))
    assert "widgets" not in notebook["metadata"]  # so nbconvert renders the html, not a widget view
    assert "html-manager" not in page and "unpkg.com" not in page


def test_live_notebooks_get_no_static_html(monkeypatch):
    """Without the env var a widget's display is the widget view alone: saved notebooks stay small."""
    import prisma_widgets as pw
    from prisma_widgets import zoo

    model = pw.load("mouse-vit")
    grid = pw.AttentionGrid(model, list(zoo.scenes(2, seed=1).images))
    monkeypatch.delenv("PRISMA_WIDGETS_STATIC_HTML", raising=False)
    bundle = grid._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "text/html" not in data and "application/vnd.jupyter.widget-view+json" in data
    monkeypatch.setenv("PRISMA_WIDGETS_STATIC_HTML", "1")
    bundle = grid._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    doc = frames(data["text/html"])
    assert len(doc) == 1 and 'class="pw-standalone-host"' in doc[0]
