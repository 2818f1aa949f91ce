"""The Panel workshop app without a browser: building it offline, its tabs, uploads, models, the bridge."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest


from prisma_widgets.app import build_app
from prisma_widgets.app.__main__ import parse_args
from prisma_widgets.app.bridge import synced_traits, to_panel
from prisma_widgets.app.inputs import BadImageError, read_image
from prisma_widgets.app.tabs import TABS


def _png_bytes(image: np.ndarray, fmt: str = "PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def app(monkeypatch):
    monkeypatch.setenv("PRISMA_WIDGETS_OFFLINE", "1")
    return build_app("mouse-vit").workshop


def _upload(app, data: bytes, filename: str) -> None:
    """What the browser's file input does: the file name arrives, then the bytes."""
    app.upload.filename = filename
    app.upload.value = data


def test_builds_offline_with_one_tab_per_registered_widget(app):
    from prisma_widgets.widgets.attention_grid import AttentionGrid

    assert app.tab_view._names == [t.title for t in TABS]
    assert app.tab_view._names[:2] == ["Attention grid", "Logit lens"]
    assert app.model_name == "mouse-vit" and app.image.shape == (64, 64, 3)
    assert isinstance(app.widgets[0], AttentionGrid)  # the shown tab is built, the others wait
    assert set(app.widgets) == {0}
    assert not app.message.visible
    assert "mouse-vit" in app.status.object


def test_every_tab_builds_for_both_mice(app, monkeypatch):
    from prisma_widgets.app import tabs

    # a smaller workshop SAE: this checks the wiring, not the features
    monkeypatch.setattr(tabs, "SAE_SCENES", 8)
    monkeypatch.setattr(tabs, "SAE_STEPS", 5)
    tabs.workshop_sae.cache_clear()
    for name in ("mouse-vit", "mouse-clip"):
        assert app.set_model(name), app.message.object
        for i, tab in enumerate(TABS):
            app.tab_view.active = i
            assert app.widgets.get(i) is not None, (name, tab.title, app.tab_view[i].objects)
    lens = app.widgets[1]
    assert lens.prompts[0] == "a photo of a circle" and lens.prompts_editable  # mouse-clip reads out shapes
    tabs.workshop_sae.cache_clear()


def test_bad_upload_says_so_and_keeps_the_image(app):
    before = app.image.copy()
    _upload(app, b"\x89PNG but not really", "holiday.png")
    assert app.message.visible
    assert app.message.object == "holiday.png is not a PNG or JPEG image the app can read."
    np.testing.assert_array_equal(app.image, before)
    # a real image, but not one the app takes
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="GIF")
    _upload(app, buf.getvalue(), "anim.gif")
    assert "GIF" in app.message.object and "PNG or JPEG" in app.message.object


def test_upload_recomputes_the_shown_widget_and_clears_the_message(app):
    from skimage import data

    old = app.widgets[0]
    _upload(app, b"nope", "x.png")
    _upload(app, _png_bytes(data.chelsea(), "JPEG"), "chelsea.jpg")
    assert not app.message.visible
    assert app.image.shape == data.chelsea().shape
    grid = app.widgets[0]
    assert grid is not old
    assert not np.array_equal(grid.image_pixels["view"], old.image_pixels["view"])
    assert "chelsea.jpg" in app.status.object


def test_hub_name_offline_gives_a_clear_message(app):
    app.hub_name.value = "vit_base_patch16_224"
    app.hub_load.clicks += 1
    assert app.message.visible and "offline" in app.message.object and "mouse-vit" in app.message.object
    assert app.model_name == "mouse-vit"  # the old model stays
    app.hub_name.value = "vit_tiny_patch16_22"
    app.hub_load.clicks += 1
    assert "Did you mean" in app.message.object and "vit_tiny_patch16_224" in app.message.object


def test_a_failing_tab_shows_why_and_the_others_work(app):
    from prisma_widgets.app.tabs import Tab
    from prisma_widgets.app.workshop import WorkshopApp

    def broken(model, image):
        raise RuntimeError("no SAE for this model")

    demo = WorkshopApp(tabs=[Tab("Broken", broken), TABS[0]])
    assert demo.widgets == {0: None}
    assert "no SAE for this model" in demo.tab_view[0].objects[0].object
    demo.tab_view.active = 1
    assert demo.widgets[1] is not None


def test_bridge_links_traits_both_ways(app):
    widget = app.widgets[0]
    view = app.tab_view[0].objects[-1]
    assert set(synced_traits(type(widget))) >= {"patterns", "layer", "head", "query"}
    assert isinstance(view.patterns["view"], bytes) and view.patterns["shape"] == list(widget.patterns["shape"])
    view.head = 3  # what a click in the page does
    assert widget.head == 3
    widget.layer = 2  # and Python reaches the page
    assert view.layer == 2
    view.direction = "diagonal"  # refused by the widget: the page goes back to Python's value
    assert widget.direction == "row" and view.direction == "row"
    again = to_panel(widget)  # one component class per widget class
    assert type(again) is type(view)


