"""Issue 17 as a researcher met it, measured: AttentionGrid at ViT-B/16 in an 800 px notebook, the LogitLens
over CLIP prompts, the gallery's detail at 800 px, PNG exports with a caption and no controls, and WCAG AA
contrast for every piece of text in the light and dark themes (and under JupyterLab's own theme colours).

Screenshots go to ``tests/artifacts/i17b/after/`` (800 px wide, light and dark)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from .conftest import export_png, wait_painted

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NARROW = {"width": 800, "height": 900}
PROMPTS = ["a photo of a cat", "a photo of a dog", "a photo of a car", "a photo of grass"]

# WCAG 2 contrast of every visible text element against what is painted behind it (alpha blended up the
# ancestors down to the page). Disabled controls are exempt (WCAG 1.4.3); large text needs 3:1.
CONTRAST_JS = """(root) => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[\\s,/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, below) => { const a = top[3]; return [0, 1, 2].map((i) => top[i] * a + below[i] * (1 - a)).concat([1]); };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const background = (el) => { const layers = [];
    for (let n = el; n; n = n.parentElement) { const c = parse(getComputedStyle(n).backgroundColor); if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; } }
    let bg = [255, 255, 255, 1]; if (!layers.length || layers[layers.length - 1][3] < 1) bg = parse(getComputedStyle(document.body).backgroundColor) || bg;
    if (bg[3] < 1) bg = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg); return bg; };
  const out = [];
  for (const el of [root, ...root.querySelectorAll('*')]) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const field = (el.tagName === 'INPUT' && ['text', 'search', 'number'].includes(el.type) && el.value) || el.tagName === 'SELECT';
    if (!own && !field) continue;
    const cs = getComputedStyle(el); const r = el.getBoundingClientRect();
    if (cs.visibility === 'hidden' || cs.display === 'none' || r.width === 0 || r.height === 0 || el.closest(':disabled, [aria-disabled=true]')) continue;
    const bg = background(el); let fg = parse(cs.color); fg = over(fg, bg);
    const opacity = [...function* () { for (let n = el; n; n = n.parentElement) yield Number(getComputedStyle(n).opacity); }()].reduce((a, b) => a * b, 1);
    if (opacity < 1) fg = over([fg[0], fg[1], fg[2], opacity], bg);
    const [a, b] = [lum(fg), lum(bg)]; const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(cs.fontSize); const bold = Number(cs.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    out.push({ text: (el.value || el.textContent).trim().slice(0, 40), cls: el.className && String(el.className), ratio: Math.round(ratio * 100) / 100, need: large ? 3 : 4.5 });
  }
  return out;
}"""

# JupyterLab 4's own theme colours (theme-light/dark-extension index.css), for a page that looks like Lab
JUPYTERLAB = {
    "light": {"--jp-layout-color0": "white", "--jp-layout-color1": "white", "--jp-border-color1": "#bdbdbd",
              "--jp-ui-font-color1": "rgba(0,0,0,.87)", "--jp-ui-font-color2": "rgba(0,0,0,.54)"},
    "dark": {"--jp-layout-color0": "#111", "--jp-layout-color1": "#212121", "--jp-border-color1": "#616161",
             "--jp-ui-font-color1": "rgba(255,255,255,.87)", "--jp-ui-font-color2": "rgba(255,255,255,.54)"},
}


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ViT-B/16 (random weights, all 12 layers x 12 heads, 197 tokens) on two photos; a CLIP lens over
    four prompts and the same lens without the first; a feature gallery, a patching heatmap on a minimal
    pair and a logit attribution on the bundled mouse."""
    import open_clip
    from skimage import data

    import prisma_widgets as pw
    from prisma_widgets.widgets.attention_grid import AttentionGrid
    from prisma_widgets.widgets.feature_gallery import FeatureGallery
    from prisma_widgets.widgets.logit_lens import LogitLens
    from prisma_widgets.widgets.logit_attribution import LogitAttribution
    from prisma_widgets.widgets.patching_heatmap import PatchingHeatmap
    from prisma_widgets.zoo import shape_pair
    from prisma_widgets.zoo.shapes import SHAPE_CLASSES, shapes

    out = tmp_path_factory.mktemp("narrow")
    torch.manual_seed(0)
    vitb = pw.load("vit_base_patch16_224", pretrained=False)
    images = [data.chelsea(), data.coffee()]
    names = ["chelsea, a tabby cat (skimage.data.chelsea)", "a cup of coffee on a saucer (skimage.data.coffee)"]
    grid = AttentionGrid(vitb, images, image_labels=names)
    torch.manual_seed(0)
    clip = pw.HookedViT(open_clip.CLIP(
        embed_dim=32, vision_cfg=dict(image_size=64, patch_size=8, width=64, layers=2, head_width=16),
        text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1)))
    lens = LogitLens(clip, data.chelsea(), prompts=PROMPTS, show_labels=True, image_label="chelsea")
    fewer = LogitLens(clip, data.chelsea(), prompts=PROMPTS[1:], show_labels=True)
    model = pw.load("mouse-vit")
    g = torch.Generator().manual_seed(0)
    sae = pw.SAE(d_in=128, d_sae=24, k=6, hook="blocks.3.hook_resid_post", generator=g)
    with torch.no_grad():
        sae.b_enc.copy_(torch.randn(24, generator=g) * 0.3)
    imgs, labels = shapes(24, seed=3)
    gallery = FeatureGallery(model, sae, imgs, image_labels=[SHAPE_CLASSES[c] for c in labels], feature=5, hide_dead=False)
    clean, corrupted, _, _ = shape_pair(seed=0)
    patching = PatchingHeatmap(model, clean, corrupted)
    attribution = LogitAttribution(model, clean)
    return {
        "patching": patching.save_html(out / "patching.html"),
        "attribution": attribution.save_html(out / "attribution.html"),
        "grid": grid.save_html(out / "grid.html"),
        "lens": lens.save_html(out / "lens.html"),
        "fewer": fewer.save_html(out / "fewer.html"),
        "gallery": gallery.save_html(out / "gallery.html"),
    }


