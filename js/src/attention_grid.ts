// AttentionGrid: layers x heads thumbnails of attention for one query token, over the image.
//
// Python computes every number (patterns, rollout); this file builds the DOM and wires the events, and
// reports the selection back through the synced traits layer / head / query / direction / image_index /
// normalization (and scale, percentile, colormap, ...). Data in attention_grid/data.ts, geometry in
// attention_grid/layout.ts, painting in attention_grid/draw.ts, the selected head's matrix in
// attention_grid/detail.ts, the controls in attention_grid/toolbar.ts.
import "./shared/theme.css";
import "./attention_grid/style.css";

import {
  type AttentionData,
  cellScales,
  clampInt,
  fillCellValues,
  hoverText,
  imagePixels,
  imageShape,
  readAttention,
  scaleLabel,
  tokenLabel,
} from "./attention_grid/data";
import { type DetailState, HeadDetail } from "./attention_grid/detail";
import { type Atlas, drawGrid, drawPanelColorbar, drawQueryPanel, makeAtlas, renderGridBackground } from "./attention_grid/draw";
import { type GridLayout, type Rect, computeGridLayout, hitTest, patchTokenAt, placeGrid, queryPanelRect, thumbSize } from "./attention_grid/layout";
import { SummaryTable, drawBars, headOrder, summaryScale, summaryValues } from "./attention_grid/summary";
import { type Toolbar, buildToolbar, syncToolbar } from "./attention_grid/toolbar";
import type { AttentionGridTraits, Direction } from "./attention_grid/traits";
import { pixelsToCanvas, sizeCanvas } from "./shared/canvas";
import { lut } from "./shared/colormap";
import { button, el, setText } from "./shared/dom";
import { arrowStep } from "./shared/patches";
import { localPoint } from "./shared/pointer";
import type { ColorScale } from "./shared/scale";
import type { TraitKey } from "./shared/traits";
import { type Model, WidgetView, renderWith } from "./shared/view";

export type { Model };

type Key = TraitKey<AttentionGridTraits>;
const DATA_KEYS: Key[] = [
  "patterns",
  "pattern_scale",
  "rollout_patterns",
  "rollout_scale",
  "image_pixels",
  "head_distance",
  "head_entropy",
  "grid",
  "n_prefix_tokens",
  "token_labels",
  "layer_indices",
  "head_indices",
  "image_labels",
];
const LOOK_KEYS: Key[] = ["thumb_size", "theme", "show_rollout", "show_detail", "title", "image_index", "summary", "sort_heads"];
const DRAW_KEYS: Key[] = ["layer", "head", "query", "direction", "normalization", "scale", "percentile", "colormap", "opacity"];

export class AttentionGridView extends WidgetView<AttentionGridTraits> {

  // DOM
  private readonly queryLabel: HTMLDivElement;
  private readonly queryHint: HTMLSpanElement;
  private readonly side: HTMLDivElement;
  private readonly queryCanvas: HTMLCanvasElement;
  private readonly prefixBar: HTMLDivElement;
  private readonly colorbarCanvas: HTMLCanvasElement;
  private readonly gridCanvas: HTMLCanvasElement;
  private readonly status: HTMLDivElement;
  private readonly detail: HeadDetail;
  private readonly summary: SummaryTable;
  private readonly controls: Toolbar;

  // state
  private data: AttentionData | null = null;
  private layout: GridLayout | null = null;
  private thumb = { w: 64, h: 64 };
  private queryRect: Rect = { x: 0, y: 0, w: 1, h: 1 };
  private preview: number | null = null;
  private locked = false;
  private paints = 0;
  /** the widget's width the grid was last fitted to (a ResizeObserver refits it when this changes) */
  private fittedWidth = -1;

  // caches
  private imageCanvas: HTMLCanvasElement | null = null; // colour image, full resolution
  private greyCanvas: HTMLCanvasElement | null = null; // grey image, full resolution
  private gridBackground: HTMLCanvasElement | null = null;
  private atlas: Atlas | null = null;
  private values = new Float32Array(0);
  private cellScales: ColorScale[] = [];
  private shownScale: { scale: ColorScale; label: string } | null = null;

