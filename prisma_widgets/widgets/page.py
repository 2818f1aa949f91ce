"""Several widgets in ONE self-contained HTML page, with their links: :func:`save_html`.

The page holds each widget's saved state (as :meth:`PrismaWidget.save_html` would), each widget type's
bundle once, and a script that renders them and applies the links made with :func:`prisma_widgets.link`
among them: click a head in one, the others go there, with no kernel. No CDN, no network; a
Content-Security-Policy lets only the page's own scripts run; user text is rendered as text.
"""

from __future__ import annotations

import html
import json
import pathlib
from collections.abc import Sequence
from typing import Any

from ._base import PrismaWidget, json_for_script, script_safe_js
from .link import ACTIVE, Link, head_link
from .standalone import FRAME_HEIGHT_JS, STATIC_DIR, csp_hash, first_non_finite, read_static, standalone_state

# Renders every widget of the page and applies the links. Plain ES2017, no globals beyond the widget
# registry, no DOM ids. The models are anywidget's interface over plain state (as in a one-widget page).
_PAGE_JS = r"""
(function () {
  "use strict";
  var script = document.currentScript;
  var page = script.parentNode;
  var payload = JSON.parse(page.querySelector("script.pw-page-state").textContent);
  var hosts = page.querySelectorAll(".pw-page-item > .pw-standalone-host");
  function fail(host, err) {
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
  function load(item) {
    return Promise.all(item.buffers.map(function (b) {
      var bytes = b64(b.data);
      return (b.encoding === "deflate" ? inflate(bytes) : Promise.resolve(bytes)).then(function (u8) {
        setPath(item.state, b.path, new DataView(u8.buffer, u8.byteOffset, u8.byteLength));
      });
    })).then(function () { return makeModel(item.state); });
  }
  // ----- the head links (the rules of prisma_widgets/widgets/link.py) -----
  function read(m, path) {
    var parts = path.split("."), v = m.get(parts[0]);
    return parts.length > 1 ? (v || {})[parts[1]] : v;
  }
  function holds(m, cond) {
    return Object.keys(cond || {}).every(function (k) { return cond[k].indexOf(m.get(k)) >= 0; });
  }
  function readHead(m, spec) {
    if (!holds(m, spec.when) || !holds(m, spec.read_when)) return null;
    var layer = read(m, spec.fields.layer), head = read(m, spec.fields.head);
    if (layer === undefined || layer === null || head === undefined || head === null || head < 0) return null;
    return [layer, head];
  }
  function canShow(m, spec, sel) {
    if (!holds(m, spec.when)) return false;
    return ["layer", "head"].every(function (key, i) {
      var among = (spec.among || {})[key], count = (spec.count || {})[key], v = sel[i];
      if (among) { var list = m.get(among) || []; if (list.length && list.indexOf(v) < 0) return false; }
      if (count) { var c = m.get(count); var n = Array.isArray(c) ? c.length : Number(c); if (!(v >= 0 && v < n)) return false; }
      return true;
    });
  }
  function writeHead(m, spec, sel) {
    var now = readHead(m, spec);
    if (!canShow(m, spec, sel) || (now && now[0] === sel[0] && now[1] === sel[1])) return;
    var values = {};
    Object.keys(spec.also_set || {}).forEach(function (k) { values[k] = spec.also_set[k]; });
    ["layer", "head"].forEach(function (key, i) {
      var parts = spec.fields[key].split(".");
      if (parts.length > 1) {
        var base = values[parts[0]] || Object.assign({}, m.get(parts[0]) || {});
        base[parts[1]] = sel[i];
        values[parts[0]] = base;
      } else values[parts[0]] = sel[i];
    });
    m.set(values);
  }
  // one guard per link, both directions: a head written into b does not echo back into a
  function follow(models, specs, a, b, guard) {
    var keys = {};
    Object.keys(specs[a].fields).forEach(function (k) { keys[specs[a].fields[k].split(".")[0]] = true; });
    Object.keys(specs[a].when || {}).concat(Object.keys(specs[a].read_when || {})).forEach(function (k) { keys[k] = true; });
    Object.keys(keys).forEach(function (k) {
      models[a].on("change:" + k, function () {
        if (guard.busy) return;
        var sel = readHead(models[a], specs[a]);
        if (!sel) return;
        guard.busy = true;
        try { writeHead(models[b], specs[b], sel); } finally { guard.busy = false; }
      });
    });
  }
  Promise.all(payload.widgets.map(function (item, i) {
    return load(item).then(function (model) {
      var widget = (window.__prisma_widgets || {})[item.widget];
      if (!widget) throw new Error("bundle for " + item.widget + " is missing");
      if (widget.initialize) widget.initialize({ model: model });
      widget.render({ model: model, el: hosts[i], experimental: {} });
      return model;
    }).catch(function (err) { fail(hosts[i], err); return null; });
  })).then(function (models) {
    var specs = payload.widgets.map(function (item) { return item.head_link; });
    payload.links.forEach(function (l) {
      if (!models[l.source] || !models[l.target]) return;
      var guard = { busy: false };
      follow(models, specs, l.source, l.target, guard);
      if (l.both_ways) follow(models, specs, l.target, l.source, guard);
    });
  });
})();
"""

