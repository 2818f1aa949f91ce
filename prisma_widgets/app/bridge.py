"""Show a prisma_widgets widget in Panel through Panel's own anywidget host.

Panel renders anywidget front-end modules (the AFM ``render({model, el})`` contract) with
:class:`panel.custom.AnyWidgetComponent`, served by the Panel server itself: no notebook, no CDN.
:func:`to_panel` makes one such component per widget class (the same ``_esm`` and ``_css`` the notebook
loads) with one parameter per synced trait, and keeps the widget and the component in step both ways:
a click in the page sets the trait in Python (so a widget that recomputes on a trait change, like
``LogitLens`` on ``prompts``, does so), and a trait set in Python reaches the page.

Panel's ``IPyWidget`` pane (``pn.panel(widget)``) would need ``ipywidgets_bokeh``, which fetches the
``anywidget`` front end from a CDN at run time, so it cannot work offline; this bridge can.
"""

from __future__ import annotations

import pathlib
from typing import Any

import param
import traitlets
from panel.custom import AnyWidgetComponent

from prisma_widgets.widgets.standalone import INTERNAL_TRAITS, bundle_css, bundle_esm

_COMPONENTS: dict[type, type[AnyWidgetComponent]] = {}

#: Panel layout parameters a widget trait may take over: redeclared with another parameter type, Panel sends
#: them to the front end as the widget's data (what the widget's ``model.get`` reads), not as layout.
LAYOUT_OVERRIDABLE = frozenset({"visible"})


def synced_traits(widget_cls: type) -> list[str]:
    """The names of a widget class's synced data and selection traits (not ipywidgets' own)."""
    return sorted(n for n in widget_cls.class_trait_names(sync=True) if n not in INTERNAL_TRAITS)


def _to_wire(value: Any) -> Any:
    """Trait value -> parameter value: bytes for binary views (Bokeh sends them as binary buffers)."""
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, dict):
        return {k: _to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_wire(v) for v in value]
    return value


def component_class(widget_cls: type) -> type[AnyWidgetComponent]:
    """The Panel ``AnyWidgetComponent`` subclass for a widget class (made once, then cached)."""
    if widget_cls in _COMPONENTS:
        return _COMPONENTS[widget_cls]
    names = synced_traits(widget_cls)
    clash = set(names) & set(AnyWidgetComponent.param)
    if clash - LAYOUT_OVERRIDABLE:
        raise TypeError(f"{widget_cls.__name__} traits {sorted(clash)} clash with Panel's own parameters")
    bundle = widget_cls._widget_name
    css = bundle_css(bundle)
    body: dict[str, Any] = {name: param.Parameter(default=None, allow_refs=False) for name in names}
    esm = bundle_esm(bundle)
    body["_esm"] = esm
    if isinstance(esm, pathlib.Path):
        # A built bundle: Panel sends it as it is. Without ``_bundle`` Panel transpiles the module in the
        # browser (sucrase), which breaks minified code. ``__path__`` tells Panel where the file lies; a
        # ``__module__`` that is not imported makes Panel inline the file instead of serving it by URL
        # from the module's folder (where it is not).
        body["_bundle"] = esm
        body["__path__"] = str(esm.parent)
        body["__module__"] = f"{__name__}.hosted"
    body["_stylesheets"] = [css.read_text(encoding="utf-8") if isinstance(css, pathlib.Path) else css]
    body["__doc__"] = f"Panel host for :class:`{widget_cls.__module__}.{widget_cls.__name__}`."
    cls = type(f"Panel{widget_cls.__name__}", (AnyWidgetComponent,), body)
    _COMPONENTS[widget_cls] = cls
    return cls


def to_panel(widget: Any, **layout: Any) -> AnyWidgetComponent:
    """A Panel component that shows ``widget`` and stays linked to it both ways.

    ``layout``: Panel layout options (``sizing_mode``, ``margin``, ...).

    Example:
        >>> import prisma_widgets as pw
        >>> from prisma_widgets import zoo
        >>> from prisma_widgets.app.bridge import to_panel
        >>> w = pw.AttentionGrid(pw.load("mouse-vit"), zoo.scenes(1, seed=0).images[0])
        >>> view = to_panel(w)
        >>> view.layer = 2          # the page sets this when clicked
        >>> w.layer
        2
        >>> w.head = 1              # and Python reaches the page
        >>> view.head
        1
    """
    cls = component_class(type(widget))
    names = synced_traits(type(widget))
    view = cls(**{n: _to_wire(getattr(widget, n)) for n in names}, **layout)
    busy: set[str] = set()

    def to_view(change: dict[str, Any]) -> None:
        name = change["name"]
        if name in busy:
            return
        busy.add(name)
        try:
            setattr(view, name, _to_wire(change["new"]))
        finally:
            busy.discard(name)

    def to_widget(*events: param.parameterized.Event) -> None:
        for event in events:
            if event.name in busy:
                continue
            busy.add(event.name)
            try:
                setattr(widget, event.name, event.new)
            except traitlets.TraitError:
                pass  # refused by the widget's validator
            finally:
                busy.discard(event.name)
            now = _to_wire(getattr(widget, event.name))
            if now != event.new:  # refused, normalised or reverted by the widget: the page shows Python's value
                setattr(view, event.name, now)

    widget.observe(to_view, names=names)
    view.param.watch(to_widget, names)
    view._pw_widget = widget  # keep the widget (and its model) alive as long as the view
    return view


__all__ = ["component_class", "synced_traits", "to_panel"]