  constructor(model: Model, host: HTMLElement) {
    super(model, host, "pw-attention-grid", "AttentionGrid");

    this.queryLabel = el("div", {
      cls: "pw-ag-query-label pw-export-text",
      title: "hover the image to choose the query patch, click to lock it (click again to unlock); arrow keys move a locked query",
    });
    this.queryHint = el("span", { cls: "pw-hint pw-ag-query-hint" });
    this.queryCanvas = el("canvas", {
      cls: "pw-canvas pw-ag-query",
      attrs: { tabindex: "0", role: "img", "aria-label": "query image: hover to choose the query patch, click to lock" },
    });
    this.prefixBar = el("div", { cls: "pw-ag-prefix" });
    this.colorbarCanvas = el("canvas", { cls: "pw-ag-colorbar" });
    this.gridCanvas = el("canvas", {
      cls: "pw-canvas pw-ag-grid",
      attrs: { role: "img", "aria-label": "attention of every layer and head; click a thumbnail to open the head" },
    });
    this.status = el("div", { cls: "pw-status pw-ag-status" });
    this.detail = new HeadDetail(
      this.listen.bind(this),
      () => this.detailState(),
      (cell) => {
        this.locked = true;
        this.setTraits({ query: this.get("direction") === "column" ? cell.k : cell.q });
      },
      () => this.draw(),
    );
    this.summary = new SummaryTable(this.listen.bind(this), (layer, head) => this.setTraits({ layer, head, show_detail: true }));
    // the side column: the query image and its colour bar, then the selected head's matrix, so the
    // matrix sits beside the grid (not under all its rows) at any width
    this.side = el("div", { cls: "pw-ag-side" }, [
      el("div", { cls: "pw-ag-query-head" }, [this.queryLabel, this.queryHint]),
      this.queryCanvas,
      this.prefixBar,
      this.colorbarCanvas,
      this.detail.root,
      this.summary.root,
    ]);
    const main = el("div", { cls: "pw-ag-main" }, [this.gridCanvas, this.status]);
    this.root.append(this.titleEl, this.toolbar, this.errorEl, el("div", { cls: "pw-ag-body" }, [this.side, main]));
    this.watchWidth();

    this.controls = buildToolbar(this.toolbar, (v) => this.setTraits(v), () => void this.exportPng());
    this.bindPointer();
    this.bindTraits({ data: DATA_KEYS, look: LOOK_KEYS, draw: DRAW_KEYS });
    this.rebuild();
  }

  // ------------------------------------------------------------------ model
  protected dropData(): void {
    this.data = null;
    this.detail.invalidate();
  }

  // ------------------------------------------------------------------ toolbar
  protected syncControls(): void {
    syncToolbar(this.controls, this.model, this.data);
  }

  // ------------------------------------------------------------------ selection helpers
  private layerPos(): number {
    const d = this.data;
    return d ? Math.max(0, d.layers.indexOf(this.get("layer"))) : 0;
  }

  private headPos(): number {
    const d = this.data;
    return d ? Math.max(0, d.heads.indexOf(this.get("head"))) : 0;
  }

  private imageIndex(): number {
    const d = this.data;
    return d ? clampInt(this.get("image_index") ?? 0, 0, d.patterns.B - 1) : 0;
  }

  /** The query token drawn now: the hovered one while previewing, else the `query` trait. */
  private shownQuery(): number {
    const d = this.data;
    const q = this.preview ?? this.get("query") ?? 0;
    return d ? clampInt(q, 0, d.T - 1) : 0;
  }

  private label(token: number): string {
    return tokenLabel(this.data, token);
  }

