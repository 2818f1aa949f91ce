// AttentionGrid: layers x heads thumbnails of attention for one query token, over the image.
//
// Python computes every number (patterns, rollout); this file only draws them and reports the
// selection back through the synced traits layer / head / query / direction / image_index /
// normalization (and scale, percentile, colormap, ...).
import "./shared/theme.css";
import "./attention_grid/style.css";

import { Stack, type Direction } from "./attention_grid/data";
import {
  type Cell,
  type GridLayout,
  type Rect,
  computeGridLayout,
  hitTest,
  inRect,
  patchRect,
  patchTokenAt,
  thumbSize,
} from "./attention_grid/layout";
import { pixelsToCanvas, scratch, sizeCanvas, strokePatchGrid } from "./shared/canvas";
import { decode, type EncodedArray } from "./shared/codec";
import { drawColorbar } from "./shared/colorbar";
import { COLORMAP_OPTIONS, lut, lutIndex } from "./shared/colormap";
import { button, el, select, setText } from "./shared/dom";
import { type ColorScale, type ScaleKind, formatValue, makeScale } from "./shared/scale";
import { type Model, WidgetView, renderWith } from "./shared/view";

export type { Model };

type Normalization = "head" | "layer" | "global";

const DATA_KEYS = [
  "patterns",
  "pattern_scale",
  "rollout_patterns",
  "rollout_scale",
  "image_pixels",
  "grid",
  "n_prefix_tokens",
  "token_labels",
  "layer_indices",
  "head_indices",
  "image_labels",
];
const LOOK_KEYS = ["thumb_size", "theme", "show_rollout", "show_detail", "title", "image_index"];
const DRAW_KEYS = ["layer", "head", "query", "direction", "normalization", "scale", "percentile", "colormap", "opacity"];

interface Data {
  patterns: Stack;
  rollout: Stack | null;
  rows: number;
  cols: number;
  nPrefix: number;
  T: number;
  labels: string[];
  layers: number[];
  heads: number[];
  images: string[];
  pixels: { data: Uint8Array; B: number; H: number; W: number; C: number } | null;
}

function readData(model: Model): Data {
  const patterns = Stack.from(model.get("patterns"), model.get("pattern_scale"));
  if (!patterns) throw new Error("no attention patterns in this widget");
  const rollout = Stack.from(model.get("rollout_patterns"), model.get("rollout_scale"));
  const [rows, cols] = (model.get("grid") as number[]) ?? [1, 1];
  const nPrefix = Number(model.get("n_prefix_tokens") ?? 0);
  const T = patterns.T;
  if (nPrefix + rows * cols !== T) throw new Error(`${T} tokens do not fit ${nPrefix} prefix + ${rows}x${cols} grid`);
  const layers = (model.get("layer_indices") as number[]) ?? [];
  const heads = (model.get("head_indices") as number[]) ?? [];
  const labels = ((model.get("token_labels") as string[]) ?? []).map(String);
  const images = ((model.get("image_labels") as string[]) ?? []).map(String);
  const img = decode(model.get("image_pixels") as EncodedArray);
  let pixels: Data["pixels"] = null;
  if (img) {
    const [B, H, W, C] = img.shape;
    pixels = { data: img.data as Uint8Array, B, H, W, C: C ?? 1 };
  }
  return { patterns, rollout, rows, cols, nPrefix, T, labels, layers, heads, images, pixels };
}

function clampInt(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.round(v)));
}

export class AttentionGridView extends WidgetView {

  // DOM
  private readonly queryLabel: HTMLDivElement;
  private readonly queryCanvas: HTMLCanvasElement;
  private readonly prefixBar: HTMLDivElement;
  private readonly colorbarCanvas: HTMLCanvasElement;
  private readonly gridCanvas: HTMLCanvasElement;
  private readonly status: HTMLDivElement;
  private readonly detail: HTMLDivElement;
  private readonly detailTitle: HTMLDivElement;
  private readonly matrixCanvas: HTMLCanvasElement;
  private readonly detailImage: HTMLCanvasElement;
  private readonly detailStatus: HTMLDivElement;
  private controls: {
    image: ReturnType<typeof select>;
    norm: ReturnType<typeof select>;
    scale: ReturnType<typeof select>;
    cmap: ReturnType<typeof select>;
    pct: HTMLInputElement;
    pctField: HTMLLabelElement;
    opacity: HTMLInputElement;
    rollout: HTMLInputElement;
    rolloutField: HTMLLabelElement;
    dirRow: HTMLButtonElement;
    dirCol: HTMLButtonElement;
  };

