"""Linked widgets: click a head in one, the others go to the same head, in the kernel and in a saved page.

Every widget that shows heads says how its selected head is read and written (``_head_link``, plain JSON):
which traits hold the layer and the head, which values it can show, when its selection is a head at all.
:func:`link` uses that in the kernel (a trait observer per direction); :func:`prisma_widgets.save_html` puts
the same description in a page with several widgets, whose script applies it with no kernel.

The description (``HeadLink``):

* ``fields``: ``{"layer": path, "head": path}``; a path is a trait (``"layer"``) or a key of a dict trait
  (``"selected.layer"``);
* ``among``: a value must be one of this list trait's entries (``{"layer": "layer_indices"}``), when the list
  is not empty; ``count``: a value must be below this trait (an int, or a list's length);
* ``when``: traits that must hold one of these values for the selection to be a head, read or written
  (``{"by": ["head", "head_position"]}``); ``read_when``: the same, for reading only;
* ``also_set``: traits written with the head (``{"part": "head"}``).
"""

from __future__ import annotations

from typing import Any

from ._base import PrismaWidget

HeadLink = dict[str, Any]


def head_link(widget: Any) -> HeadLink:
    """The head-link description of ``widget`` (its class's ``_head_link``), or a clear error."""
    spec = getattr(type(widget), "_head_link", None)
    if not isinstance(widget, PrismaWidget) or not spec:
        raise TypeError(
            f"{type(widget).__name__} has no head selection to link; linkable widgets: LogitAttribution, "
            "AttentionGrid, PatchingHeatmap (by='head' or 'head_position')"
        )
    return spec


def _get(widget: Any, path: str) -> Any:
    trait, _, key = path.partition(".")
    value = getattr(widget, trait)
    return (value or {}).get(key) if key else value


def _holds(widget: Any, conditions: dict[str, list[Any]]) -> bool:
    return all(getattr(widget, trait) in allowed for trait, allowed in conditions.items())


def read_head(widget: Any) -> tuple[int, int] | None:
    """The ``(layer, head)`` selected in ``widget``, or ``None`` when its selection is not a head."""
    spec = head_link(widget)
    if not _holds(widget, {**spec.get("when", {}), **spec.get("read_when", {})}):
        return None
    layer, head = (_get(widget, spec["fields"][k]) for k in ("layer", "head"))
    if layer is None or head is None or int(head) < 0:
        return None
    return int(layer), int(head)


def can_show(widget: Any, layer: int, head: int) -> bool:
    """Whether ``widget`` can select that head now (a shown layer and head, a mode in which heads exist)."""
    spec = head_link(widget)
    if not _holds(widget, spec.get("when", {})):
        return False
    for key, value in (("layer", layer), ("head", head)):
        among = spec.get("among", {}).get(key)
        if among and getattr(widget, among) and value not in getattr(widget, among):
            return False
        count = spec.get("count", {}).get(key)
        if count is not None:
            limit = getattr(widget, count)
            if not 0 <= value < (len(limit) if isinstance(limit, (list, tuple)) else int(limit)):
                return False
    return True


def write_head(widget: Any, layer: int, head: int) -> bool:
    """Select ``(layer, head)`` in ``widget`` (one message to the view); ``False`` when it cannot show it."""
    if not can_show(widget, layer, head) or read_head(widget) == (layer, head):
        return False
    spec = head_link(widget)
    values: dict[str, Any] = dict(spec.get("also_set", {}))
    for key, value in (("layer", layer), ("head", head)):
        trait, _, sub = spec["fields"][key].partition(".")
        if sub:
            values[trait] = {**(values.get(trait) or getattr(widget, trait) or {}), sub: value}
        else:
            values[trait] = value
    with widget.hold_sync():
        for trait, value in values.items():
            setattr(widget, trait, value)
    return True


class Link:
    """A live link between two widgets' head selections (:func:`link` makes it; :meth:`unlink` ends it)."""

    def __init__(self, source: PrismaWidget, target: PrismaWidget, both_ways: bool = True) -> None:
        head_link(source), head_link(target)
        self.source, self.target, self.both_ways = source, target, both_ways
        self._busy = False
        self._observers: list[tuple[PrismaWidget, Any, list[str]]] = []
        self._watch(source, target)
        if both_ways:
            self._watch(target, source)
        ACTIVE.append(self)

    def _watch(self, a: PrismaWidget, b: PrismaWidget) -> None:
        spec = head_link(a)
        names = sorted({path.partition(".")[0] for path in spec["fields"].values()}
                       | set(spec.get("when", {})) | set(spec.get("read_when", {})))

        def follow(change: Any) -> None:
            if self._busy:
                return
            selected = read_head(a)
            if selected is None:
                return
            self._busy = True
            try:
                write_head(b, *selected)
            finally:
                self._busy = False

        a.observe(follow, names=names)
        self._observers.append((a, follow, names))

    def unlink(self) -> None:
        """Stop following (in the kernel; a page saved before keeps the link)."""
        for widget, fn, names in self._observers:
            widget.unobserve(fn, names=names)
        self._observers.clear()
        if self in ACTIVE:
            ACTIVE.remove(self)

    def page_spec(self, widgets: list[PrismaWidget]) -> dict[str, Any] | None:
        """This link as a saved page holds it (indices into ``widgets``), or ``None`` if a widget is not saved."""
        ids = [next((i for i, w in enumerate(widgets) if w is x), None) for x in (self.source, self.target)]
        if None in ids:
            return None
        return {"source": ids[0], "target": ids[1], "both_ways": self.both_ways}

    def __repr__(self) -> str:
        arrow = "<->" if self.both_ways else "->"
        return f"Link({type(self.source).__name__} {arrow} {type(self.target).__name__}: head selection)"


#: the links alive in this kernel (a saved page of several widgets keeps those among them)
ACTIVE: list[Link] = []


def link(source: PrismaWidget, *targets: PrismaWidget, both_ways: bool = True) -> list[Link]:
    """Link the selected head of ``source`` to each of ``targets``: click a head in one, the others follow.

    Works in the kernel (trait observers: clicks in a view reach Python, which moves the other widgets) and
    in a page saved with :func:`prisma_widgets.save_html` holding the linked widgets (the page's script
    follows the same rules, no kernel). A widget follows only heads it can show: an AttentionGrid the layers
    and heads it was built with, a PatchingHeatmap a head when its cells are heads (``by="head"`` or
    ``"head_position"``), a LogitAttribution any head (its MLP, embedding and bias cells are not heads, so
    clicking them moves nobody). ``both_ways=False``: only ``source`` leads.

    Returns the links (``link.unlink()`` ends one; until then a link keeps both widgets alive, as
    ``ipywidgets.link`` does).

    Example:
        >>> import prisma_widgets as pw
        >>> model = pw.load("mouse-vit")
        >>> image = pw.zoo.scenes(1, seed=2).images[0]
        >>> dla = pw.LogitAttribution(model, image)
        >>> grid = pw.AttentionGrid(model, image)
        >>> links = pw.link(dla, grid)
        >>> dla.layer, dla.head = 2, 3          # a click in the view does the same
        >>> grid.layer, grid.head
        (2, 3)
        >>> grid.head = 1
        >>> dla.head
        1
    """
    if not targets:
        raise TypeError("link(source, target, ...) needs at least one widget to follow source")
    made = [Link(source, t, both_ways=both_ways) for t in targets]
    selected = read_head(source)
    if selected is not None:
        for t in targets:
            write_head(t, *selected)
    return made
