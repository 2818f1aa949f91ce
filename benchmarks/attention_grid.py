"""AttentionGrid vs circuitsvis ``attention_heads``: bytes, first paint, hover-to-paint. One run, side by side.

ViT-B/16 (random weights, 224 px, 12 layers x 12 heads, 197 tokens), one image (scikit-image's cat).

* bytes on the wire: what the kernel sends to the browser for the widget (JSON state including the
  ESM/CSS text, plus the binary buffers), against circuitsvis' HTML output for one layer (offline it
  inlines its 1.3 MB bundle; online it loads it from a CDN) and for all 12 layers.
* bytes in ``save_html``: the one self-contained file, against circuitsvis' self-contained HTML.
* first paint: from navigation start to the first animation frame in which the widget's content is
  in the page (ours: the grid has painted; circuitsvis: all its head canvases exist), headless
  Chromium, the file opened from file:// with the network blocked; median of ``--runs`` loads.
* hover-to-paint: from the pointer event's timestamp to the first animation frame after the view
  updated (ours: hover a new query patch, all 144 thumbnails repaint; circuitsvis: hover another head
  thumbnail, the big pattern redraws). Median of ``--hovers`` moves. For ours the time from the
  event to the end of drawing (before the frame) is printed too.

Targets (issue 4): <= 6 MB for the whole grid, first paint <= 1 s, hover-to-paint <= 16 ms.

Run: ``python benchmarks/attention_grid.py`` (needs the built bundle: ``cd js && npm ci && npm run build``,
and Debian chromium at /usr/bin/chromium). Files go to ``benchmarks/results/`` (git-ignored).

GPU section (``--gpu-only``, no browser): the kernel side on CUDA, building the widget (a forward pass with every
pattern, rollout, quantisation, transfer to the host) for 1 and 16 images in bf16, against the plain forward.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Runs before any page script: timestamps for first content and for hover updates.
PROBE_JS = """
(() => {
  const probe = window.__probe = { first: null, hovers: [], drawn: [], pending: null };
  const ready = () => document.querySelector(window.__probeSelector || '.pw-root[data-paints]');
  const tick = () => {
    if (probe.first === null && ready()) { probe.first = performance.now(); return; }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  addEventListener('pointermove', (e) => { probe.pending = { t0: e.timeStamp, updated: false }; }, true);
  const updated = () => {
    const p = probe.pending;
    if (!p || p.updated) return;
    p.updated = true;
    const drawnAt = performance.now();
    requestAnimationFrame(() => {
      probe.hovers.push(performance.now() - p.t0);
      probe.drawn.push(drawnAt - p.t0);
    });
  };
  document.addEventListener('pw-paint', updated, true);
  new MutationObserver(() => { if (window.__probeMutations) updated(); })
    .observe(document, { subtree: true, attributes: true, childList: true, characterData: true });
})();
"""


def mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def wire_bytes(widget) -> dict[str, int]:
    """Bytes of the widget's state as the kernel sends it: JSON (with the ESM/CSS text) + buffers."""
    from ipywidgets.widgets.widget import _remove_buffers

    state, _, buffers = _remove_buffers(widget.get_state())
    text = len(json.dumps(state, separators=(",", ":")).encode())
    binary = sum(memoryview(b).nbytes for b in buffers)
    return {"json": text, "binary": binary, "total": text + binary}


def launch():
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    return pw, browser


def new_offline_page(browser, selector: str, mutations: bool):
    context = browser.new_context(viewport={"width": 1600, "height": 1100})
    context.set_offline(True)
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:", "blob:")) else r.abort())
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script(
        f"window.__probeSelector = {json.dumps(selector)}; window.__probeMutations = {json.dumps(mutations)};" + PROBE_JS
    )
    return context, page, errors


def first_paint(browser, url: str, selector: str, runs: int, mutations: bool) -> list[float]:
    times = []
    for _ in range(runs):
        context, page, errors = new_offline_page(browser, selector, mutations)
        page.goto(url, wait_until="load", timeout=120_000)
        page.wait_for_function("() => window.__probe.first !== null", timeout=120_000)
        times.append(page.evaluate("window.__probe.first"))
        if errors:
            raise RuntimeError(f"page errors: {errors}")
        context.close()
    return times


def hover_ours(browser, url: str, hovers: int) -> tuple[list[float], list[float]]:
    context, page, errors = new_offline_page(browser, ".pw-root[data-paints]", False)
    page.goto(url)
    page.wait_for_function("() => window.__probe.first !== null")
    box = page.locator("canvas.pw-ag-query").bounding_box()
    rows = cols = 14
    for i in range(hovers):
        r, c = (i * 5) % rows, (i * 3 + i // rows) % cols  # a new patch every move
        x = box["x"] + (c + 0.5) * box["width"] / cols
        y = box["y"] + (r + 0.5) * box["height"] / rows
        page.mouse.move(x, y)
        page.wait_for_function(f"() => window.__probe.hovers.length >= {i + 1}", timeout=5000)
        page.wait_for_timeout(20)
    res = page.evaluate("[window.__probe.hovers, window.__probe.drawn]")
    if errors:
        raise RuntimeError(f"page errors: {errors}")
    context.close()
    return res[0], res[1]


def hover_circuitsvis(browser, url: str, hovers: int, n_heads: int) -> list[float]:
    context, page, errors = new_offline_page(browser, "canvas", True)
    page.goto(url, timeout=120_000)
    page.wait_for_function(f"() => document.querySelectorAll('canvas').length >= {n_heads + 1}", timeout=120_000)
    page.wait_for_timeout(1500)  # let chart animations settle
    thumbs = page.locator("canvas")
    boxes = [thumbs.nth(i).bounding_box() for i in range(n_heads)]
    page.evaluate("window.__probe.hovers = []; window.__probe.drawn = [];")
    done = 0
    for i in range(hovers):
        b = boxes[(i + 1) % n_heads]
        page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
        try:
            page.wait_for_function(f"() => window.__probe.hovers.length >= {done + 1}", timeout=30_000)
            done += 1
        except Exception:  # noqa: BLE001
            pass
        page.wait_for_timeout(20)
    res = page.evaluate("window.__probe.hovers")
    if errors:
        raise RuntimeError(f"page errors: {errors}")
    context.close()
    return res


def gpu_section(name: str) -> int:
    """Building the widget on CUDA (bf16) against the plain forward of the same images, median of 5."""
    import torch
    from skimage import data

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _timing import gpu_header, interleaved_medians, print_ratios

    import prisma_widgets as pw

    if not gpu_header(True):
        return 0
    torch.manual_seed(0)
    model = pw.load(name, pretrained=False, device="cuda").to(torch.bfloat16)
    for n in (1, 16):
        images = [data.chelsea()] * n
        pixels = model.to_pixels(images)
        with torch.inference_mode():
            medians = interleaved_medians({
                "plain forward (preprocessed)": lambda pixels=pixels: model.model(pixels),
                "AttentionGrid(model, images), every pattern": lambda images=images: pw.AttentionGrid(model, images),
                "AttentionGrid(..., rollout=True)": lambda images=images: pw.AttentionGrid(model, images, rollout=True),
            }, rounds=5, sync=torch.cuda.synchronize)
        print_ratios(f"GPU bf16 {torch.cuda.get_device_name()}, {name}, {n} image(s)", medians,
                     "plain forward (preprocessed)")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vit_base_patch16_224")
    ap.add_argument("--runs", type=int, default=5, help="page loads for first paint")
    ap.add_argument("--hovers", type=int, default=60, help="pointer moves for hover-to-paint")
    ap.add_argument("--cv-runs", type=int, default=2, help="page loads for circuitsvis (tens of seconds each)")
    ap.add_argument("--cv-hovers", type=int, default=8, help="pointer moves for circuitsvis (seconds each)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--no-browser", action="store_true", help="bytes only")
    ap.add_argument("--gpu-only", action="store_true", help="only the GPU section (benchmarks/gpu_all.py)")
    args = ap.parse_args()
    if args.gpu_only:
        return gpu_section(args.model)
    args.out.mkdir(parents=True, exist_ok=True)

    import torch
    from circuitsvis.attention import attention_heads
    from skimage import data

    import prisma_widgets as pw

    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = pw.load(args.model, pretrained=False)
    cfg = model.cfg
    image = data.chelsea()
    t1 = time.perf_counter()
    grid = pw.AttentionGrid(model, image)
    t2 = time.perf_counter()
    print(f"model {args.model}: {cfg.n_layers} layers x {cfg.n_heads} heads, {cfg.n_tokens} tokens "
          f"(load {t1 - t0:.1f} s, forward + widget {t2 - t1:.1f} s)")

    ours_wire = wire_bytes(grid)
    ours_html = grid.save_html(args.out / "attention_grid.html")
    ours_html_raw = grid.save_html(args.out / "attention_grid_uncompressed.html", compress=False)

    # circuitsvis on the same numbers (float32 -> its JSON of float64 text)
    values = grid.pattern_values()[0]  # [L, H, T, T]; within 1/510 of each row max of hook_pattern
    with torch.no_grad():
        _, cache = model.run_with_cache(image, names_filter="blocks.0.attn.hook_pattern")
    exact_layer0 = cache["blocks.0.attn.hook_pattern"][0].float().numpy()
    labels = model.token_labels()
    cv = attention_heads(attention=exact_layer0, tokens=labels, mask_upper_tri=False)
    cv_local, cv_cdn = cv.local_src, cv.cdn_src
    cv_page = args.out / "circuitsvis_layer0.html"
    cv_page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>" + cv_local + "</body></html>")
    bundle = len(cv_local.encode()) - len(cv_cdn.encode())
    cv_all_layers_cdn = 0
    for layer in range(cfg.n_layers):
        cv_all_layers_cdn += len(str(attention_heads(attention=values[layer], tokens=labels, mask_upper_tri=False)).encode())

    results: dict[str, object] = {
        "model": args.model,
        "layers": cfg.n_layers,
        "heads": cfg.n_heads,
        "tokens": cfg.n_tokens,
        "ours_wire_bytes": ours_wire,
        "ours_save_html_bytes": ours_html.stat().st_size,
        "ours_save_html_uncompressed_bytes": ours_html_raw.stat().st_size,
        "circuitsvis_one_layer_html_bytes_offline": len(cv_local.encode()),
        "circuitsvis_one_layer_html_bytes_cdn": len(cv_cdn.encode()),
        "circuitsvis_all_layers_html_bytes_cdn": cv_all_layers_cdn,
        "circuitsvis_all_layers_html_bytes_offline": cv_all_layers_cdn + cfg.n_layers * bundle,
    }

    print()
    print("bytes                                   prisma_widgets (all 12x12 heads)    circuitsvis attention_heads")
    print(f"  on the wire (kernel -> browser)       {mb(ours_wire['total']):>10}"
          f"  ({mb(ours_wire['binary'])} binary)"
          f"    1 layer: {mb(len(cv_local.encode()))} offline / {mb(len(cv_cdn.encode()))} + CDN bundle")
    print(f"                                                                       "
          f"12 layers: {mb(cv_all_layers_cdn + cfg.n_layers * bundle)} offline / {mb(cv_all_layers_cdn)} + CDN")
    print(f"  self-contained HTML file              {mb(ours_html.stat().st_size):>10}"
          f"  ({mb(ours_html_raw.stat().st_size)} undeflated)    1 layer: {mb(len(cv_local.encode()))}")
    print(f"  ratio, whole model on the wire        circuitsvis / ours = "
          f"{(cv_all_layers_cdn + cfg.n_layers * bundle) / ours_wire['total']:.1f}x (offline), "
          f"{cv_all_layers_cdn / ours_wire['total']:.1f}x (CDN)")

    if not args.no_browser:
        pw_, browser = launch()
        try:
            ours_fp = first_paint(browser, ours_html.as_uri(), ".pw-root[data-paints]", args.runs, False)
            cv_fp = []
            for _ in range(args.cv_runs):
                ctx, page, errors = new_offline_page(browser, "canvas", False)
                page.goto(cv_page.as_uri(), timeout=120_000)
                page.wait_for_function(
                    f"() => document.querySelectorAll('canvas').length >= {cfg.n_heads + 1}", timeout=120_000
                )
                cv_fp.append(page.evaluate(
                    "new Promise(r => requestAnimationFrame(() => r(performance.now())))"
                ))
                ctx.close()
            ours_hover, ours_drawn = hover_ours(browser, ours_html.as_uri(), args.hovers)
            cv_hover = hover_circuitsvis(browser, cv_page.as_uri(), args.cv_hovers, cfg.n_heads)
        finally:
            browser.close()
            pw_.stop()
        med = statistics.median
        results.update(
            ours_first_paint_ms=ours_fp,
            circuitsvis_first_paint_ms=cv_fp,
            ours_hover_to_frame_ms=ours_hover,
            ours_hover_to_drawn_ms=ours_drawn,
            circuitsvis_hover_to_frame_ms=cv_hover,
        )
        print()
        print("headless chromium, file:// with the network blocked (median)")
        print(f"  first paint                           {med(ours_fp):8.0f} ms  (all 144 heads)"
              f"        {med(cv_fp):8.0f} ms  (1 layer, 12 heads)")
        print(f"  hover -> next frame                   {med(ours_hover):8.1f} ms  (n={len(ours_hover)})"
              f"             {med(cv_hover) if cv_hover else float('nan'):8.1f} ms  (n={len(cv_hover)})")
        print(f"  hover -> drawn (before the frame)     {med(ours_drawn):8.1f} ms  "
              f"(p90 {sorted(ours_drawn)[int(0.9 * (len(ours_drawn) - 1))]:.1f} ms)")

    (args.out / "attention_grid.json").write_text(json.dumps(results, indent=2))
    print(f"\nfiles and raw numbers in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
