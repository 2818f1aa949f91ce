"""The workshop app: choose a model, upload an image, and explore it in one tab per widget.

>>> from prisma_widgets.app import build_app
>>> app = build_app()                  # doctest: +SKIP
>>> app.servable()                     # doctest: +SKIP
"""

from __future__ import annotations

import html
import io
from typing import Any

import numpy as np
import panel as pn

from .bridge import to_panel
from .inputs import ACCEPT, BUNDLED_MODELS, BadImageError, ModelLoadError, default_image, load_model, read_image
from .tabs import TABS, Tab

TITLE = "prisma_widgets workshop"
HUB_HINT = "or a hub name: vit_base_patch16_224.augreg2_in21k_ft_in1k, open_clip:ViT-B-32/openai"


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


class WorkshopApp:
    """The state of one browser session: the model, the image, and the tabs built from them.

    ``layout`` is the Panel object to serve. Tabs are built lazily: the shown tab now, the others when
    they are opened, and all again after the model or the image changes.
    """

    def __init__(self, model: str = BUNDLED_MODELS[0], image: np.ndarray | None = None,
                 tabs: list[Tab] | None = None) -> None:
        self.tabs = list(TABS if tabs is None else tabs)
        self.model: Any = None
        self.model_name = ""
        self.problem = ""  # the message shown above the tabs, as given (shown escaped)
        self.image = default_image() if image is None else np.asarray(image, dtype=np.uint8)
        self.image_name = "a synthetic scene (zoo.scenes(1, seed=0))"
        self.widgets: dict[int, Any] = {}

        self.model_select = pn.widgets.Select(label="Model", options=list(BUNDLED_MODELS), value=BUNDLED_MODELS[0])
        self.hub_name = pn.widgets.TextInput(label="Hub model", placeholder=HUB_HINT,
                                             value="" if model in BUNDLED_MODELS else model)
        self.hub_load = pn.widgets.Button(label="Load hub model", color="primary")
        self.upload = pn.widgets.FileInput(label="Image", accept=ACCEPT, multiple=False)
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["pw-app-message"])
        self.status = pn.pane.Markdown("", css_classes=["pw-app-status"])
        self.preview = pn.pane.PNG(None, width=128, height=128, css_classes=["pw-app-preview"])
        self.tab_view = pn.Tabs(*[(t.title, pn.Column(sizing_mode="stretch_width")) for t in self.tabs],
                                dynamic=False, sizing_mode="stretch_width")

        self.model_select.param.watch(lambda e: self.set_model(e.new), "value")
        self.hub_load.on_click(lambda _e: self.set_model(self.hub_name.value))
        self.hub_name.param.watch(lambda _e: self.set_model(self.hub_name.value), "enter_pressed")
        self.upload.param.watch(lambda _e: self.set_upload(self.upload.value, self.upload.filename), "value")
        self.tab_view.param.watch(lambda _e: self.show_tab(), "active")

        sidebar = pn.Column(
            "## Model", self.model_select, self.hub_name, self.hub_load,
            "## Image", self.upload, self.preview, self.status, width=300,
        )
        self.layout = pn.Row(sidebar, pn.Column(f"# {TITLE}", self.message, self.tab_view,
                                                sizing_mode="stretch_width"), sizing_mode="stretch_width")
        if not self.set_model(model) and model != BUNDLED_MODELS[0]:
            problem = self.problem  # start on a mouse, and say why
            self.set_model(BUNDLED_MODELS[0])
            self.say(problem)

    # ---------------------------------------------------------------------------------------------
    def say(self, problem: str = "") -> None:
        """Show ``problem`` above the tabs (an empty string hides the message). It is shown as text: file and
        model names come from the user, and Panel renders Markdown panes' HTML."""
        self.problem = problem
        self.message.object = _as_text(problem)
        self.message.visible = bool(problem)

    def _refresh_status(self) -> None:
        notice = getattr(self.model, "notice", None) or ""
        self.status.object = (f"**{_as_text(self.model_name)}** on {_as_text(self.image_name)}"
                              + (f"\n\n{_as_text(notice)}" if notice else ""))
        self.preview.object = _png(self.image)

    def set_model(self, name: str) -> bool:
        """Load ``name`` (a bundled mouse or a hub name); on failure keep the old model and say why."""
        try:
            model = load_model(name)
        except ModelLoadError as err:
            self.say(str(err))
            return False
        self.say()
        if model is self.model:
            return True
        self.model, self.model_name = model, name.strip()
        if self.model_name not in self.model_select.options:  # a hub model joins the menu
            self.model_select.options = [*self.model_select.options, self.model_name]
        self.model_select.value = self.model_name  # (its watcher finds this model loaded: no second refresh)
        self.refresh()
        return True

    def set_upload(self, data: bytes | None, filename: str | None = None) -> bool:
        """Use an uploaded PNG/JPEG; a bad file keeps the old image and shows why."""
        try:
            image = read_image(data, filename)
        except BadImageError as err:
            self.say(str(err))
            return False
        self.image, self.image_name = image, filename or "the upload"
        self.say()
        self.refresh()
        return True

    def refresh(self) -> None:
        """Forget every built widget and build the shown tab's again."""
        self.widgets.clear()
        for pane in self.tab_view:
            pane.clear()
        self._refresh_status()
        self.show_tab()

    def show_tab(self) -> None:
        """Build the shown tab's widget if it is not built yet.

        The tab first shows a moving progress bar and what is being computed (the SAE tab trains for about half a
        minute); the widget is built on the server's next tick, after the spinner has reached the page.
        Outside a served session (tests, a notebook) it is built at once.
        """
        index = self.tab_view.active
        if index in self.widgets or self.model is None:
            return
        tab = self.tabs[index]
        self.widgets[index] = None  # being built: a second switch to this tab does not start another
        self.tab_view[index][:] = [pn.Column(pn.pane.Markdown(_as_text(tab.waiting)),
                                             pn.indicators.Progress(active=True, width=320, margin=(0, 10)),
                                             css_classes=["pw-app-building"])]
        model, image = self.model, self.image
        pn.state.execute(lambda: self._build_tab(index, model, image), schedule=True)

    def _build_tab(self, index: int, model: Any, image: np.ndarray) -> None:
        if model is not self.model or image is not self.image:
            return  # the model or the image changed meanwhile: refresh() builds the tab again
        tab = self.tabs[index]
        pane = self.tab_view[index]
        try:
            widget = tab.make(model, image)
        except Exception as err:  # noqa: BLE001  (shown to the user; the other tabs keep working)
            self.widgets[index] = None
            pane[:] = [pn.pane.Alert(_as_text(f"{tab.title} could not be computed for {self.model_name}: "
                                              f"{type(err).__name__}: {err}"), alert_type="warning")]
            return
        self.widgets[index] = widget
        pane[:] = [pn.pane.Markdown(tab.about), to_panel(widget)] if tab.about else [to_panel(widget)]


def build_app(model: str = BUNDLED_MODELS[0], image: np.ndarray | None = None) -> pn.viewable.Viewable:
    """The workshop app's layout for one session (serve it, or call ``.servable()`` on it).

    Example:
        >>> from prisma_widgets.app import build_app
        >>> layout = build_app("mouse-vit")
        >>> [t for t in layout.workshop.tab_view._names][:2]
        ['Attention grid', 'Logit lens']
    """
    pn.extension()
    app = WorkshopApp(model=model, image=image)
    app.layout.workshop = app  # tests and callers reach the session's state from the layout
    return app.layout


def _as_text(text: str) -> str:
    """User-derived text for a Markdown pane: HTML escaped, so it shows as typed and never runs."""
    return html.escape(str(text))