  // state
  private data: Data | null = null;
  private layout: GridLayout | null = null;
  private thumb = { w: 64, h: 64 };
  private queryRect: Rect = { x: 0, y: 0, w: 1, h: 1 };
  private detailRect: Rect = { x: 0, y: 0, w: 1, h: 1 };
  private preview: number | null = null;
  private locked = false;
  private hoverMatrix: { q: number; k: number } | null = null;
  private paints = 0;

  // caches
  private imageCanvas: HTMLCanvasElement | null = null; // colour image, full resolution
  private greyCanvas: HTMLCanvasElement | null = null; // grey image, full resolution
  private gridBackground: HTMLCanvasElement | null = null;
  private atlas: { canvas: HTMLCanvasElement; ctx: CanvasRenderingContext2D; image: ImageData } | null = null;
  private values = new Float32Array(0);
  private cellScales: ColorScale[] = [];
  private shownScale: { scale: ColorScale; label: string } | null = null;
  private matrixCache: { key: string; canvas: HTMLCanvasElement; scale: ColorScale; values: Float32Array } | null = null;

  constructor(model: Model, host: HTMLElement) {
    super(model, host, "pw-attention-grid", "AttentionGrid");

    this.queryLabel = el("div", {
      cls: "pw-ag-query-label pw-export-text",
      title: "hover the image to choose the query patch, click to lock it (click again to unlock); arrow keys move a locked query",
    });
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
    this.detailTitle = el("div", { cls: "pw-ag-detail-title pw-export-text" });
    this.matrixCanvas = el("canvas", { cls: "pw-canvas pw-ag-matrix", attrs: { role: "img", "aria-label": "query x key matrix of the selected head" } });
    this.detailImage = el("canvas", { cls: "pw-ag-detail-image" });
    this.detailStatus = el("div", { cls: "pw-status pw-ag-detail-status" });
    this.detail = el("div", { cls: "pw-ag-detail" }, [
      this.detailTitle,
      el("div", { cls: "pw-ag-detail-body" }, [this.matrixCanvas, this.detailImage]),
      this.detailStatus,
    ]);
    const side = el("div", { cls: "pw-ag-side" }, [this.queryLabel, this.queryCanvas, this.prefixBar, this.colorbarCanvas]);
    const main = el("div", { cls: "pw-ag-main" }, [this.gridCanvas, this.status]);
    this.root.append(this.titleEl, this.toolbar, this.errorEl, el("div", { cls: "pw-ag-body" }, [side, main, this.detail]));

    this.controls = this.buildToolbar();
    this.bindPointer();
    this.bindTraits({ data: DATA_KEYS, look: LOOK_KEYS, draw: DRAW_KEYS });
    this.rebuild();
  }

  // ------------------------------------------------------------------ model
  protected dropData(): void {
    this.data = null;
    this.matrixCache = null;
  }