  // ------------------------------------------------------------------ build (layout, caches)
  protected rebuild(): void {
    try {
      this.errorEl.textContent = "";
      if (!this.data) this.data = readAttention(this.model);
      const d = this.data;
      this.applyTheme();
      setText(this.titleEl, this.get("title") ?? "");
      this.titleEl.style.display = this.get("title") ? "" : "none";

      const { imgH, imgW } = imageShape(d);
      const target = clampInt(this.get("thumb_size") ?? 64, 16, 512);
      // the query panel (and the matrix under it) keeps the requested size; the grid's thumbnails shrink
      // until every head fits the widget's width: no horizontal scrolling to reach the last heads
      this.queryRect = queryPanelRect(target, imgH, imgW);
      const sideW = this.get("show_detail") ? Math.max(this.queryRect.w, 224) : this.queryRect.w;
      this.fittedWidth = this.availableWidth();
      const nCols = Math.max(d.heads.length, d.rollout && this.get("show_rollout") ? d.layers.length : 0);
      const placed = placeGrid(this.fittedWidth, sideW, nCols, target);
      this.thumb = thumbSize(placed.thumbW, imgH, imgW);
      this.root.dataset.thumb = String(this.thumb.w);

      // images (colour for the query panel, grey under the heat maps)
      const one = imagePixels(d, this.imageIndex());
      if (d.pixels && one) {
        const { H, W, C } = d.pixels;
        this.imageCanvas = pixelsToCanvas(one, H, W, C, false);
        this.greyCanvas = pixelsToCanvas(one, H, W, C, true);
      } else {
        this.imageCanvas = this.greyCanvas = null;
      }

      const showRollout = !!d.rollout && !!this.get("show_rollout");
      const kind = this.get("summary") ?? "none";
      const summary = summaryValues(d, kind);
      const sorted = !!summary && !!this.get("sort_heads");
      this.layout = computeGridLayout({
        nLayers: d.layers.length,
        nHeads: d.heads.length,
        nRollout: showRollout ? d.layers.length : 0,
        thumbW: this.thumb.w,
        thumbH: this.thumb.h,
        nPrefix: d.nPrefix,
        barH: summary ? 12 : 0,
        order: sorted && summary ? headOrder(d, summary) : undefined,
      });
      sizeCanvas(this.gridCanvas, this.layout.width, this.layout.height);
      this.gridBackground = renderGridBackground(d, this.layout, this.theme, this.greyCanvas, sorted ? (kind === "distance" ? "mean distance" : "entropy") : "");
      // thumbnail geometry for automation (tests, benchmarks): [layer, head, x, y, w, h], head -1 = rollout
      this.gridCanvas.dataset.cells = JSON.stringify(
        this.layout.cells.map((c) =>
          c.kind === "head"
            ? [d.layers[c.row], d.heads[c.col], c.thumb.x, c.thumb.y, c.thumb.w, c.thumb.h]
            : [d.layers[c.col], -1, c.thumb.x, c.thumb.y, c.thumb.w, c.thumb.h],
        ),
      );

      const nCells = this.layout.cells.length;
      this.values = new Float32Array(nCells * d.T);
      this.atlas = makeAtlas(nCells, d.rows, d.cols);

      // query panel
      this.side.style.width = `${sideW}px`;
      sizeCanvas(this.queryCanvas, this.queryRect.w, this.queryRect.h);
      this.buildPrefixButtons();

      this.detail.invalidate();
      this.syncControls();
      this.draw();
    } catch (err) {
      this.showError(err);
    }
  }

  private buildPrefixButtons(): void {
    const d = this.data;
    if (!d) return;
    const buttons = Array.from({ length: d.nPrefix }, (_, i) => {
      const b = button(this.label(i), `use ${this.label(i)} as the query (click to lock)`, () => this.clickQuery(i), "pw-ag-prefix-button pw-export-keep");
      b.addEventListener("pointerenter", () => this.hoverQuery(i));
      b.addEventListener("pointerleave", () => this.hoverQuery(null));
      return b;
    });
    this.prefixBar.replaceChildren(...buttons);
    this.prefixBar.style.display = d.nPrefix ? "" : "none";
  }

