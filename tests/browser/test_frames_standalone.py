"""A clip's LogitLens saved with save_html, opened offline: the frame strip (slider, play) walks the token
frames, each with its own image and map; hover labels name the frame; the PNG is of the current frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prisma_widgets import zoo
from prisma_widgets.widgets.logit_lens import LogitLens

from .conftest import canvas_digest, export_png, wait_painted

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clips = zoo.moving_shapes(1, seed=3)
    # per token frame a different lens: the object's tokens (from the ground truth) predict the motion
    gt = zoo.clips.tubelet_labels(clips.patch_labels, 2)[0].reshape(-1)  # [64], frame-major
    logits = np.zeros((3, 64, 4), np.float32)
    for layer in range(3):
        logits[layer, gt > 0, clips.labels[0]] = 2.0 + layer
        logits[layer, gt == 0, (clips.labels[0] + 1) % 4] = 1.0
    w = LogitLens.from_arrays(logits, clips.videos[0], frames=4, grid=(4, 4), class_names=list(zoo.MOTIONS),
                              title="moving shape", frame=1)
    return w.save_html(tmp_path_factory.mktemp("frames") / "lens_clip.html")


def test_frame_strip_walks_the_clip_offline(saved, offline_page, artifacts: Path):
    page = offline_page
    page.goto(saved.as_uri())
    wait_painted(page)
    root = page.locator(".pw-root")
    mp = page.locator("canvas.pw-ll-map")
    strip = page.locator(".pw-frame-row")
    assert strip.is_visible()
    assert root.get_attribute("data-frame") == "1"
    assert "frame 2/4 (t1)" in page.locator(".pw-frame-label").text_content()

    # the slider: another frame, another image and map
    digests = {1: canvas_digest(mp)}
    for f in (0, 3):
        page.locator("input.pw-frame-slider").fill(str(f))
        page.wait_for_function(f"() => document.querySelector('.pw-root').dataset.frame === '{f}'")
        digests[f] = canvas_digest(mp)
    assert len(set(digests.values())) == 3, digests

    # hover a patch: the label names its frame, the table has its top classes
    box = mp.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.1)
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.patch === '0'")
    assert page.locator(".pw-ll-detail-title").text_content().startswith("t3 r0c0 at layer")
    # click selects the clip token of this frame: t3 r0c0 is token 48
    page.mouse.click(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.1)
    page.mouse.move(box["x"] + box["width"] * 2, box["y"])  # away: the selection shows
    page.wait_for_function("() => document.querySelector('.pw-ll-detail-title').textContent.includes('selected')")
    assert page.locator(".pw-ll-detail-title").text_content().startswith("t3 r0c0 at layer")

    # play steps through the frames and wraps around
    page.get_by_role("button", name="▶ play frames").click()
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.frame === '0'", timeout=5_000)
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.frame === '1'", timeout=5_000)
    page.get_by_role("button", name="❚❚ pause").click()

    # the PNG is the view as shown: the current frame's map
    img, _ = export_png(page, artifacts / "logit_lens_clip_export.png")
    assert img.std() > 10
    page.screenshot(path=str(artifacts / "logit_lens_clip_frames.png"), full_page=True)
    log = page.pw_log
    assert log.problems() == [], log.problems()
    assert all(u.startswith(("file:", "data:", "blob:")) for u in log.requests), log.requests


def test_an_image_lens_has_no_frame_strip(offline_page, tmp_path: Path):
    logits = np.random.default_rng(0).normal(size=(2, 17, 3)).astype(np.float32)
    path = LogitLens.from_arrays(logits, np.zeros((32, 32, 3), np.uint8)).save_html(tmp_path / "image.html")
    page = offline_page
    page.goto(path.as_uri())
    wait_painted(page)
    assert page.locator(".pw-frame-row").is_hidden()
    assert page.pw_log.problems() == []


def test_attention_grid_film_strip_hover_a_query_in_any_frame(offline_page, tmp_path: Path, artifacts: Path):
    import prisma_widgets as pw
    from prisma_widgets.widgets.attention_grid import AttentionGrid

    model = pw.load("mouse-video")
    clip = zoo.moving_shapes(1, seed=4).videos[0]
    path = AttentionGrid(model, clip, layers=[0, 3], title="mouse-video").save_html(tmp_path / "grid_clip.html")
    page = offline_page
    page.goto(path.as_uri())
    wait_painted(page)
    grid = page.locator("canvas.pw-ag-grid")
    query = page.locator("canvas.pw-ag-query")
    box = query.bounding_box()
    assert box["width"] > 3 * box["height"]  # four frames side by side
    # hover row 1, column 2 of the third frame: strip position 1 * 16 + 2 * 4 + 2
    before = canvas_digest(grid)
    page.mouse.move(box["x"] + box["width"] * (2 * 4 + 2.5) / 16, box["y"] + box["height"] * 1.5 / 4)
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.query === '26'")
    assert canvas_digest(grid) != before
    assert "t2 r1c2" in page.locator(".pw-root").text_content()
    page.screenshot(path=str(artifacts / "attention_grid_clip.png"), full_page=True)
    assert page.pw_log.problems() == [], page.pw_log.problems()
