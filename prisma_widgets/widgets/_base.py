"""Shared foundation of every prisma_widgets widget.

* The binary array codec: an array travels in a synced trait as ``{"view": memoryview, "dtype": str,
  "shape": [int, ...]}``. ipywidgets lifts the memoryview out of the JSON and sends it as a binary
  buffer (no base64, no copies in the JSON); the TypeScript side (``js/src/shared/codec.ts``) turns it
  back into a typed array, honouring the buffer's ``byteOffset``.
* Quantisation to ``uint8`` with one ``float32`` scale per row (:func:`quantize_rows`): the value
  ``x`` is sent as ``q = round(x / s)`` with ``s = max(row) / 255`` and read back as ``q * s``, so
  ``|x - q * s| <= s / 2 = max(row) / 510``. Colour maps have 256 entries, so when the colour range is
  the row's own range this is at most half a colour step: nothing visible is lost.
* :class:`PrismaWidget`: the base class (theme, colour map, title, PNG export in the view) and
  :meth:`PrismaWidget.save_html`, which writes one self-contained HTML file.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import pathlib
import re
import zlib
from collections.abc import Sequence
from typing import Any, ClassVar

import anywidget
import numpy as np
import traitlets

STATIC_DIR = pathlib.Path(__file__).resolve().parent.parent / "static"

#: dtypes the TypeScript codec understands (``js/src/shared/codec.ts``)
SUPPORTED_DTYPES = (
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "float16",
    "float32",
    "float64",
)

COLORMAPS = ("viridis", "magma", "cividis", "greys", "puor", "rdbu")
THEMES = ("auto", "light", "dark")

_BUILD_HINT = "cd js && npm ci && npm run build"


# --------------------------------------------------------------------------------------------------
# codec
# --------------------------------------------------------------------------------------------------
def _to_numpy(x: Any) -> np.ndarray:
    """A numpy array from a numpy array, a torch tensor (any device, any dtype) or a nested list."""
    if isinstance(x, np.ndarray):
        return x
    detach = getattr(x, "detach", None)
    if detach is not None:  # torch.Tensor, without importing torch
        t = detach().cpu()
        if str(t.dtype) in ("torch.bfloat16",):
            t = t.float()
        return t.numpy()
    return np.asarray(x)


def encode_array(x: Any, dtype: str | np.dtype | None = None) -> dict[str, Any]:
    """Pack an array for a synced trait: ``{"view": memoryview, "dtype": "float32", "shape": [...]}``.

    The bytes are C-contiguous and little-endian, whatever the input. ``dtype`` casts first.
    """
    a = _to_numpy(x)
    if dtype is not None:
        a = a.astype(dtype, copy=False)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    name = a.dtype.name
    if name not in SUPPORTED_DTYPES:
        raise TypeError(f"dtype {name!r} cannot be sent to the front end; use one of {SUPPORTED_DTYPES}")
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    return {"view": memoryview(a.reshape(-1).view(np.uint8)), "dtype": name, "shape": [int(s) for s in a.shape]}


def decode_array(obj: dict[str, Any] | None) -> np.ndarray | None:
    """Inverse of :func:`encode_array`. ``view`` may be a memoryview, bytes, bytearray or base64 text."""
    if obj is None or not obj:
        return None
    view = obj["view"]
    if isinstance(view, str):
        raw: bytes | memoryview = base64.b64decode(view)
    elif isinstance(view, memoryview):
        raw = view.cast("B") if view.format != "B" or view.ndim != 1 else view
    else:
        raw = bytes(view)
    dt = np.dtype(obj["dtype"]).newbyteorder("<")
    return np.frombuffer(raw, dtype=dt).reshape(obj["shape"]).astype(dt.newbyteorder("="), copy=False)


def ArrayTrait(**kwargs: Any) -> traitlets.Dict:  # noqa: N802  (reads like a trait type)
    """A synced trait holding one encoded array (or ``{}`` for none)."""
    return traitlets.Dict(default_value={}, **kwargs).tag(sync=True)


# --------------------------------------------------------------------------------------------------
# quantisation
# --------------------------------------------------------------------------------------------------
def quantize_rows(x: Any, levels: int = 255) -> tuple[np.ndarray, np.ndarray]:
    """Quantise non-negative values along the last axis to ``uint8``, one ``float32`` scale per row.

    Returns ``(q, scale)`` with ``q.shape == x.shape`` and ``scale.shape == x.shape[:-1]``. The value is
    recovered as ``q * scale[..., None]`` with ``|error| <= scale / 2 = max(row) / 510`` (plus float32
    rounding, below ``1e-7`` relative). A row of zeros gets ``scale = 0``. Negative inputs are clipped
    to zero (attention patterns and probabilities never have them).
    """
    a = np.asarray(_to_numpy(x), dtype=np.float32)
    a = np.clip(a, 0.0, None)
    top = a.max(axis=-1) if a.shape[-1] else np.zeros(a.shape[:-1], np.float32)
    scale = (top / np.float32(levels)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1.0))
    q = np.rint(a / safe[..., None])
    q = np.clip(q, 0, levels).astype(np.uint8)
    return q, scale


def dequantize_rows(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``q * scale`` as float32 (inverse of :func:`quantize_rows`, up to its bound)."""
    return q.astype(np.float32) * np.asarray(scale, dtype=np.float32)[..., None]