  // ------------------------------------------------------------------ draw
  protected draw(): void {
    if (!this.data || !this.layout) return;
    const t0 = performance.now();
    try {
      this.computeValues();
      this.drawGrid();
      const hm = this.detail.hoveredCell();
      const [qShown, kShown] = hm ? [hm.q, hm.k] : [this.shownQuery(), -1];
      drawQueryPanel(sizeCanvas(this.queryCanvas, this.queryRect.w, this.queryRect.h).ctx, this.data, this.queryRect, this.imageCanvas, qShown, this.theme, kShown);
      // prefix buttons reflect the selection
      const q = this.shownQuery();
      Array.from(this.prefixBar.children).forEach((b, i) => b.setAttribute("aria-pressed", String(i === q)));
      drawPanelColorbar(this.colorbarCanvas, this.queryRect.w, this.shownScale, this.get("colormap") ?? "viridis", this.theme);
      this.summary.draw(this.data, this.get("summary") ?? "none", this.queryRect.w, this.get("layer"), this.get("head"), this.theme);
      this.detail.draw();
      this.updateLabels();
    } catch (err) {
      this.showError(err);
      return;
    }
    this.paints++;
    const ds = this.root.dataset;
    ds.paints = String(this.paints);
    ds.layer = String(this.get("layer"));
    ds.head = String(this.get("head"));
    ds.query = String(this.shownQuery());
    ds.imageIndex = String(this.imageIndex());
    this.root.dispatchEvent(new CustomEvent("pw-paint", { detail: { ms: performance.now() - t0 } }));
  }

  /** Fill this.values with each cell's T values and compute the colour scales. */
  private computeValues(): void {
    const d = this.data!;
    const L = this.layout!;
    const dir: Direction = this.get("direction") === "column" ? "column" : "row";
    fillCellValues(d, L.cells, this.values, this.imageIndex(), this.shownQuery(), dir);
    const kind = this.get("scale") ?? "linear";
    const pct = Number(this.get("percentile") ?? 99);
    const norm = this.get("normalization") ?? "head";
    this.cellScales = cellScales(L.cells, this.values, d.T, kind, pct, norm);
    const sel = L.cells.findIndex((c) => c.kind === "head" && c.row === this.layerPos() && c.col === this.headPos());
    const selScale = sel >= 0 ? this.cellScales[sel] : null;
    this.shownScale = selScale ? { scale: selScale, label: scaleLabel(selScale, norm, kind, pct, this.get("layer"), this.get("head")) } : null;
  }

  private drawGrid(): void {
    const L = this.layout!;
    const { ctx } = sizeCanvas(this.gridCanvas, L.width, L.height);
    drawGrid(ctx, this.data!, {
      L,
      background: this.gridBackground!,
      atlas: this.atlas!,
      values: this.values,
      scales: this.cellScales,
      table: lut(this.get("colormap") ?? "viridis", this.theme.dark),
      opacity: Math.min(1, Math.max(0, Number(this.get("opacity") ?? 0.8))),
      token: this.shownQuery(),
      selected: L.cells.find((c) => c.kind === "head" && c.row === this.layerPos() && c.col === this.headPos()),
      theme: this.theme,
    });
    const summary = summaryValues(this.data!, this.get("summary") ?? "none");
    if (summary) drawBars(ctx, this.data!, L.cells, summary, summaryScale(summary), this.theme);
  }

  private detailState(): DetailState | null {
    const d = this.data;
    if (!d) return null;
    return {
      d,
      visible: !!this.get("show_detail"),
      b: this.imageIndex(),
      lp: this.layerPos(),
      hp: this.headPos(),
      kind: this.get("scale") ?? "linear",
      pct: Number(this.get("percentile") ?? 99),
      colormap: this.get("colormap") ?? "viridis",
      token: this.shownQuery(),
      column: this.get("direction") === "column",
      theme: this.theme,
      width: Math.max(this.queryRect.w, parseFloat(this.side.style.width) || 0),
    };
  }

  private updateLabels(): void {
    const q = this.shownQuery();
    const mode = this.locked ? "locked: click again to unlock" : this.preview !== null ? "hovered: click to lock" : "hover the image, click to lock";
    const dir = this.get("direction") === "column" ? "attention to" : "attention from";
    setText(this.queryLabel, `${dir} ${this.label(q)}`);
    setText(this.queryHint, mode);
    setText(this.detail.title, `L${this.get("layer")} H${this.get("head")}: query × key`);
  }

  // ------------------------------------------------------------------ pointer
  private hoverQuery(token: number | null): void {
    if (this.locked && token !== null) return;
    if (this.preview === token) return;
    this.preview = token;
    this.draw(); // synchronous: pointer events already arrive once per frame
  }