def _shots(artifacts: Path) -> Path:
    d = artifacts / "i17b" / "after"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _open(new_page, path: Path, scheme: str, **kw):
    page = new_page(color_scheme=scheme)
    page.set_viewport_size(kw.pop("viewport", NARROW))
    page.goto(path.as_uri())
    wait_painted(page)
    return page


def _box(page, selector: str) -> dict[str, float]:
    return page.locator(selector).first.bounding_box()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_attention_grid_vit_b16_fits_800px_with_the_matrix_beside_it(pages, new_page, artifacts: Path, scheme: str):
    page = _open(new_page, pages["grid"], scheme)
    root = page.locator(".pw-root")
    # no horizontal scrollbar: every one of the 12 heads is in the widget's width
    sw, cw = root.evaluate("r => [r.scrollWidth, r.clientWidth]")
    assert sw <= cw, (sw, cw)
    grid = _box(page, "canvas.pw-ag-grid")
    rb = root.bounding_box()
    assert grid["x"] + grid["width"] <= rb["x"] + rb["width"]
    cells = json.loads(page.eval_on_selector("canvas.pw-ag-grid", "c => c.dataset.cells"))
    assert len(cells) == 144 and max(c[2] + c[4] for c in cells) <= grid["width"]
    # the grid was ~1,350 px tall at thumb_size 64: fitted, it is under 700 px
    assert grid["height"] < 700, grid
    print(f"\n[{scheme}] grid {grid['width']:.0f} x {grid['height']:.0f} px, thumbnails {root.get_attribute('data-thumb')} px, widget {rb['height']:.0f} px tall")
    # the image selector stays inside the widget
    sel = _box(page, "label:has-text('image') select")
    assert sel["x"] + sel["width"] <= rb["x"] + rb["width"]
    # the selected head's matrix is beside the grid (left of it, starting above the grid's bottom) and
    # on the first screen
    mb = _box(page, "canvas.pw-ag-matrix")
    assert mb["x"] + mb["width"] <= grid["x"] and mb["y"] < grid["y"] + grid["height"]
    assert mb["y"] + 40 < NARROW["height"], mb
    # axes: a canvas of query ticks left of the matrix and one of key ticks above it, with ink on them
    axes = page.locator("canvas.pw-ag-matrix-axis")
    assert axes.count() == 2
    ink = axes.evaluate_all("""cs => cs.map((c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const bg = [d[0], d[1], d[2]]; let n = 0;
        for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - bg[0]) + Math.abs(d[i + 1] - bg[1]) + Math.abs(d[i + 2] - bg[2]) > 60) n++;
        return n; })""")
    assert all(n > 20 for n in ink), ink
    assert page.locator(".pw-ag-matrix-corner").text_content() == "query ↓"
    # hover values, at 1x and zoomed
    win = json.loads(page.eval_on_selector("canvas.pw-ag-matrix", "c => c.dataset.window"))
    assert win[:3] == [0, 0, 197]
    page.mouse.move(mb["x"] + mb["width"] / 2, mb["y"] + mb["width"] / 2)
    status = page.locator(".pw-ag-detail-status")
    assert "→ key" in status.text_content() and ":" in status.text_content()
    page.get_by_role("button", name="+").click()
    page.get_by_role("button", name="+").click()
    win = json.loads(page.eval_on_selector("canvas.pw-ag-matrix", "c => c.dataset.window"))
    assert win[2] == 50 and page.locator(".pw-ag-zoom-label").text_content() == "4×"
    side = win[5]
    assert side / win[2] >= 3  # 4 px per token or so, from under 1 px at 1x
    page.mouse.move(mb["x"] + win[3] + 2, mb["y"] + win[4] + 2)
    q0, k0 = win[0], win[1]
    text = status.text_content()
    assert text.startswith("query ") and "→ key" in text, text
    # the hovered cell's two patches are outlined on the query image: it repaints
    page.screenshot(path=str(_shots(artifacts) / f"attention_grid_vitb16_800_{scheme}.png"), full_page=True)
    assert (q0, k0) == (0, 0)  # the window of the selected query (CLS) starts at the matrix' corner
    assert page.pw_log.problems() == []