  // ------------------------------------------------------------------ toolbar
  private buildToolbar() {
    const imageSel = select("image", [], "0", (v) => this.setTraits({ image_index: Number(v) }));
    const dirRow = button("query → keys", "where the query token looks (a row of the pattern)", () => this.setTraits({ direction: "row" }));
    const dirCol = button("queries → key", "who looks at the selected token (a column of the pattern)", () => this.setTraits({ direction: "column" }));
    const seg = el("span", { cls: "pw-segmented", attrs: { role: "group", "aria-label": "direction" } }, [dirRow, dirCol]);
    const norm = select(
      "colour range",
      [
        { value: "head", label: "per head" },
        { value: "layer", label: "per layer" },
        { value: "global", label: "global" },
      ],
      "head",
      (v) => this.setTraits({ normalization: v }),
    );
    const scale = select(
      "scale",
      [
        { value: "linear", label: "linear" },
        { value: "log", label: "log" },
        { value: "percentile", label: "percentile clip" },
      ],
      "linear",
      (v) => this.setTraits({ scale: v }),
    );
    const pct = el("input", { cls: "pw-input", attrs: { type: "number", min: "50", max: "100", step: "0.5" } });
    pct.addEventListener("change", () => {
      const v = Number(pct.value);
      if (Number.isFinite(v) && v >= 50 && v <= 100) this.setTraits({ percentile: v });
    });
    const pctField = el("label", { cls: "pw-field" }, [el("span", { cls: "pw-field-label", text: "pct" }), pct]);
    const cmap = select(
      "colours",
      COLORMAP_OPTIONS,
      "viridis",
      (v) => this.setTraits({ colormap: v }),
    );
    const opacity = el("input", { cls: "pw-range", attrs: { type: "range", min: "0", max: "1", step: "0.05" } });
    opacity.addEventListener("input", () => this.setTraits({ opacity: Number(opacity.value) }));
    const opField = el("label", { cls: "pw-field" }, [el("span", { cls: "pw-field-label", text: "overlay" }), opacity]);
    const rollout = el("input", { attrs: { type: "checkbox" } });
    rollout.addEventListener("change", () => this.setTraits({ show_rollout: rollout.checked }));
    const rolloutField = el("label", { cls: "pw-field" }, [rollout, el("span", { cls: "pw-field-label", text: "rollout row" })]);
    const png = button("PNG", "save the current view (with its colour bar) as a PNG image", () => {
      void this.exportPng();
    }, "pw-ag-png");
    this.toolbar.append(imageSel.root, seg, norm.root, scale.root, pctField, cmap.root, opField, rolloutField, png);
    return { image: imageSel, norm, scale, cmap, pct, pctField, opacity, rollout, rolloutField, dirRow, dirCol };
  }

  protected syncControls(): void {
    const c = this.controls;
    const d = this.data;
    if (d) {
      const opts = c.image.input.options;
      if (opts.length !== d.images.length) {
        c.image.input.replaceChildren(...d.images.map((label, i) => el("option", { text: label, attrs: { value: String(i) } })));
      }
      c.image.root.style.display = d.images.length > 1 ? "" : "none";
      c.rolloutField.style.display = d.rollout ? "" : "none";
    }
    c.image.set(String(this.get<number>("image_index") ?? 0));
    c.norm.set(this.get<string>("normalization"));
    c.scale.set(this.get<string>("scale"));
    c.cmap.set(this.get<string>("colormap"));
    c.pctField.style.display = this.get<string>("scale") === "percentile" ? "" : "none";
    if (document.activeElement !== c.pct) c.pct.value = String(this.get<number>("percentile"));
    c.opacity.value = String(this.get<number>("opacity"));
    c.rollout.checked = !!this.get<boolean>("show_rollout");
    const dir = this.get<string>("direction");
    c.dirRow.setAttribute("aria-pressed", String(dir !== "column"));
    c.dirCol.setAttribute("aria-pressed", String(dir === "column"));
  }

  // ------------------------------------------------------------------ selection helpers
  private layerPos(): number {
    const d = this.data;
    return d ? Math.max(0, d.layers.indexOf(this.get<number>("layer"))) : 0;
  }

  private headPos(): number {
    const d = this.data;
    return d ? Math.max(0, d.heads.indexOf(this.get<number>("head"))) : 0;
  }

  private imageIndex(): number {
    const d = this.data;
    return d ? clampInt(this.get<number>("image_index") ?? 0, 0, d.patterns.B - 1) : 0;
  }

  /** The query token drawn now: the hovered one while previewing, else the `query` trait. */
  private shownQuery(): number {
    const d = this.data;
    const q = this.preview ?? this.get<number>("query") ?? 0;
    return d ? clampInt(q, 0, d.T - 1) : 0;
  }

  private label(token: number): string {
    const d = this.data;
    return d?.labels[token] ?? `token ${token}`;
  }