  private clickQuery(token: number): void {
    const current = this.get("query");
    if (this.locked && token === current) {
      this.locked = false;
      this.preview = token;
      this.draw();
      return;
    }
    this.locked = true;
    this.preview = null;
    if (token !== current) this.setTraits({ query: token });
    this.draw();
  }

  private bindPointer(): void {
    const listen = this.listen.bind(this);
    const tokenAtQuery = (ev: MouseEvent) => {
      const d = this.data;
      if (!d) return -1;
      const p = localPoint(this.queryCanvas, ev);
      return patchTokenAt(this.queryRect, p.x, p.y, d.rows, d.cols, d.nPrefix);
    };
    listen(this.queryCanvas, "pointermove", (ev) => {
      const t = tokenAtQuery(ev);
      if (t >= 0) this.hoverQuery(t);
    });
    listen(this.queryCanvas, "pointerleave", () => this.hoverQuery(null));
    listen(this.queryCanvas, "click", (ev) => {
      const t = tokenAtQuery(ev);
      if (t >= 0) this.clickQuery(t);
    });
    listen(this.queryCanvas, "keydown", (ev) => {
      const d = this.data;
      if (!d) return;
      const next = arrowStep(this.get("query"), ev.key, d.rows, d.cols, d.nPrefix);
      if (next === null) return;
      ev.preventDefault();
      this.locked = true;
      this.setTraits({ query: next });
    });

    listen(this.gridCanvas, "pointermove", (ev) => {
      const d = this.data;
      const L = this.layout;
      if (!d || !L) return;
      const p = localPoint(this.gridCanvas, ev);
      const hit = hitTest(L, p.x, p.y, d.rows, d.cols);
      if (!hit) {
        setText(this.status, "");
        return;
      }
      const i = L.cells.indexOf(hit.cell);
      const v = hit.token >= 0 ? this.values[i * d.T + hit.token] : 0;
      setText(this.status, hoverText(d, hit, this.cellScales[i], v, this.shownQuery(), this.get("direction") === "column"));
    });
    listen(this.gridCanvas, "pointerleave", () => setText(this.status, ""));
    listen(this.gridCanvas, "click", (ev) => {
      const d = this.data;
      const L = this.layout;
      if (!d || !L) return;
      const p = localPoint(this.gridCanvas, ev);
      const hit = hitTest(L, p.x, p.y, d.rows, d.cols);
      if (!hit || hit.cell.kind !== "head") return;
      this.setTraits({ layer: d.layers[hit.cell.row], head: d.heads[hit.cell.col], show_detail: true });
    });

  }

  // ------------------------------------------------------------------ width
  /** The width the widget has for its body (the root's content box). */
  private availableWidth(): number {
    const cs = getComputedStyle(this.root);
    return this.root.clientWidth - parseFloat(cs.paddingLeft || "0") - parseFloat(cs.paddingRight || "0");
  }

  /** Refit the grid when the widget's width changes (a narrower notebook, a side panel opened). */
  private watchWidth(): void {
    if (typeof ResizeObserver !== "function") return;
    const ro = new ResizeObserver(() => {
      const w = this.availableWidth();
      if (w > 0 && Math.abs(w - this.fittedWidth) >= 1) this.requestRebuild();
    });
    ro.observe(this.root);
    this.disposers.push(() => ro.disconnect());
  }

  // ------------------------------------------------------------------ export
  protected override exportCaption(): string {
    const d = this.data;
    const parts = [this.get("model_name") ?? ""];
    if (d && d.images.length) parts.push(`image: ${d.images[this.imageIndex()] ?? ""}`);
    parts.push(`layer ${this.get("layer")}, head ${this.get("head")}`);
    parts.push(`${this.get("direction") === "column" ? "attention to" : "attention from"} ${this.label(this.shownQuery())}`);
    return parts.filter((p) => p).join(" · ");
  }

  protected pngName(): string {
    return `attention_grid_L${this.get("layer")}_H${this.get("head")}.png`;
  }
}

export const render = renderWith(AttentionGridView);

export default { render };