def test_attention_grid_png_has_a_caption_and_no_controls_or_hints(pages, new_page, artifacts: Path):
    page = _open(new_page, pages["grid"], "light")
    img, box = export_png(page, _shots(artifacts) / "attention_grid_vitb16_export.png")
    caption = page.eval_on_selector(".pw-root", "r => r.dataset.exportCaption")
    assert caption.startswith("vit_base_patch16_224 · image: chelsea, a tabby cat"), caption
    assert "layer 0, head 0" in caption and "attention from CLS" in caption
    bg = img[2, 2]
    tb = _box(page, ".pw-toolbar")
    band = img[int(tb["y"] - box["y"]):int(tb["y"] - box["y"] + 14), 0:300]
    assert (abs(band - bg).sum(-1) > 200).sum() > 100  # the caption's text is where the controls were
    # hint and status lines are not in the picture
    for sel in (".pw-ag-query-hint", ".pw-ag-status"):
        b = _box(page, sel)
        region = img[int(b["y"] - box["y"]):int(b["y"] - box["y"] + b["height"]), int(b["x"] - box["x"]):int(b["x"] - box["x"] + b["width"])]
        assert (abs(region - bg).sum(-1) > 60).sum() == 0, sel
    # the query label is whole (it wraps, it is not cut with an ellipsis)
    label = page.locator(".pw-ag-query-label")
    assert label.evaluate("e => e.scrollWidth <= e.clientWidth && getComputedStyle(e).textOverflow !== 'ellipsis'")
    assert page.pw_log.problems() == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_logit_lens_prompts_keep_colours_and_labels_say_what_differs(pages, new_page, artifacts: Path, scheme: str):
    def colours(page) -> dict[str, str]:
        items = page.locator(".pw-ll-prompt").all()
        return {i.locator("input").input_value(): i.locator(".pw-ll-swatch").evaluate("e => getComputedStyle(e).backgroundColor") for i in items}

    page = _open(new_page, pages["lens"], scheme)
    four = colours(page)
    assert len(set(four.values())) == 4  # four prompts, four colours
    labels = json.loads(page.eval_on_selector("canvas.pw-ll-map", "c => c.dataset.patchLabels"))
    assert labels == ["cat", "dog", "car", "grass"]  # "a photo of a" said once, not on every patch
    # top-1: colours are classes, so neither the colour map nor its range is offered
    cmap = page.locator("label:has-text('colours')")
    rng = page.locator("label:has-text('colour range')")
    assert not cmap.is_visible() and not rng.is_visible()
    page.screenshot(path=str(_shots(artifacts) / f"logit_lens_clip_800_{scheme}.png"), full_page=True)
    page.locator("label:has-text('show') select").select_option("entropy")
    page.wait_for_function("() => document.querySelector('.pw-root').dataset.mode === 'entropy'")
    assert cmap.is_visible() and rng.is_visible()
    # the same lens without its first prompt: every other prompt keeps its colour
    page2 = _open(new_page, pages["fewer"], scheme)
    three = colours(page2)
    assert set(three) == set(PROMPTS[1:])
    assert all(three[p] == four[p] for p in three), (four, three)
    assert page.pw_log.problems() == [] and page2.pw_log.problems() == []


