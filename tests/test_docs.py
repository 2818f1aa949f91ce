"""The docs site builds with ``mkdocs build --strict``: every page, every widget embed, nothing from a CDN."""

from __future__ import annotations

import html
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

# a script, stylesheet, image or frame fetched from another host (protocol-relative included)
EXTERNAL = re.compile(r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I)


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _text(page: str) -> str:
    """The page's text without markup (see :func:`_plain`)."""
    return _plain(html.unescape(re.sub(r"<[^>]+>", "", page)))


def _plain(text: str) -> str:
    """Text without reST roles, backticks and whitespace: a docstring compares with its rendering."""
    return re.sub(r"\s+", "", re.sub(r":\w+:", "", text).replace("`", ""))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    # the tutorials render unexecuted here (fast); tests/test_docs_tutorial_outputs.py executes one the docs way
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PRISMA_WIDGETS_OFFLINE": "1", "PRISMA_WIDGETS_DOCS_EXECUTE": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out


def test_pages_exist(site):
    for page in ("index", "api", "hosts", "circuitsvis", "models"):
        assert (site / f"{page}.html").is_file(), page
    for card in sorted((ROOT / "prisma_widgets" / "zoo" / "cards").glob("*.md")):
        assert (site / "models" / f"{card.stem}.html").is_file(), card.name
    tutorials = sorted((ROOT / "tutorials").glob("*.ipynb"))
    assert tutorials
    for notebook in tutorials:
        assert (site / "tutorials" / f"{notebook.stem}.html").is_file(), notebook.name


def test_every_widget_page_embeds_its_saved_page(site):
    widgets = _hooks().built_widgets()
    assert {"attention_grid", "logit_lens"} <= {w.name for w in widgets}
    for w in widgets:
        page = (site / "widgets" / f"{w.name}.html").read_text(encoding="utf-8")
        assert re.search(rf"<iframe[^>]*src=\"\.\./embeds/{w.name}\.html\"", page), w.name
        embed = site / "embeds" / f"{w.name}.html"
        assert embed.is_file(), w.name
        text = embed.read_text(encoding="utf-8")
        assert "default-src 'none'" in text  # the saved page's CSP: it can fetch nothing


def test_embeds_are_self_contained(site):
    embeds = sorted((site / "embeds").glob("*.html"))
    assert embeds
    for embed in embeds:
        assert not EXTERNAL.search(embed.read_text(encoding="utf-8")), embed.name


def test_no_page_loads_anything_from_a_cdn(site):
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        found = EXTERNAL.search(text)
        assert not found, f"{page.relative_to(site)}: {found.group(0)}"
        assert "fonts.googleapis" not in text, page.name
        assert not re.search(r"<script[^>]*\bsrc=[\"']{2}", text), f"{page.relative_to(site)}: empty script src"


def test_api_page_has_the_docstrings(site):
    import prisma_widgets as pw

    api = _text((site / "api.html").read_text(encoding="utf-8"))
    first_paragraph = inspect.getdoc(pw.load).split("\n\n")[0]
    assert _plain(first_paragraph) in api
    for name in ("HookedViT", "ActivationCache", "AttentionGrid", "LogitLens", "train_sae", "cache_activations"):
        assert _plain(inspect.getdoc(getattr(pw, name)).split("\n")[0]) in api, name


def test_tutorial_downloads_are_the_notebooks_as_written(site):
    """The .ipynb beside each tutorial page is the repository's file (docs/hooks.py copies it back after the
    build: an executed copy carries each widget's saved page)."""
    for notebook in sorted((ROOT / "tutorials").glob("*.ipynb")):
        assert (site / "tutorials" / notebook.name).read_bytes() == notebook.read_bytes(), notebook.name
