"""One self-contained HTML file per widget: the bundle and the state inlined, no CDN, no kernel.

:func:`write_standalone_html` is what :meth:`PrismaWidget.save_html` calls. The page holds the widget's
synced state (binary arrays as base64, deflated when that helps) in a ``<script type="application/json">``,
the widget's classic-script bundle, and a small bootstrap that gives the view anywidget's model interface.
A Content-Security-Policy lets only those two scripts run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import pathlib
import re
import zlib
from typing import Any

import anywidget

from ..files import atomic_write_text

STATIC_DIR = pathlib.Path(__file__).resolve().parent.parent / "static"
BUILD_HINT = "cd js && npm ci && npm run build"

# --------------------------------------------------------------------------------------------------
# bundles
# --------------------------------------------------------------------------------------------------
def _missing_bundle_esm(name: str) -> str:
    msg = json.dumps(f"prisma_widgets: the front-end bundle {name}.js is not built. Run: {BUILD_HINT}")
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


def read_static(filename: str) -> str:
    path = STATIC_DIR / filename
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: build the front end first ({BUILD_HINT})")
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


def csp_hash(code: str) -> str:
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

# Runs in the saved page when it is inside a frame (a docs page, a blog post): tells the page around it how
# tall this page's content is, so the frame can be sized to the widget instead of clipping it or leaving a
# gap ({prisma_widgets: "height", height: px}, posted to the parent only; nothing else is sent). Followed
# when the content grows or shrinks (a card opened, a panel folded). The parent decides what to do with it.
FRAME_HEIGHT_JS = r"""
(function () {
  "use strict";
  if (window.parent === window || typeof ResizeObserver !== "function") return;
  var last = 0;
  function report() {
    var h = Math.ceil(document.body.getBoundingClientRect().height);
    if (h > 0 && Math.abs(h - last) > 1) {
      last = h;
      window.parent.postMessage({ prisma_widgets: "height", height: h }, "*");
    }
  }
  new ResizeObserver(report).observe(document.body);
  report();
  // the page around may start listening after this first report (an <iframe srcdoc> loads at once): it asks
  window.addEventListener("message", function (ev) {
    if (ev.source === window.parent && ev.data && ev.data.prisma_widgets === "height?") { last = 0; report(); }
  });
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
INTERNAL_TRAITS = {
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


BINARY = (memoryview, bytes, bytearray)


def split_buffers(state: Any, path: list[Any] | None = None) -> tuple[Any, list[list[Any]], list[Any]]:
    """``(state without binary values, their paths, the binary values)``: a dict key holding bytes is dropped,
    a list entry becomes ``None`` (the page puts each buffer back at its path). ``state`` is not modified."""
    path = [] if path is None else path
    paths: list[list[Any]] = []
    buffers: list[Any] = []
    if isinstance(state, dict):
        out: dict[str, Any] = {}
        for k, v in state.items():
            if isinstance(v, BINARY):
                paths.append(path + [k])
                buffers.append(v)
            else:
                out[k], sub_paths, sub_buffers = split_buffers(v, path + [k])
                paths += sub_paths
                buffers += sub_buffers
        return out, paths, buffers
    if isinstance(state, (list, tuple)):
        items: list[Any] = []
        for i, v in enumerate(state):
            if isinstance(v, BINARY):
                paths.append(path + [i])
                buffers.append(v)
                items.append(None)
            else:
                item, sub_paths, sub_buffers = split_buffers(v, path + [i])
                items.append(item)
                paths += sub_paths
                buffers += sub_buffers
        return items, paths, buffers
    return state, paths, buffers


def standalone_state(widget: anywidget.AnyWidget, compress: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The state a saved page holds (the widget's ``_saved_state`` of its synced traits) and its buffers."""
    keys = [k for k in widget.keys if k not in INTERNAL_TRAITS]
    state = widget.get_state(key=keys)
    saved = getattr(widget, "_saved_state", None)
    if saved is not None:
        state = saved(state)
    state, paths, buffers = split_buffers(state)
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


def first_non_finite(obj: Any, where: str = "") -> tuple[str, float] | None:
    """The path (``"vmax"``, ``"meta['scale'][2]"``) and value of the first NaN or infinity in ``obj``."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return where, obj
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for key, value in items:
        found = first_non_finite(value, f"{where}[{key!r}]" if where else str(key))
        if found is not None:
            return found
    return None


def standalone_page(widget: anywidget.AnyWidget, name: str, title: str | None = None, compress: bool = True) -> str:
    """The text of ``widget``'s self-contained HTML page (what :func:`write_standalone_html` writes)."""
    from prisma_widgets import __version__

    state, buffers = standalone_state(widget, compress)
    bad = first_non_finite(state)
    if bad is not None:
        where, value = bad
        raise ValueError(
            f"{type(widget).__name__}.{where} is {value}, which a saved page cannot hold (JSON has no NaN or "
            "infinity); set it to a finite number or None before save_html"
        )
    payload = {"widget": name, "state": state, "buffers": buffers}
    bundle = script_safe_js(read_static(f"{name}.standalone.js"))
    css = read_static(f"{name}.css") if (STATIC_DIR / f"{name}.css").exists() else ""
    if "</style" in css.lower():
        raise ValueError("stylesheet cannot be inlined safely")
    bootstrap = _BOOTSTRAP_JS.strip() + "\n" + FRAME_HEIGHT_JS.strip()
    # Only our two scripts may run: an injected <script> or onerror= attribute is refused by the
    # browser even if some text ever reached the DOM as HTML.
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src {csp_hash(bundle)} {csp_hash(bootstrap)}",
            "style-src 'unsafe-inline'",
            "img-src data: blob:",
            "font-src data:",
        ]
    )
    doc_title = title if title is not None else (getattr(widget, "title", "") or f"prisma_widgets {name}")
    return _HTML_TEMPLATE.format(
        csp=csp,
        version=html.escape(__version__),
        title=html.escape(str(doc_title)),
        css=css,
        state=json_for_script(payload),
        bundle=bundle,
        bootstrap=bootstrap,
    )


def write_standalone_html(
    widget: anywidget.AnyWidget,
    name: str,
    path: str | pathlib.Path,
    title: str | None = None,
    compress: bool = True,
) -> pathlib.Path:
    """Write ``widget`` as one self-contained HTML file (see :meth:`PrismaWidget.save_html`)."""
    out = pathlib.Path(path)
    if out.is_dir():
        raise IsADirectoryError(f"{str(out)!r} is a folder; pass the path of the HTML file to write, e.g. "
                                f"{str(out / (name + '.html'))!r}")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"no folder {str(out.parent)!r} to write {out.name!r} into; create it first "
                                "(os.makedirs) or choose another path")
    page = standalone_page(widget, name, title=title, compress=compress)
    atomic_write_text(str(out), page, what="a saved widget page")
    return out


# ---------------------------------------------------------------------------------------------------
# the static fallback a rendered notebook shows (the docs' tutorials)
# ---------------------------------------------------------------------------------------------------
#: set to "1" and a widget's display also carries ``text/html``: its saved page in a sandboxed iframe. A
#: notebook rendered without widget state (nbconvert, the docs' tutorials) then shows the widget working.
STATIC_HTML_ENV = "PRISMA_WIDGETS_STATIC_HTML"


def static_html_wanted() -> bool:
    return os.environ.get(STATIC_HTML_ENV, "") == "1"


def static_iframe(page: str, title: str, height: int = 640) -> str:
    """``page`` in a sandboxed ``<iframe srcdoc>``: scripts run, but in an opaque origin with no access to
    the page around it. ``class="pw-embed"``: docs/javascripts/pw_embeds.js sizes it to the height the
    saved page posts."""
    return (
        f'<iframe class="pw-embed pw-static" sandbox="allow-scripts" title="{html.escape(title)}" '
        f'style="width: 100%; height: {int(height)}px; border: 1px solid #8884;" '
        f'srcdoc="{html.escape(page, quote=True)}"></iframe>'
    )