def test_read_image_accepts_png_and_jpeg_only():
    img = np.zeros((4, 6, 3), np.uint8)
    assert read_image(_png_bytes(img), "a.png").shape == (4, 6, 3)
    assert read_image(_png_bytes(img, "JPEG"), "a.jpg").shape == (4, 6, 3)
    with pytest.raises(BadImageError, match="empty"):
        read_image(b"", "a.png")


def test_command_line():
    args = parse_args(["--port", "0", "--host", "0.0.0.0", "--show"])
    assert (args.port, args.host, args.show, args.model) == (0, "0.0.0.0", True, "mouse-vit")


def test_package_import_does_not_import_panel():
    code = ("import sys, prisma_widgets, prisma_widgets.widgets; "
            "print([m for m in ('panel', 'bokeh') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_starting_on_a_hub_model_offline_falls_back_to_a_mouse_and_says_why(monkeypatch):
    monkeypatch.setenv("PRISMA_WIDGETS_OFFLINE", "1")
    app = build_app("vit_base_patch16_224").workshop
    assert app.model_name == "mouse-vit" and app.widgets[0] is not None
    assert app.message.visible and "vit_base_patch16_224" in app.message.object
    assert app.hub_name.value == "vit_base_patch16_224"


def test_a_loaded_hub_model_joins_the_menu(app, monkeypatch):
    import prisma_widgets as pw
    from prisma_widgets.app import workshop

    tiny = pw.load("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=2)
    monkeypatch.setattr(workshop, "load_model", lambda name: tiny if name == "tiny-hub" else pw.load(name))
    calls = []
    monkeypatch.setattr(app, "refresh", lambda: calls.append(app.model_name))
    assert app.set_model("tiny-hub")
    assert app.model_select.value == "tiny-hub" and "tiny-hub" in app.model_select.options
    assert calls == ["tiny-hub"]  # one refresh, not a second one from the menu's watcher


def test_user_text_is_shown_as_text_not_html():
    """A file name or model name with markup reaches the page escaped (Panel renders Markdown panes' HTML)."""
    app = build_app().workshop
    app.say("cannot read <img src=x onerror=alert(1)>.png")
    assert "<img" not in app.message.object and "&lt;img src=x" in app.message.object
    assert app.problem.startswith("cannot read <img")


def test_patching_demo_is_a_minimal_pair_and_what_it_shows_is_true(app):
    """The default patching tab patches zoo.shape_pair (not background): the pair's classes are the clean and
    corrupted top classes, the painted patches are the changed shape's, and at layer 0 every token outside
    them has effect 0 (its embedding is the same in both runs; up to float noise of batched runs, ~4e-7)."""
    import numpy as np

    from prisma_widgets import zoo
    from prisma_widgets.app.tabs import TABS

    index = next(i for i, t in enumerate(TABS) if t.title == "Activation patching")
    app.tab_view.active = index
    w = app.widgets[index]
    clean, corrupted, (a, b), changed = zoo.shape_pair(seed=0)
    assert "zoo.shape_pair" in w.title and zoo.SHAPE_CLASSES[a] in w.title
    assert w.clean_top["indices"][0] == a and w.corrupted_top["indices"][0] == b
    assert w.corruption_patches == changed
    layer0 = w.values_array()[0]
    outside = [t for t in range(1, 65) if (t - 1) not in changed]
    assert np.abs(layer0[outside]).max() < 1e-5 and np.abs(layer0[[1 + p for p in changed]]).max() > 0.01
    assert "1 = all of it" in TABS[index].about


def test_an_uploaded_image_patches_its_salient_patches(app):
    from prisma_widgets.app.tabs import TABS, salient_patches

    clean, corrupted, _, changed = __import__("prisma_widgets").zoo.shape_pair(seed=3)
    _upload(app, _png_bytes(clean), "shape.png")
    index = next(i for i, t in enumerate(TABS) if t.title == "Activation patching")
    app.tab_view.active = index
    w = app.widgets[index]
    assert w is not None, app.tab_view[index].objects
    assert "your image" in w.title and w.corruption_patches == salient_patches(clean, (8, 8))
    # the salient patches are the shape's: most of them are where the shape pair differs
    assert len(set(w.corruption_patches) & set(changed)) >= len(w.corruption_patches) // 2


def test_a_slow_tab_shows_a_spinner_and_what_it_computes_first(app):
    """Served, a tab shows a spinner and what it is computing until the widget is built (on the next tick)."""
    import panel as pn

    from prisma_widgets.app.tabs import TABS

    index = next(i for i, t in enumerate(TABS) if t.title == "SAE features")
    scheduled = []
    original = pn.state.execute
    pn.state.execute = lambda cb, schedule="auto": scheduled.append(cb)  # a served session: later
    try:
        app.tab_view.active = index
    finally:
        pn.state.execute = original
    shown = app.tab_view[index].objects[0]
    assert isinstance(shown.objects[1], pn.indicators.Progress) and shown.objects[1].active
    assert "sparse autoencoder" in shown.objects[0].object and "half a minute" in shown.objects[0].object
    assert len(scheduled) == 1 and app.widgets[index] is None