def test_logit_lens_png_names_model_image_and_layer_without_slider_text(pages, new_page, artifacts: Path):
    page = _open(new_page, pages["lens"], "light")
    img, box = export_png(page, _shots(artifacts) / "logit_lens_clip_export.png")
    caption = page.eval_on_selector(".pw-root", "r => r.dataset.exportCaption")
    assert "image: chelsea" in caption and "layer 1 (resid_post)" in caption and "top-1 class" in caption, caption
    bg = img[2, 2]
    for sel in (".pw-ll-layer-label", ".pw-ll-prompt-note"):
        b = _box(page, sel)
        region = img[int(b["y"] - box["y"]):int(b["y"] - box["y"] + b["height"]), int(b["x"] - box["x"]):int(b["x"] - box["x"] + b["width"])]
        assert (abs(region - bg).sum(-1) > 60).sum() == 0, sel


@pytest.mark.parametrize("width", [800, 560])
def test_gallery_card_click_shows_the_detail_on_screen(pages, new_page, artifacts: Path, width: int):
    page = _open(new_page, pages["gallery"], "light", viewport={"width": width, "height": 700})
    root = page.locator(".pw-root")
    sw, cw = root.evaluate("r => [r.scrollWidth, r.clientWidth]")
    assert sw <= cw, (sw, cw)
    # the last card on the page: at 560 px the detail is below all of them, at 800 px beside them
    card = page.locator(".pw-fg-card").last
    card.scroll_into_view_if_needed()
    fid = card.get_attribute("data-feature")
    card.locator(".pw-fg-card-head").click()
    page.wait_for_function(f"() => document.querySelector('.pw-root').dataset.feature === '{fid}'")
    page.wait_for_function("""() => { const r = document.querySelector('.pw-fg-detail-title').getBoundingClientRect();
        return r.top >= 0 && r.bottom <= innerHeight; }""", timeout=5_000)
    assert page.locator(".pw-fg-detail-title").text_content() == f"feature #{fid}"
    page.screenshot(path=str(_shots(artifacts) / f"feature_gallery_{width}_after_click.png"))
    assert page.pw_log.problems() == []