  // ------------------------------------------------------------------ build (layout, caches)
  protected rebuild(): void {
    try {
      this.errorEl.textContent = "";
      if (!this.data) this.data = readData(this.model);
      const d = this.data;
      this.applyTheme();
      setText(this.titleEl, this.get<string>("title") ?? "");
      this.titleEl.style.display = this.get<string>("title") ? "" : "none";

      const imgH = d.pixels?.H ?? d.rows * 16;
      const imgW = d.pixels?.W ?? d.cols * 16;
      this.thumb = thumbSize(clampInt(this.get<number>("thumb_size") ?? 64, 16, 512), imgH, imgW);

      // images (colour for the query panel, grey under the heat maps)
      const b = this.imageIndex();
      if (d.pixels) {
        const { data, H, W, C } = d.pixels;
        const one = data.subarray(b * H * W * C, (b + 1) * H * W * C);
        this.imageCanvas = pixelsToCanvas(one, H, W, C, false);
        this.greyCanvas = pixelsToCanvas(one, H, W, C, true);
      } else {
        this.imageCanvas = this.greyCanvas = null;
      }

      const showRollout = !!d.rollout && !!this.get<boolean>("show_rollout");
      this.layout = computeGridLayout({
        nLayers: d.layers.length,
        nHeads: d.heads.length,
        nRollout: showRollout ? d.layers.length : 0,
        thumbW: this.thumb.w,
        thumbH: this.thumb.h,
        nPrefix: d.nPrefix,
      });
      sizeCanvas(this.gridCanvas, this.layout.width, this.layout.height);
      this.gridBackground = this.renderGridBackground();
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
      const atlas = scratch(Math.max(1, nCells * d.cols), d.rows);
      this.atlas = { ...atlas, image: atlas.ctx.createImageData(Math.max(1, nCells * d.cols), d.rows) };

      // query panel
      const qw = Math.max(160, Math.min(256, this.thumb.w * 3));
      const qh = Math.round((qw * imgH) / imgW);
      this.queryRect = { x: 0, y: 0, w: qw, h: qh };
      (this.queryCanvas.parentElement as HTMLElement).style.width = `${qw}px`;
      sizeCanvas(this.queryCanvas, qw, qh);
      this.buildPrefixButtons();

      this.matrixCache = null;
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
      const b = button(this.label(i), `use ${this.label(i)} as the query (click to lock)`, () => this.clickQuery(i), "pw-ag-prefix-button");
      b.addEventListener("pointerenter", () => this.hoverQuery(i));
      b.addEventListener("pointerleave", () => this.hoverQuery(null));
      return b;
    });
    this.prefixBar.replaceChildren(...buttons);
    this.prefixBar.style.display = d.nPrefix ? "" : "none";
  }

  private renderGridBackground(): HTMLCanvasElement {
    const d = this.data!;
    const L = this.layout!;
    const t = this.theme;
    const { canvas } = scratch(1, 1);
    const { ctx } = sizeCanvas(canvas, L.width, L.height);
    ctx.fillStyle = t.bg;
    ctx.fillRect(0, 0, L.width, L.height);
    ctx.fillStyle = t.muted;
    ctx.font = `10px ${t.font}`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    d.heads.forEach((h, c) => ctx.fillText(`H${h}`, L.colCentres[c], L.headerY + L.spec.headerH / 2));
    ctx.textAlign = "right";
    d.layers.forEach((l, r) => ctx.fillText(`L${l}`, L.spec.labelW - 6, L.rowCentres[r]));
    if (L.rolloutHeaderY >= 0) {
      ctx.textAlign = "center";
      d.layers.forEach((l, c) => ctx.fillText(`≤L${l}`, L.colCentres[c], L.rolloutHeaderY + L.spec.headerH / 2));
      ctx.textAlign = "right";
      ctx.fillText("rollout", L.spec.labelW - 2, L.rolloutCentreY);
    }
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    for (const cell of L.cells) {
      const r = cell.thumb;
      if (this.greyCanvas) ctx.drawImage(this.greyCanvas, r.x, r.y, r.w, r.h);
      else {
        ctx.fillStyle = t.dark ? "#555" : "#bbb";
        ctx.fillRect(r.x, r.y, r.w, r.h);
      }
    }
    return canvas;
  }

  // ------------------------------------------------------------------ draw
  protected draw(): void {
    if (!this.data || !this.layout) return;
    const t0 = performance.now();
    try {
      this.computeValues();
      this.drawGrid();
      this.drawQueryPanel();
      this.drawColorbar();
      this.drawDetail();
      this.updateLabels();
    } catch (err) {
      this.showError(err);
      return;
    }
    this.paints++;
    const ds = this.root.dataset;
    ds.paints = String(this.paints);
    ds.layer = String(this.get<number>("layer"));
    ds.head = String(this.get<number>("head"));
    ds.query = String(this.shownQuery());
    ds.imageIndex = String(this.imageIndex());
    this.root.dispatchEvent(new CustomEvent("pw-paint", { detail: { ms: performance.now() - t0 } }));
  }

  /** Fill this.values with each cell's T values and compute the colour scales. */
  private computeValues(): void {
    const d = this.data!;
    const L = this.layout!;
    const T = d.T;
    const b = this.imageIndex();
    const token = this.shownQuery();
    const dir = (this.get<string>("direction") === "column" ? "column" : "row") as Direction;
    const H = d.patterns.M / Math.max(1, d.layers.length);
    L.cells.forEach((cell, i) => {
      const out = this.values.subarray(i * T, (i + 1) * T);
      if (cell.kind === "head") d.patterns.fill(out, b, cell.row * H + cell.col, token, dir);
      else d.rollout!.fill(out, b, cell.col, token, dir);
    });

    const kind = (this.get<string>("scale") ?? "linear") as ScaleKind;
    const pct = Number(this.get<number>("percentile") ?? 99);
    const norm = (this.get<string>("normalization") ?? "head") as Normalization;
    const n = L.cells.length;
    const scales = new Array<ColorScale>(n);
    const cellValues = (i: number) => this.values.subarray(i * T, (i + 1) * T);
    if (norm === "head") {
      for (let i = 0; i < n; i++) scales[i] = makeScale(kind, cellValues(i), pct);
    } else {
      // group cells: per layer row (rollout row is its own group), or everything
      const groups = new Map<string, number[]>();
      L.cells.forEach((cell, i) => {
        const key = norm === "global" ? cell.kind : `${cell.kind}:${cell.row}`;
        const g = groups.get(key) ?? [];
        g.push(i);
        groups.set(key, g);
      });
      for (const idx of groups.values()) {
        const all = new Float32Array(idx.length * T);
        idx.forEach((i, j) => all.set(cellValues(i), j * T));
        const s = makeScale(kind, all, pct);
        for (const i of idx) scales[i] = s;
      }
    }
    this.cellScales = scales;
    const sel = L.cells.findIndex((c) => c.kind === "head" && c.row === this.layerPos() && c.col === this.headPos());
    const scopeText = norm === "head" ? `L${this.get<number>("layer")} H${this.get<number>("head")}` : norm === "layer" ? `layer ${this.get<number>("layer")}` : "all heads";
    const selScale = sel >= 0 ? scales[sel] : null;
    const scaleText =
      kind === "percentile" ? (selScale?.clipped ? `clipped at p${pct} = ${formatValue(selScale.hi)}` : `p${pct} (no clip)`) : kind;
    this.shownScale = selScale ? { scale: selScale, label: `${scopeText} · ${scaleText} · max ${formatValue(selScale.max)}` } : null;
  }

  private drawGrid(): void {
    const d = this.data!;
    const L = this.layout!;
    const atlas = this.atlas!;
    const T = d.T;
    const { rows, cols, nPrefix } = d;
    const table = lut(this.get<string>("colormap") ?? "viridis");
    const px = atlas.image.data;
    const aw = atlas.image.width;
    L.cells.forEach((_, i) => {
      const s = this.cellScales[i];
      const base = i * T + nPrefix;
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const k = lutIndex(s.map(this.values[base + r * cols + c])) * 4;
          const o = (r * aw + i * cols + c) * 4;
          px[o] = table[k];
          px[o + 1] = table[k + 1];
          px[o + 2] = table[k + 2];
          px[o + 3] = 255;
        }
      }
    });
    atlas.ctx.putImageData(atlas.image, 0, 0);

    const { ctx } = sizeCanvas(this.gridCanvas, L.width, L.height);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.gridBackground!, 0, 0, L.width, L.height);
    const alpha = Math.min(1, Math.max(0, Number(this.get<number>("opacity") ?? 0.8)));
    ctx.globalAlpha = alpha;
    L.cells.forEach((cell, i) => {
      const r = cell.thumb;
      ctx.drawImage(atlas.canvas, i * cols, 0, cols, rows, r.x, r.y, r.w, r.h);
    });
    ctx.globalAlpha = 1;
    // prefix cells
    const ps = L.prefixSize;
    L.cells.forEach((cell, i) => {
      const s = this.cellScales[i];
      for (let p = 0; p < nPrefix; p++) {
        const k = lutIndex(s.map(this.values[i * T + p])) * 4;
        ctx.fillStyle = `rgb(${table[k]},${table[k + 1]},${table[k + 2]})`;
        ctx.fillRect(cell.prefix.x + p * ps, cell.prefix.y, ps - 1, ps - 1);
      }
    });
    // the selected token on every thumbnail
    const token = this.shownQuery();
    ctx.strokeStyle = this.theme.accent;
    ctx.lineWidth = 1.5;
    for (const cell of L.cells) this.outlineToken(ctx, cell, token, L.prefixSize);
    // the selected head
    const sel = L.cells.find((c) => c.kind === "head" && c.row === this.layerPos() && c.col === this.headPos());
    if (sel) {
      ctx.strokeStyle = this.theme.fg;
      ctx.lineWidth = 2;
      const top = nPrefix ? sel.prefix.y : sel.thumb.y;
      ctx.strokeRect(sel.thumb.x - 2, top - 2, sel.thumb.w + 4, sel.thumb.y + sel.thumb.h - top + 4);
    }
  }

  private outlineToken(ctx: CanvasRenderingContext2D, cell: Cell, token: number, ps: number): void {
    const d = this.data!;
    const pr = patchRect(cell.thumb, token, d.rows, d.cols, d.nPrefix);
    if (pr) ctx.strokeRect(pr.x + 0.5, pr.y + 0.5, Math.max(1, pr.w - 1), Math.max(1, pr.h - 1));
    else if (token < d.nPrefix) ctx.strokeRect(cell.prefix.x + token * ps - 0.5, cell.prefix.y - 0.5, ps, ps);
  }

  private drawQueryPanel(): void {
    const d = this.data!;
    const R = this.queryRect;
    const { ctx } = sizeCanvas(this.queryCanvas, R.w, R.h);
    ctx.imageSmoothingEnabled = true;
    if (this.imageCanvas) ctx.drawImage(this.imageCanvas, 0, 0, R.w, R.h);
    else {
      ctx.fillStyle = this.theme.dark ? "#555" : "#bbb";
      ctx.fillRect(0, 0, R.w, R.h);
    }
    // faint patch grid
    strokePatchGrid(ctx, R.w, R.h, d.rows, d.cols, "rgba(255,255,255,0.18)");
    const token = this.shownQuery();
    const pr = patchRect(R, token, d.rows, d.cols, d.nPrefix);
    if (pr) {
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 3;
      ctx.strokeRect(pr.x, pr.y, pr.w, pr.h);
      ctx.strokeStyle = this.theme.accent;
      ctx.lineWidth = 2;
      ctx.strokeRect(pr.x, pr.y, pr.w, pr.h);
    }
    // prefix buttons reflect the selection
    const q = this.shownQuery();
    Array.from(this.prefixBar.children).forEach((b, i) => b.setAttribute("aria-pressed", String(i === q)));
  }

  private drawColorbar(): void {
    const w = this.queryRect.w;
    const { ctx } = sizeCanvas(this.colorbarCanvas, w, 58);
    ctx.fillStyle = this.theme.bg;
    ctx.fillRect(0, 0, w, 58);
    if (!this.shownScale) return;
    drawColorbar(ctx, {
      x: 6,
      y: 6,
      width: w - 12,
      height: 12,
      colormap: this.get<string>("colormap") ?? "viridis",
      scale: this.shownScale.scale,
      theme: this.theme,
      label: this.shownScale.label,
    });
  }

  private drawDetail(): void {
    const d = this.data!;
    const show = !!this.get<boolean>("show_detail");
    this.detail.style.display = show ? "" : "none";
    if (!show) return;
    const b = this.imageIndex();
    const lp = this.layerPos();
    const hp = this.headPos();
    const H = d.heads.length;
    const kind = (this.get<string>("scale") ?? "linear") as ScaleKind;
    const pct = Number(this.get<number>("percentile") ?? 99);
    const cmap = this.get<string>("colormap") ?? "viridis";
    const key = [b, lp, hp, kind, pct, cmap].join("|");
    if (!this.matrixCache || this.matrixCache.key !== key) {
      const values = d.patterns.matrix(b, lp * H + hp);
      const scale = makeScale(kind, values, pct);
      const table = lut(cmap);
      const { canvas, ctx } = scratch(d.T, d.T);
      const img = ctx.createImageData(d.T, d.T);
      for (let i = 0; i < values.length; i++) {
        const k = lutIndex(scale.map(values[i])) * 4;
        img.data[i * 4] = table[k];
        img.data[i * 4 + 1] = table[k + 1];
        img.data[i * 4 + 2] = table[k + 2];
        img.data[i * 4 + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
      this.matrixCache = { key, canvas, scale, values };
    }
    const cache = this.matrixCache;
    const size = d.T >= 384 ? 384 : Math.max(160, Math.floor(384 / d.T) * d.T);
    const pad = 4;
    const cbH = 44;
    this.detailRect = { x: pad, y: pad, w: size, h: size };
    const { ctx } = sizeCanvas(this.matrixCanvas, size + 2 * pad, size + 2 * pad + cbH);
    ctx.fillStyle = this.theme.bg;
    ctx.fillRect(0, 0, size + 2 * pad, size + 2 * pad + cbH);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(cache.canvas, pad, pad, size, size);
    const cell = size / d.T;
    // prefix separators
    if (d.nPrefix) {
      ctx.strokeStyle = this.theme.grid;
      ctx.lineWidth = 1;
      const p = pad + d.nPrefix * cell;
      ctx.beginPath();
      ctx.moveTo(pad, p);
      ctx.lineTo(pad + size, p);
      ctx.moveTo(p, pad);
      ctx.lineTo(p, pad + size);
      ctx.stroke();
    }
    // the selected query's row (or the selected key's column)
    const token = this.shownQuery();
    ctx.strokeStyle = this.theme.accent;
    ctx.lineWidth = 1;
    if (this.get<string>("direction") === "column") ctx.strokeRect(pad + token * cell, pad, Math.max(1, cell), size);
    else ctx.strokeRect(pad, pad + token * cell, size, Math.max(1, cell));
    const hm = this.hoverMatrix;
    if (hm) {
      ctx.strokeStyle = this.theme.accent2;
      ctx.strokeRect(pad + hm.k * cell - 1, pad + hm.q * cell - 1, cell + 2, cell + 2);
    }
    drawColorbar(ctx, {
      x: pad + 2,
      y: pad + size + 6,
      width: Math.min(size - 4, 240),
      height: 10,
      colormap: cmap,
      scale: cache.scale,
      theme: this.theme,
    });

    // linked image: the hovered cell's query (accent) and key (accent2) patches
    const iw = 160;
    const ih = Math.round((iw * (d.pixels?.H ?? d.rows)) / (d.pixels?.W ?? d.cols));
    const img = sizeCanvas(this.detailImage, iw, ih).ctx;
    if (this.imageCanvas) img.drawImage(this.imageCanvas, 0, 0, iw, ih);
    else {
      img.fillStyle = this.theme.dark ? "#555" : "#bbb";
      img.fillRect(0, 0, iw, ih);
    }
    const R = { x: 0, y: 0, w: iw, h: ih };
    const q = hm ? hm.q : token;
    const outline = (t: number, color: string) => {
      const pr = patchRect(R, t, d.rows, d.cols, d.nPrefix);
      if (!pr) return;
      img.strokeStyle = "#000";
      img.lineWidth = 3;
      img.strokeRect(pr.x, pr.y, pr.w, pr.h);
      img.strokeStyle = color;
      img.lineWidth = 2;
      img.strokeRect(pr.x, pr.y, pr.w, pr.h);
    };
    outline(q, this.theme.accent);
    if (hm) outline(hm.k, this.theme.accent2);
  }

  private updateLabels(): void {
    const q = this.shownQuery();
    const mode = this.locked ? "locked" : this.preview !== null ? "hover" : "hover · click locks";
    const dir = this.get<string>("direction") === "column" ? "to" : "from";
    setText(this.queryLabel, `${dir} ${this.label(q)} (${mode})`);
    setText(this.detailTitle, `L${this.get<number>("layer")} H${this.get<number>("head")}: query × key`);
  }

  // ------------------------------------------------------------------ pointer
  private canvasPoint(canvas: HTMLCanvasElement, ev: MouseEvent): { x: number; y: number } {
    const r = canvas.getBoundingClientRect();
    return { x: ev.clientX - r.left, y: ev.clientY - r.top };
  }

  private hoverQuery(token: number | null): void {
    if (this.locked && token !== null) return;
    if (this.preview === token) return;
    this.preview = token;
    this.draw(); // synchronous: pointer events already arrive once per frame
  }

  private clickQuery(token: number): void {
    const current = this.get<number>("query");
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
      const p = this.canvasPoint(this.queryCanvas, ev);
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
      const q = this.get<number>("query");
      const p = q - d.nPrefix;
      let r = p >= 0 ? Math.floor(p / d.cols) : Math.floor(d.rows / 2);
      let c = p >= 0 ? p % d.cols : Math.floor(d.cols / 2);
      if (ev.key === "ArrowLeft") c = Math.max(0, c - 1);
      else if (ev.key === "ArrowRight") c = Math.min(d.cols - 1, c + 1);
      else if (ev.key === "ArrowUp") r = Math.max(0, r - 1);
      else if (ev.key === "ArrowDown") r = Math.min(d.rows - 1, r + 1);
      else return;
      ev.preventDefault();
      this.locked = true;
      this.setTraits({ query: d.nPrefix + r * d.cols + c });
    });

    listen(this.gridCanvas, "pointermove", (ev) => {
      const d = this.data;
      const L = this.layout;
      if (!d || !L) return;
      const p = this.canvasPoint(this.gridCanvas, ev);
      const hit = hitTest(L, p.x, p.y, d.rows, d.cols);
      if (!hit) {
        setText(this.status, "");
        return;
      }
      const i = L.cells.indexOf(hit.cell);
      const name = hit.cell.kind === "head" ? `L${d.layers[hit.cell.row]} H${d.heads[hit.cell.col]}` : `rollout ≤L${d.layers[hit.cell.col]}`;
      const s = this.cellScales[i];
      let text = `${name}   max ${formatValue(s?.max ?? 0)}`;
      if (hit.token >= 0) {
        const v = this.values[i * d.T + hit.token];
        const q = this.shownQuery();
        const pair = this.get<string>("direction") === "column" ? `${this.label(hit.token)} → ${this.label(q)}` : `${this.label(q)} → ${this.label(hit.token)}`;
        text += `   ${pair}: ${formatValue(v)}`;
      }
      setText(this.status, text);
    });
    listen(this.gridCanvas, "pointerleave", () => setText(this.status, ""));
    listen(this.gridCanvas, "click", (ev) => {
      const d = this.data;
      const L = this.layout;
      if (!d || !L) return;
      const p = this.canvasPoint(this.gridCanvas, ev);
      const hit = hitTest(L, p.x, p.y, d.rows, d.cols);
      if (!hit || hit.cell.kind !== "head") return;
      this.setTraits({ layer: d.layers[hit.cell.row], head: d.heads[hit.cell.col], show_detail: true });
    });

    const matrixHit = (ev: MouseEvent) => {
      const d = this.data;
      if (!d) return null;
      const p = this.canvasPoint(this.matrixCanvas, ev);
      const R = this.detailRect;
      if (!inRect(R, p.x, p.y)) return null;
      return {
        q: Math.min(d.T - 1, Math.floor(((p.y - R.y) / R.h) * d.T)),
        k: Math.min(d.T - 1, Math.floor(((p.x - R.x) / R.w) * d.T)),
      };
    };
    listen(this.matrixCanvas, "pointermove", (ev) => {
      const hm = matrixHit(ev);
      const same = hm && this.hoverMatrix && hm.q === this.hoverMatrix.q && hm.k === this.hoverMatrix.k;
      if (same || (!hm && !this.hoverMatrix)) return;
      this.hoverMatrix = hm;
      if (hm && this.matrixCache && this.data) {
        const v = this.matrixCache.values[hm.q * this.data.T + hm.k];
        setText(this.detailStatus, `query ${this.label(hm.q)} → key ${this.label(hm.k)}: ${formatValue(v)}`);
      } else setText(this.detailStatus, "");
      this.drawDetail();
    });
    listen(this.matrixCanvas, "pointerleave", () => {
      this.hoverMatrix = null;
      setText(this.detailStatus, "");
      this.drawDetail();
    });
    listen(this.matrixCanvas, "click", (ev) => {
      const hm = matrixHit(ev);
      if (!hm) return;
      this.locked = true;
      this.setTraits({ query: this.get<string>("direction") === "column" ? hm.k : hm.q });
    });
  }

  // ------------------------------------------------------------------ export
  protected pngName(): string {
    return `attention_grid_L${this.get<number>("layer")}_H${this.get<number>("head")}.png`;
  }
}

export const render = renderWith(AttentionGridView);

export default { render };
