"""The Panel app on first open (issue 17, item 10): the SAE tab shows a spinner and what it computes at once,
not a blank tab for half a minute; the patching tab's default demo is a real minimal pair, titled, whose
painted patches are the changed shape's."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import _chromium_path, _free_port, _unavailable, serving

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if _chromium_path() is None:
        _unavailable("chromium is not installed (apt-get install -y chromium)")
    port = _free_port()
    cmd = [sys.executable, "-m", "prisma_widgets.app", "--host", "127.0.0.1", "--port", str(port)]
    with serving(cmd, f"http://127.0.0.1:{port}/", tmp_path_factory.mktemp("app") / "app.log") as url:
        yield url


def test_sae_tab_shows_progress_then_the_gallery(app_url: str, page, artifacts: Path):
    out = artifacts / "i17a" / "after"
    out.mkdir(parents=True, exist_ok=True)
    page.goto(app_url)
    page.locator(".pw-root[data-paints]").first.wait_for(timeout=60_000)
    start = time.monotonic()
    page.locator(".bk-tab", has_text="SAE features").click()
    building = page.locator(".pw-app-building").filter(has_text="sparse autoencoder")
    building.wait_for(timeout=5_000)  # at once, while the SAE trains
    shown_after = time.monotonic() - start
    assert building.locator("progress").first.is_visible()  # a moving (indeterminate) progress bar
    page.screenshot(path=str(out / "app_sae_first_open.png"))
    gallery = page.locator(".pw-root.pw-feature-gallery[data-paints]").first
    gallery.wait_for(timeout=180_000)
    built_after = time.monotonic() - start
    assert page.locator(".pw-app-building").count() == 0 or not page.locator(".pw-app-building").first.is_visible()
    (out / "app_sae_timing.txt").write_text(f"spinner shown after {shown_after:.1f} s; gallery after {built_after:.1f} s\n")
    assert shown_after < 5 and built_after > shown_after  # the progress came first


def test_patching_demo_is_the_minimal_pair(app_url: str, page, artifacts: Path):
    from prisma_widgets import zoo

    _, _, (a, b), changed = zoo.shape_pair(seed=0)
    page.goto(app_url)
    page.locator(".pw-root[data-paints]").first.wait_for(timeout=60_000)
    page.locator(".bk-tab", has_text="Activation patching").click()
    root = page.locator(".pw-root.pw-patching[data-paints]").first
    root.wait_for(timeout=120_000)
    title = root.locator(".pw-title").text_content()
    assert "demo pair" in title and zoo.SHAPE_CLASSES[a] in title and zoo.SHAPE_CLASSES[b] in title
    assert root.get_attribute("data-painted") == str(len(changed))
    effect = root.locator(".pw-ph-effect").text_content()
    assert "0 = corrupted run, 1 = clean run" in effect
    root.screenshot(path=str(artifacts / "i17a" / "after" / "app_patching_demo.png"))
    assert page.pw_log.page_errors == [], page.pw_log.page_errors
