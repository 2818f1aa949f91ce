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


@pytest.mark.notebooks
def test_training_curves_render_without_bokeh_from_a_cdn(tmp_path, monkeypatch):
    """``train_sae(show_curves=True)`` in a notebook executed the docs way: the curves as inline SVG once
    training ends, not Bokeh's notebook output (which loads BokehJS from cdn.bokeh.org)."""
    import nbformat

    monkeypatch.setenv("PRISMA_WIDGETS_OFFLINE", "1")
    source = (
        "import tempfile\nimport prisma_widgets as pw\nfrom prisma_widgets import zoo\n"
        'model = pw.load("mouse-vit")\nimages, _ = zoo.shapes(40, seed=1)\n'
        'store = pw.cache_activations(model, images, "blocks.3.hook_resid_post", tempfile.mkdtemp(), progress=False)\n'
        "sae = pw.train_sae(store, expansion=2, k=4, batch_size=256, steps=30, log_every=10, progress=False, "
        "show_curves=True)\n"
    )
    nb_path = tmp_path / "curves.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), nb_path)
    (tmp_path / "out").mkdir()
    executed = _hooks().execute_tutorial(nb_path, tmp_path / "out")
    text = executed.read_text(encoding="utf-8")
    assert "bokeh" not in text.lower()
    outputs = json.loads(text)["cells"][0]["outputs"]
    svgs = ["".join(o["data"]["text/html"]) for o in outputs if "text/html" in o.get("data", {})]
    assert len(svgs) == 1 and svgs[0].count("<polyline") == 4, outputs


def test_curves_svg_draws_each_metric():
    from prisma_widgets.sae.curves import curves_svg

    history = [(s, {"loss": 1.0 / s, "ev": 1 - 1.0 / s, "l0": 8.0, "dead": 0.0}) for s in (10, 20, 30)]
    svg = curves_svg(history)
    assert svg.count("<polyline") == 4
    for title in ("loss", "explained variance", "L0", "dead fraction"):
        assert f">{title}</text>" in svg
    assert ">0.1</text>" in svg and ">step 10</text>" in svg and ">30</text>" in svg  # the loss's range, the steps