# --------------------------------------------------------------------------------------------------
# bundles
# --------------------------------------------------------------------------------------------------
def _missing_bundle_esm(name: str) -> str:
    msg = json.dumps(f"prisma_widgets: the front-end bundle {name}.js is not built. Run: {_BUILD_HINT}")
    return (
        "export function render({ el }) { const p = document.createElement('pre');"
        f" p.textContent = {msg}; el.appendChild(p); }}\nexport default {{ render }};\n"
    )


def bundle_esm(name: str) -> pathlib.Path | str:
    """The widget's ES module for anywidget: the built file, or a module that says how to build it."""
    path = STATIC_DIR / f"{name}.js"
    return path if path.exists() else _missing_bundle_esm(name)


def bundle_css(name: str) -> pathlib.Path | str:
    path = STATIC_DIR / f"{name}.css"
    return path if path.exists() else ""


def _read_static(filename: str) -> str:
    path = STATIC_DIR / filename
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: build the front end first ({_BUILD_HINT})")
    return path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# standalone HTML
# --------------------------------------------------------------------------------------------------
def json_for_script(obj: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` become ``\\u003c`` etc., so no user string (``</script>``, ``<!--``) can end the
    element or change how the HTML parser reads it; ``JSON.parse`` gives the original text back.
    """
    text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def script_safe_js(code: str) -> str:
    """Make bundled JavaScript safe to inline in a ``<script>`` element.

    ``</script`` can only occur inside a string, template or regular-expression literal in our bundles,
    where ``<\\/script`` means the same; ``<!--`` and ``<script`` must not occur at all (they would switch
    the HTML parser into its "escaped" states).
    """
    code = re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)
    lowered = code.lower()
    if "<!--" in lowered or "<script" in lowered:
        raise ValueError("bundle contains '<!--' or '<script', which cannot be inlined safely")
    return code


def _csp_hash(code: str) -> str:
    digest = hashlib.sha256(code.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# Runs in the saved page: rebuilds the binary buffers, provides a model with anywidget's interface
# (get / set / on / off / save_changes / send) and calls the widget's render(). Plain ES2017, no
# globals beyond the widget registry, no DOM ids.
_BOOTSTRAP_JS = r"""
(function () {
  "use strict";
  var script = document.currentScript;
  var host = script.parentNode.querySelector(".pw-standalone-host");
  var dataEl = script.parentNode.querySelector("script.pw-state");
  function fail(err) {
    var pre = document.createElement("pre");
    pre.className = "pw-error";
    pre.textContent = "prisma_widgets: could not render this widget: " + (err && err.message ? err.message : err);
    host.appendChild(pre);
    if (window.console) console.error(err);
  }
  function b64(text) {
    var bin = atob(text), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function inflate(bytes) {
    if (typeof DecompressionStream === "undefined") {
      return Promise.reject(new Error("this browser has no DecompressionStream; open the file in a current browser"));
    }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer().then(function (b) { return new Uint8Array(b); });
  }
  function setPath(obj, path, value) {
    for (var i = 0; i < path.length - 1; i++) obj = obj[path[i]];
    obj[path[path.length - 1]] = value;
  }
  function makeModel(state) {
    var handlers = {};
    function names(ev) { return String(ev).split(/\s+/).filter(Boolean); }
    function emit(name, args) {
      (handlers[name] || []).slice().forEach(function (h) { h.cb.apply(h.ctx, args); });
    }
    return {
      get: function (k) { return state[k]; },
      set: function (k, v) {
        if (k !== null && typeof k === "object") {
          var self = this;
          Object.keys(k).forEach(function (key) { self.set(key, k[key]); });
          return;
        }
        var old = state[k];
        state[k] = v;
        if (old !== v) { emit("change:" + k, [this, v]); emit("change", [this]); }
      },
      on: function (ev, cb, ctx) {
        names(ev).forEach(function (n) { (handlers[n] = handlers[n] || []).push({ cb: cb, ctx: ctx }); });
      },
      off: function (ev, cb) {
        var list = ev ? names(ev) : Object.keys(handlers);
        list.forEach(function (n) {
          handlers[n] = cb ? (handlers[n] || []).filter(function (h) { return h.cb !== cb; }) : [];
        });
      },
      save_changes: function () {},
      send: function () {},
      widget_manager: { get_model: function () { return Promise.reject(new Error("no kernel")); } }
    };
  }
  try {
    var payload = JSON.parse(dataEl.textContent);
    var widget = (window.__prisma_widgets || {})[payload.widget];
    if (!widget) throw new Error("bundle for " + payload.widget + " is missing");
    var state = payload.state;
    Promise.all(payload.buffers.map(function (b) {
      var bytes = b64(b.data);
      return (b.encoding === "deflate" ? inflate(bytes) : Promise.resolve(bytes)).then(function (u8) {
        setPath(state, b.path, new DataView(u8.buffer, u8.byteOffset, u8.byteLength));
      });
    })).then(function () {
      var model = makeModel(state);
      if (widget.initialize) widget.initialize({ model: model });
      return widget.render({ model: model, el: host, experimental: {} });
    }).catch(fail);
  } catch (err) {
    fail(err);
  }
})();
"""

_HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="generator" content="prisma_widgets {version}">
<title>{title}</title>
<style>
html, body {{ margin: 0; padding: 0; }}
body {{ padding: 12px; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }}
@media (prefers-color-scheme: dark) {{ body {{ background: #111418; color: #e6e6e6; }} }}
{css}
</style>
</head>
<body>
<div class="pw-standalone-host"></div>
<script type="application/json" class="pw-state">{state}</script>
<script>{bundle}</script>
<script>{bootstrap}</script>
</body>
</html>
"""

# ipywidgets' own bookkeeping traits; not part of what a widget draws
_INTERNAL_TRAITS = {
    "_esm",
    "_css",
    "_anywidget_id",
    "_dom_classes",
    "_model_module",
    "_model_module_version",
    "_model_name",
    "_view_count",
    "_view_module",
    "_view_module_version",
    "_view_name",
    "comm",
    "keys",
    "layout",
    "log",
    "tabbable",
    "tooltip",
}


def _standalone_state(widget: anywidget.AnyWidget, compress: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from ipywidgets.widgets.widget import _remove_buffers

    keys = [k for k in widget.keys if k not in _INTERNAL_TRAITS]
    state = widget.get_state(key=keys)
    state, paths, buffers = _remove_buffers(state)
    out = []
    for path, buf in zip(paths, buffers):
        raw = bytes(buf)
        encoding = "raw"
        if compress and len(raw) > 1024:
            packed = zlib.compress(raw, 6)
            if len(packed) < 0.9 * len(raw):
                raw, encoding = packed, "deflate"
        out.append({"path": list(path), "encoding": encoding, "data": base64.b64encode(raw).decode("ascii")})
    return state, out


def _first_non_finite(obj: Any, where: str = "") -> tuple[str, float] | None:
    """The path (``"vmax"``, ``"meta['scale'][2]"``) and value of the first NaN or infinity in ``obj``."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return where, obj
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for key, value in items:
        found = _first_non_finite(value, f"{where}[{key!r}]" if where else str(key))
        if found is not None:
            return found
    return None


def write_standalone_html(
    widget: anywidget.AnyWidget,
    name: str,
    path: str | pathlib.Path,
    title: str | None = None,
    compress: bool = True,
) -> pathlib.Path:
    """Write ``widget`` as one self-contained HTML file (see :meth:`PrismaWidget.save_html`)."""
    from prisma_widgets import __version__

    state, buffers = _standalone_state(widget, compress)
    bad = _first_non_finite(state)
    if bad is not None:
        where, value = bad
        raise ValueError(
            f"{type(widget).__name__}.{where} is {value}, which a saved page cannot hold (JSON has no NaN or "
            "infinity); set it to a finite number or None before save_html"
        )
    payload = {"widget": name, "state": state, "buffers": buffers}
    bundle = script_safe_js(_read_static(f"{name}.standalone.js"))
    css = _read_static(f"{name}.css") if (STATIC_DIR / f"{name}.css").exists() else ""
    if "</style" in css.lower():
        raise ValueError("stylesheet cannot be inlined safely")
    bootstrap = _BOOTSTRAP_JS.strip()
    # Only our two scripts may run: an injected <script> or onerror= attribute is refused by the
    # browser even if some text ever reached the DOM as HTML.
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src {_csp_hash(bundle)} {_csp_hash(bootstrap)}",
            "style-src 'unsafe-inline'",
            "img-src data: blob:",
            "font-src data:",
        ]
    )
    doc_title = title if title is not None else (getattr(widget, "title", "") or f"prisma_widgets {name}")
    page = _HTML_TEMPLATE.format(
        csp=csp,
        version=html.escape(__version__),
        title=html.escape(str(doc_title)),
        css=css,
        state=json_for_script(payload),
        bundle=bundle,
        bootstrap=bootstrap,
    )
    out = pathlib.Path(path)
    out.write_text(page, encoding="utf-8")
    return out


# --------------------------------------------------------------------------------------------------
# base widget
# --------------------------------------------------------------------------------------------------
class PrismaWidget(anywidget.AnyWidget):
    """Base class: theme, colour map, title, and export to a standalone HTML file.

    Subclasses set ``_widget_name`` (the entry ``js/src/<name>.ts``) and set ``_esm = bundle_esm(name)``
    and ``_css = bundle_css(name)``.
    """

    _widget_name: ClassVar[str] = ""

    #: "auto" follows the host (JupyterLab, VS Code, Colab, the browser's prefers-color-scheme)
    theme = traitlets.Unicode("auto").tag(sync=True)
    #: colour map for the values: viridis, magma, cividis, greys (sequential), puor, rdbu (diverging)
    colormap = traitlets.Unicode("viridis").tag(sync=True)
    #: a title above the view; shown as text, never as HTML
    title = traitlets.Unicode("").tag(sync=True)

    @traitlets.validate("theme")
    def _check_theme(self, proposal: Any) -> str:
        value = proposal["value"]
        if value not in THEMES:
            raise traitlets.TraitError(f"theme must be one of {THEMES}, not {value!r}")
        return value

    @traitlets.validate("colormap")
    def _check_colormap(self, proposal: Any) -> str:
        value = str(proposal["value"]).lower()
        if value not in COLORMAPS:
            raise traitlets.TraitError(f"colormap must be one of {COLORMAPS}, not {proposal['value']!r}")
        return value

    def _apply_options(self, traits: dict[str, Any]) -> None:
        """Set the constructor's extra keyword arguments as traits; a name that is no public trait is refused."""
        unknown = [k for k in traits if not self.has_trait(k) or k.startswith("_")]
        if unknown:
            raise TypeError(f"{type(self).__name__} has no option(s) {unknown}")
        with self.hold_trait_notifications():
            for k, v in traits.items():
                setattr(self, k, v)

    def save_html(self, path: str | pathlib.Path, title: str | None = None, compress: bool = True) -> pathlib.Path:
        """Write this widget, as it is now, to ONE self-contained HTML file.

        The bundle and the state are inlined (binary arrays as base64, deflated when that helps); the page
        needs no kernel, no network and no CDN, and works from ``file://`` and inside an ``<iframe>``. Every
        client-side interaction keeps working; changes just don't go back to Python. User text is
        escaped so it cannot break out of the page's ``<script>`` elements, and a Content-Security-Policy
        lets only the page's own two scripts run.
        """
        return write_standalone_html(self, self._widget_name, path, title=title, compress=compress)


def check_choice(value: Any, choices: Sequence[str], name: str) -> str:
    if value not in choices:
        raise traitlets.TraitError(f"{name} must be one of {tuple(choices)}, not {value!r}")
    return str(value)


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