@pytest.mark.parametrize("host", ["light", "dark", "jupyterlab-light", "jupyterlab-dark"])
@pytest.mark.parametrize("widget", ["grid", "lens", "gallery", "patching", "attribution"])
def test_every_text_meets_wcag_aa_contrast(pages, new_page, widget: str, host: str):
    scheme = host.split("-")[-1]
    page = new_page(color_scheme=scheme)
    page.set_viewport_size(NARROW)
    page.goto(pages[widget].as_uri())
    if host.startswith("jupyterlab"):
        # JupyterLab's variables and its theme flag on <body>, as a notebook page has them
        page.evaluate(
            "([vars, light]) => { for (const [k, v] of Object.entries(vars)) document.documentElement.style.setProperty(k, v);"
            " document.body.style.background = vars['--jp-layout-color0']; document.body.setAttribute('data-jp-theme-light', light); }",
            [JUPYTERLAB[scheme], str(scheme == "light").lower()],
        )
    wait_painted(page, min_paints=1)
    page.wait_for_timeout(300)
    if widget == "grid":  # a pressed toggle and the CLS button, as issue 17 saw them
        assert page.get_by_role("button", name="query → keys").get_attribute("aria-pressed") == "true"
    results = page.locator(".pw-root").evaluate(CONTRAST_JS)
    assert len(results) > 10
    low = [r for r in results if r["ratio"] < r["need"]]
    worst = min(results, key=lambda r: r["ratio"])
    print(f"\n[{widget} {host}] {len(results)} texts, lowest contrast {worst['ratio']}:1 ({worst['text']!r})")
    assert low == [], low
    pressed = [r for r in results if r["text"] in ("query → keys", "CLS")]
    if widget == "grid":
        assert pressed and all(r["ratio"] >= 4.5 for r in pressed), pressed


def test_dark_diverging_map_is_dark_at_zero(pages, new_page):
    """The RdBu strip on a dark page: the colour of 0 is a dark grey, not a white box."""
    page = _open(new_page, pages["grid"], "dark")
    page.locator("label:has-text('colours') select").select_option("rdbu")
    page.wait_for_timeout(100)
    cb = page.locator("canvas.pw-ag-colorbar")
    mid = cb.evaluate("c => { const d = c.getContext('2d').getImageData(Math.round(c.width / 2), Math.round(12 * devicePixelRatio), 1, 1).data; return [d[0], d[1], d[2]]; }")
    assert max(mid) < 90, mid  # the light theme's centre is #f7f7f7
    assert page.pw_log.problems() == []


@pytest.mark.parametrize("widget, bar, top", [("patching", "canvas.pw-ph-colorbar", 12), ("attribution", "canvas.pw-la-colorbar", 9)])
def test_dark_diverging_maps_of_patching_and_attribution_are_dark_at_zero(pages, new_page, widget: str, bar: str, top: int):
    """Their default RdBu colour bar on a dark page: the middle (0) is a dark grey, as in the grid."""
    page = _open(new_page, pages[widget], "dark")
    mid = page.locator(bar).evaluate(
        f"c => {{ const d = c.getContext('2d').getImageData(Math.round(c.width / 2), Math.round({top} * devicePixelRatio), 1, 1).data;"
        " return [d[0], d[1], d[2]]; }")
    assert max(mid) < 90, mid
    assert page.pw_log.problems() == []


@pytest.mark.parametrize("widget", ["grid", "lens"])
def test_colour_bar_captions_are_whole_at_800px(pages, new_page, widget: str):
    """'clipped at p99 = 0.34 · ma…': the caption wraps onto lines that each fit the bar, none cut."""
    page = _open(new_page, pages[widget], "light")
    if widget == "grid":
        page.locator("label:has-text('scale') select").select_option("percentile")
        bar = page.locator("canvas.pw-ag-colorbar")
        want = ["clipped at p99", "max"]
    else:
        page.locator("label:has-text('show') select").select_option("kl")
        bar = page.locator("canvas.pw-ll-colorbar")
        want = ["KL(last", "all layers"]
    page.wait_for_timeout(200)
    lines = json.loads(bar.evaluate("c => c.dataset.label"))
    text = " ".join(lines)
    assert all(w in text for w in want), lines
    widths = bar.evaluate(
        "(c, lines) => { const x = document.createElement('canvas').getContext('2d');"
        " x.font = '10px ' + getComputedStyle(c.closest('.pw-root')).getPropertyValue('--pw-font');"
        " return lines.map((l) => x.measureText(l).width); }",
        lines,
    )
    room = bar.bounding_box()["width"] - 12  # the bar is inset 6 px each side
    assert max(widths) <= room, (lines, widths, room)
    # every line is inside the canvas' height
    assert bar.bounding_box()["height"] >= 6 + 12 + 17 + 13 * len(lines)
    assert page.pw_log.problems() == []
