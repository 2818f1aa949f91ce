"""The docs' live embeds are as tall as their widgets (issue 17, item 3): each widget page's iframe, built by
docs/hooks.py and sized by docs/javascripts/pw_embeds.js, shows its saved page without clipping it and without
scrolling inside the frame, also after a gallery card is opened. The frames sit in a column as wide as the
docs theme's content (about 760 px); measured heights go to tests/artifacts/i17a/embed_heights.json."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CONTENT_WIDTH = 760  # Material's content column on a desktop window


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks_embeds", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """widgets/<name>.html (the iframe exactly as the widget's docs page has it) and embeds/<name>.html."""
    hooks = _hooks()
    root = tmp_path_factory.mktemp("docs_site")
    for sub in ("widgets", "embeds", "javascripts"):
        (root / sub).mkdir()
    shutil.copy(ROOT / "docs" / "javascripts" / "pw_embeds.js", root / "javascripts" / "pw_embeds.js")
    names = []
    for w in hooks.built_widgets():
        (root / "embeds" / f"{w.name}.html").write_bytes(hooks.build_embed(w))
        frame = re.search(r"<iframe.*?</iframe>", hooks.widget_page(w), re.DOTALL).group(0)
        (root / "widgets" / f"{w.name}.html").write_text(
            f'<!DOCTYPE html><html><body style="margin:0"><main style="width:{CONTENT_WIDTH}px;padding:8px">'
            f'<h1>{w.cls}</h1>{frame}<p class="after">the code that made it</p></main>'
            '<script src="../javascripts/pw_embeds.js"></script></body></html>',
            encoding="utf-8",
        )
        names.append(w.name)
    return root, names


def _measure(page, name: str) -> dict[str, float]:
    frame_el = page.locator("iframe.pw-embed")
    inner = next(f for f in page.frames if f.url.endswith(f"embeds/{name}.html"))
    content = inner.evaluate("() => Math.ceil(document.body.getBoundingClientRect().height)")
    scroll = inner.evaluate("() => document.documentElement.scrollHeight - window.innerHeight")
    return {"iframe": frame_el.evaluate("(f) => f.clientHeight"), "content": content, "inner_scroll": scroll}


def _fitted(page) -> None:
    page.wait_for_function("() => document.querySelector('iframe.pw-embed')?.dataset.fitted", timeout=60_000)
    page.wait_for_timeout(300)


def test_every_embed_is_as_tall_as_its_widget(site, browser, artifacts: Path):
    root, names = site
    context = browser.new_context(viewport={"width": CONTENT_WIDTH + 40, "height": 900})
    heights: dict[str, dict[str, float]] = {}
    try:
        for name in names:
            page = context.new_page()
            page.goto((root / "widgets" / f"{name}.html").as_uri())
            page.locator("iframe.pw-embed").scroll_into_view_if_needed()  # the frames load lazily
            _fitted(page)
            m = _measure(page, name)
            heights[name] = m
            assert m["inner_scroll"] <= 1, f"{name}: the frame scrolls inside ({m})"
            assert abs(m["iframe"] - m["content"]) <= 4, f"{name}: frame {m['iframe']} px for {m['content']} px ({m})"
            if name == "feature_gallery":
                before = m["content"]
                inner = next(f for f in page.frames if f.url.endswith("embeds/feature_gallery.html"))
                inner.locator(".pw-fg-card").nth(1).click()
                page.wait_for_timeout(800)
                opened = _measure(page, name)
                heights["feature_gallery (card opened)"] = opened
                assert opened["inner_scroll"] <= 1 and abs(opened["iframe"] - opened["content"]) <= 4, opened
                assert inner.locator(".pw-fg-detail").first.is_visible()
                assert before > 0
            (artifacts / "i17a" / "after").mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(artifacts / "i17a" / "after" / f"docs_embed_{name}.png"), full_page=True)
            page.close()
    finally:
        context.close()
        (artifacts / "i17a").mkdir(parents=True, exist_ok=True)
        (artifacts / "i17a" / "embed_heights.json").write_text(json.dumps(heights, indent=1))
