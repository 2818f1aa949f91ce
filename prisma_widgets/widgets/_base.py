"""What every prisma_widgets widget shares: :class:`PrismaWidget` and its construction protocol.

A widget has two constructors: from a model and images (it computes), and from arrays (it displays what the
user computed). Both end in the same place, :meth:`PrismaWidget._init_traits`: the synced state arrives
complete, so no observer recomputes anything while it lands. The protocol:

* ``_init_private()``: the plain (non-trait) attributes, set first by both constructors;
* ``_from_state(state, options, **private)``: a widget built from precomputed state (the "from arrays" path);
* ``_quiet()``: a context in which trait changes do not make observers recompute (``_is_quiet``);
* ``_saved_state(state)`` and ``_prepare_save()``: what a saved page holds, where it differs from the live
  widget (no kernel there: controls that need one are disabled and say so).

The codec (:mod:`.codec`) and the saved-page writer (:mod:`.standalone`) are re-exported here.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, TypeVar

import anywidget
import traitlets

from .codec import (
    SUPPORTED_DTYPES,
    ArrayTrait,
    decode_array,
    dequantize_rows,
    encode_array,
    quantize_rows,
    to_numpy,
)
from .standalone import (
    STATIC_DIR,
    bundle_css,
    bundle_esm,
    first_non_finite,
    json_for_script,
    script_safe_js,
    standalone_page,
    static_html_wanted,
    static_iframe,
    write_standalone_html,
)

__all__ = [
    "COLORMAPS", "STATIC_DIR", "SUPPORTED_DTYPES", "THEMES", "ArrayTrait", "PrismaWidget", "bundle_css",
    "bundle_esm", "check_position", "check_shown", "decode_array", "dequantize_rows", "encode_array",
    "first_non_finite", "json_for_script", "quantize_rows", "script_safe_js", "to_numpy", "write_standalone_html",
]

COLORMAPS = ("viridis", "magma", "cividis", "greys", "puor", "rdbu")
THEMES = ("auto", "light", "dark")

W = TypeVar("W", bound="PrismaWidget")


class PrismaWidget(anywidget.AnyWidget):
    """Base class: theme, colour map, title, the model's name (``model_name``, which a PNG export's caption
    shows), the construction protocol, and export to a standalone HTML file.

    Subclasses set ``_widget_name`` (the entry ``js/src/<name>.ts``), ``_esm = bundle_esm(name)`` and
    ``_css = bundle_css(name)``.
    """

    _widget_name: ClassVar[str] = ""
    #: open ``_quiet()`` blocks; observers that recompute return early while there are any
    _quiet_depth: int = 0

    #: "auto" follows the host (JupyterLab, VS Code, Colab, the browser's prefers-color-scheme)
    theme = traitlets.Enum(THEMES, default_value="auto").tag(sync=True)
    #: colour map for the values: viridis, magma, cividis, greys (sequential), puor, rdbu (diverging)
    colormap = traitlets.CaselessStrEnum(COLORMAPS, default_value="viridis").tag(sync=True)
    #: a title above the view; shown as text, never as HTML
    title = traitlets.Unicode("").tag(sync=True)
    #: the model the view shows, named in a PNG export's caption (set by the from-model constructors); text
    model_name = traitlets.Unicode("").tag(sync=True)

    # ----- construction -----
    def _init_private(self) -> None:
        """Set the plain (non-trait) attributes to their defaults; both constructors call this first."""

    def _init_traits(self, state: dict[str, Any]) -> None:
        """Initialise the traits from complete state (layout before selection, in dict order), quietly."""
        with self._quiet():
            anywidget.AnyWidget.__init__(self, **state)

    @classmethod
    def _from_state(cls: type[W], state: dict[str, Any], options: dict[str, Any] | None = None, **private: Any) -> W:
        """A widget from precomputed synced ``state``: no model runs. ``private`` sets plain attributes after
        ``_init_private``; ``options`` are the user's keyword arguments, checked as public traits."""
        widget = cls.__new__(cls)
        widget._init_private()
        for name, value in private.items():
            setattr(widget, name, value)
        widget._init_traits(state)
        widget._apply_options(options or {})
        return widget

    def _apply_options(self, traits: dict[str, Any]) -> None:
        """Set the constructor's extra keyword arguments as traits; a name that is no public trait is refused."""
        unknown = [k for k in traits if not self.has_trait(k) or k.startswith("_")]
        if unknown:
            raise TypeError(f"{type(self).__name__} has no option(s) {unknown}")
        with self.hold_trait_notifications():
            for k, v in traits.items():
                setattr(self, k, v)

    # ----- quiet updates -----
    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Trait changes inside this block land without observers recomputing (state that arrives complete,
        or a value put back after a failed change)."""
        self._quiet_depth += 1
        try:
            yield
        finally:
            self._quiet_depth -= 1

    @property
    def _is_quiet(self) -> bool:
        return self._quiet_depth > 0

    def _set_quietly(self, values: dict[str, Any]) -> None:
        """Set several traits at once, in one message to the view, without observers recomputing."""
        with self._quiet(), self.hold_sync():
            for k, v in values.items():
                setattr(self, k, v)

    # ----- saved pages -----
    def _prepare_save(self) -> None:
        """Compute what a saved page needs beyond the live state (called by :meth:`save_html` first)."""

    def _saved_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """The synced state as a saved page holds it (no kernel there); the default is the live state."""
        return state

    def save_html(self, path: str | pathlib.Path, title: str | None = None, compress: bool = True) -> pathlib.Path:
        """Write this widget, as it is now, to ONE self-contained HTML file.

        The bundle and the state are inlined (binary arrays as base64, deflated when that helps); the page
        needs no kernel, no network and no CDN, and works from ``file://`` and inside an ``<iframe>``. Every
        client-side interaction keeps working; changes just don't go back to Python. User text is
        escaped so it cannot break out of the page's ``<script>`` elements, and a Content-Security-Policy
        lets only the page's own two scripts run.
        """
        self._prepare_save()
        return write_standalone_html(self, self._widget_name, path, title=title, compress=compress)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget view, and with ``PRISMA_WIDGETS_STATIC_HTML=1`` also ``text/html``: this widget's saved
        page in a sandboxed iframe, which a notebook rendered without widget state shows (the docs build
        sets it while it executes the tutorials). Live notebooks don't set it: their files stay small."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None or not static_html_wanted():
            return bundle
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, None)  # (data, metadata) or data
        self._prepare_save()
        name = type(self).__name__
        page = standalone_page(self, self._widget_name, title=self.title or f"prisma_widgets {name}")
        data = {**data, "text/html": static_iframe(page, title=f"{name} (saved page)")}
        return (data, metadata) if isinstance(bundle, tuple) else data


def check_shown(value: Any, shown: Sequence[int], name: str) -> int:
    """``value`` as an int that is one of the ``shown`` indices (anything goes while nothing is shown yet)."""
    v = int(value)
    if shown and v not in shown:
        raise traitlets.TraitError(f"{name} {v} is not shown; shown {name}s: {list(shown)}")
    return v


def check_position(value: Any, count: int, name: str, what: str = "position") -> int:
    """``value`` as an int in ``[0, count)`` (anything goes while ``count`` is 0, i.e. before the data)."""
    v = int(value)
    if count and not 0 <= v < count:
        raise traitlets.TraitError(f"{name} must be a {what} in [0, {count})")
    return v