_PAGE_TEMPLATE = """<!DOCTYPE html>
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
.pw-page {{ display: flex; flex-wrap: wrap; align-items: flex-start; gap: 16px; }}
.pw-page-item {{ flex: 0 1 auto; max-width: 100%; }}
{css}
</style>
</head>
<body>
<div class="pw-page">
{items}
<script type="application/json" class="pw-page-state">{state}</script>
{bundles}
<script>{bootstrap}</script>
</div>
</body>
</html>
"""


def save_html(
    widgets: Sequence[PrismaWidget] | PrismaWidget,
    path: str | pathlib.Path,
    *,
    links: Sequence[Link] | None = None,
    title: str | None = None,
    compress: bool = True,
) -> pathlib.Path:
    """Write several widgets, as they are now, to ONE self-contained HTML page, with the links among them.

    Args:
        widgets: the widgets, in page order (they wrap onto rows as the window allows).
        path: the file to write.
        links: the :func:`prisma_widgets.link` links to keep (default: every live link between two of
            ``widgets``); in the page, clicking a head in one moves the others there, with no kernel.
        title: the page's title (default: the first widget's title, or "prisma_widgets").
        compress: deflate large binary arrays when that saves space.

    Example:
        >>> import tempfile, pathlib
        >>> import prisma_widgets as pw
        >>> model = pw.load("mouse-vit")
        >>> image = pw.zoo.scenes(1, seed=2).images[0]
        >>> dla, grid = pw.LogitAttribution(model, image), pw.AttentionGrid(model, image)
        >>> _ = pw.link(dla, grid)
        >>> page = pw.save_html([dla, grid], pathlib.Path(tempfile.mkdtemp()) / "circuit.html")
        >>> page.read_text().count('class="pw-page-item"')
        2
    """
    from prisma_widgets import __version__

    items = [widgets] if isinstance(widgets, PrismaWidget) else list(widgets)
    if not items or not all(isinstance(w, PrismaWidget) for w in items):
        raise TypeError("save_html takes prisma_widgets widgets (one, or a list of them)")
    chosen = [l for l in ACTIVE if l.page_spec(items) is not None] if links is None else list(links)
    link_specs = [l.page_spec(items) for l in chosen]
    if None in link_specs:
        raise ValueError("a link joins a widget that is not on this page: pass both of its widgets")
    payload_widgets = []
    for w in items:
        w._prepare_save()
        state, buffers = standalone_state(w, compress)
        bad = first_non_finite(state)
        if bad is not None:
            raise ValueError(f"{type(w).__name__}.{bad[0]} is {bad[1]}, which a saved page cannot hold (JSON has "
                             "no NaN or infinity); set it to a finite number or None first")
        spec = head_link(w) if getattr(type(w), "_head_link", None) else None
        payload_widgets.append({"widget": w._widget_name, "state": state, "buffers": buffers, "head_link": spec})
    names = list(dict.fromkeys(w._widget_name for w in items))
    bundles = [script_safe_js(read_static(f"{n}.standalone.js")) for n in names]
    css = "\n".join(read_static(f"{n}.css") for n in names if (STATIC_DIR / f"{n}.css").exists())
    if "</style" in css.lower():
        raise ValueError("stylesheet cannot be inlined safely")
    bootstrap = _PAGE_JS.strip() + "\n" + FRAME_HEIGHT_JS.strip()
    csp = "; ".join([
        "default-src 'none'",
        "script-src " + " ".join(csp_hash(code) for code in [*bundles, bootstrap]),
        "style-src 'unsafe-inline'",
        "img-src data: blob:",
        "font-src data:",
    ])
    doc_title = title if title is not None else (getattr(items[0], "title", "") or "prisma_widgets")
    page = _PAGE_TEMPLATE.format(
        csp=csp,
        version=html.escape(__version__),
        title=html.escape(str(doc_title)),
        css=css,
        items="\n".join('<section class="pw-page-item"><div class="pw-standalone-host"></div></section>' for _ in items),
        state=json_for_script({"widgets": payload_widgets, "links": link_specs}),
        bundles="\n".join(f"<script>{b}</script>" for b in bundles),
        bootstrap=bootstrap,
    )
    out = pathlib.Path(path)
    out.write_text(page, encoding="utf-8")
    return out


def page_payload(path: str | pathlib.Path) -> dict[str, Any]:
    """The state a saved page holds (for tests and tools): ``{"widgets": [...], "links": [...]}``."""
    text = pathlib.Path(path).read_text(encoding="utf-8")
    start = text.index('class="pw-page-state">') + len('class="pw-page-state">')
    return json.loads(text[start:text.index("</script>", start)])
