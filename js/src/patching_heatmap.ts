// PatchingHeatmap: activation patching results as a layer x position heatmap, per-layer image maps, or a
// layer x head grid, with a side panel of predictions and a patch editor that runs new sweeps in the kernel.
//
// Python computes every number (effects, top-k predictions); this file draws them and reports the selection
// and the controls through the synced traits selected / site / by / method / direction / normalization /
// colormap / corruption_patches / corruption_mode / run_count. User text goes in via textContent only.
import "./shared/theme.css";
import "./patching_heatmap/style.css";

import { type Rect, mapSize, patchRect, patchTokenAt } from "./shared/patches";
import {
  type PatchData,
  type Selection,
  type Top,
  SITE_BYS,
  cellOf,
  cellTitle,
  className,
  columnCell,
  columnOf,
  gridColumns,
  hasMaps,
  headLabel,
  paintPatch,
  patchedTop,
  readPatching,
  selectionOf,
  tokenLabel,
  tokenValues,
  valueAt,
  centredScale,
} from "./patching_heatmap/data";
import { type HeatLayout, type MapLayout, cellAtPoint, cellRect, colX, heatLayout, labelStep, mapLayout, prefixAt } from "./patching_heatmap/layout";
import { pixelsToCanvas, sizeCanvas, strokePatchGrid } from "./shared/canvas";
import { drawColorbar } from "./shared/colorbar";
import { COLORMAP_OPTIONS, lut, lutIndex } from "./shared/colormap";
import { button, el, select, setText } from "./shared/dom";
import { type ColorScale, formatValue } from "./shared/scale";
import { type Model, WidgetView, renderWith } from "./shared/view";

export type { Model };

const DATA_KEYS = [
  "values",
  "axes",
  "by",
  "layer_indices",
  "token_labels",
  "head_labels",
  "grid",
  "n_prefix_tokens",
  "class_names",
  "image_pixels",
  "corrupted_pixels",
  "cell_top_indices",
  "cell_top_probs",
  "clean_top",
  "corrupted_top",
];
const LOOK_KEYS = ["theme", "title", "size", "map_size"];
const DRAW_KEYS = ["selected", "normalization", "colormap", "selected_top", "predictions_note", "site", "method", "direction", "clean_metric", "corrupted_metric"];
const KERNEL_KEYS = ["interactive", "note", "status", "progress", "corruption_patches", "corruption_mode"];

const SITES = ["resid_pre", "resid_mid", "attn_out", "mlp_out", "z", "pattern"];
const BY_LABELS: Record<string, string> = { position: "position", head: "head", head_position: "head × position", layer: "whole layer" };
const KERNEL_ONLY = "needs the kernel (this page has none)";

interface MapView {
  lp: number;
  canvas: HTMLCanvasElement;
  geom: MapLayout;
}

export class PatchingHeatmapView extends WidgetView {

  private readonly noteEl: HTMLDivElement;
  private readonly heatLabel: HTMLDivElement;
  private readonly heatCanvas: HTMLCanvasElement;
  private readonly colorbarCanvas: HTMLCanvasElement;
  private readonly mapsTitle: HTMLDivElement;
  private readonly mapsEl: HTMLDivElement;
  private readonly cellTitleEl: HTMLDivElement;
  private readonly effectEl: HTMLDivElement;
  private readonly metricEl: HTMLDivElement;
  private readonly tables: Record<"clean" | "corrupted" | "patched", HTMLTableSectionElement>;
  private readonly predNote: HTMLDivElement;
  private readonly editorCanvas: HTMLCanvasElement;
  private readonly corruptedCanvas: HTMLCanvasElement;
  private readonly runButton: HTMLButtonElement;
  private readonly clearButton: HTMLButtonElement;
  private readonly progressFill: HTMLDivElement;
  private readonly progressBar: HTMLDivElement;
  private readonly statusEl: HTMLDivElement;
  private readonly controls: {
    site: ReturnType<typeof select>;
    by: ReturnType<typeof select>;
    direction: ReturnType<typeof select>;
    norm: ReturnType<typeof select>;
    cmap: ReturnType<typeof select>;
    head: ReturnType<typeof select>;
    mode: ReturnType<typeof select>;
    methods: HTMLButtonElement[];
  };

  private data: PatchData | null = null;
  private heat: HeatLayout = heatLayout(1, 1, 0, 200);
  private maps: MapView[] = [];
  private mapRect: Rect = { x: 0, y: 0, w: 1, h: 1 };
  private imageCanvas: HTMLCanvasElement | null = null;
  private corruptedImage: HTMLCanvasElement | null = null;
  private editorRect: Rect = { x: 0, y: 0, w: 1, h: 1 };
  private painted: number[] = [];
  private paintShown = "";
  private modeShown = "";
  private stroke: boolean | null = null;
  private localStatus = "";
  private scale: ColorScale | null = null;
  private paints = 0;

  constructor(model: Model, host: HTMLElement) {
    super(model, host, "pw-patching", "PatchingHeatmap");

    this.noteEl = el("div", { cls: "pw-ph-note" });
    this.heatLabel = el("div", { cls: "pw-ph-label pw-export-text" });
    this.heatCanvas = el("canvas", {
      cls: "pw-canvas pw-ph-heat",
      attrs: { tabindex: "0", role: "img", "aria-label": "patching effects: click a cell for its predictions; arrow keys move" },
    });
    this.colorbarCanvas = el("canvas", { cls: "pw-ph-colorbar" });
    this.mapsTitle = el("div", { cls: "pw-ph-label pw-export-text" });
    this.mapsEl = el("div", { cls: "pw-ph-maps" });
    this.cellTitleEl = el("div", { cls: "pw-ph-label pw-ph-cell-title pw-export-text" });
    this.effectEl = el("div", { cls: "pw-ph-effect pw-export-text" });
    this.metricEl = el("div", { cls: "pw-ph-metric pw-export-text" });
    const table = (caption: string) => {
      const body = el("tbody");
      const t = el("table", { cls: "pw-ph-table" }, [
        el("caption", { cls: "pw-export-text", text: caption }),
        el("thead", {}, [el("tr", {}, [el("th", { text: "#" }), el("th", { text: "class" }), el("th", { text: "p" })])]),
        body,
      ]);
      return { t, body };
    };
    const clean = table("clean run");
    const corrupted = table("corrupted run");
    const patched = table("patched run (this cell)");
    patched.t.classList.add("pw-ph-patched");
    this.tables = { clean: clean.body, corrupted: corrupted.body, patched: patched.body };
    this.predNote = el("div", { cls: "pw-ph-pred-note" });
    this.editorCanvas = el("canvas", {
      cls: "pw-canvas pw-ph-editor",
      attrs: { role: "img", "aria-label": "patch editor: paint patches of the clean image to corrupt them" },
    });
    this.corruptedCanvas = el("canvas", { cls: "pw-ph-corrupted", attrs: { role: "img", "aria-label": "the corrupted image" } });
    this.runButton = button("▶ Run", "corrupt the painted patches and run a new sweep in the kernel", () => this.run(), "pw-ph-run");
    this.clearButton = button("clear", "unpaint every patch", () => this.setPainted([]), "pw-ph-clear");
    this.progressFill = el("div", { cls: "pw-ph-progress-fill" });
    this.progressBar = el("div", { cls: "pw-ph-progress", attrs: { role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" } }, [this.progressFill]);
    this.statusEl = el("div", { cls: "pw-status pw-ph-status" });

    const modeSelect = select(
      "corrupt by",
      [
        { value: "mask", label: "mask (mean colour)" },
        { value: "blur", label: "blur" },
        { value: "noise", label: "noise" },
      ],
      "mask",
      () => undefined, // sent with Run
    );
    const editor = el("div", { cls: "pw-ph-editor-box" }, [
      el("div", { cls: "pw-ph-section-title", text: "patch editor" }),
      el("div", { cls: "pw-ph-images" }, [
        el("div", {}, [el("div", { cls: "pw-ph-caption", text: "clean (paint here)" }), this.editorCanvas]),
        el("div", {}, [el("div", { cls: "pw-ph-caption", text: "corrupted" }), this.corruptedCanvas]),
      ]),
      el("div", { cls: "pw-ph-editor-row" }, [modeSelect.root, this.clearButton, this.runButton]),
      this.progressBar,
      this.statusEl,
    ]);

    const left = el("div", { cls: "pw-ph-left" }, [this.heatLabel, this.heatCanvas, this.colorbarCanvas, this.mapsTitle, this.mapsEl]);
    const panel = el("div", { cls: "pw-ph-panel" }, [
      this.cellTitleEl,
      this.effectEl,
      this.metricEl,
      clean.t,
      corrupted.t,
      patched.t,
      this.predNote,
      editor,
    ]);
    this.root.append(this.titleEl, this.toolbar, this.noteEl, this.errorEl, el("div", { cls: "pw-ph-body" }, [left, panel]));

    this.controls = { ...this.buildToolbar(), mode: modeSelect };
    this.bindPointer();
    this.bindTraits({ data: DATA_KEYS, look: LOOK_KEYS, draw: DRAW_KEYS });
    this.onChange(KERNEL_KEYS, () => {
      if (this.get<string>("status")) this.localStatus = "";
      this.syncKernel();
      this.drawEditor();
    });
    this.rebuild();
  }

  // ------------------------------------------------------------------ model
  protected dropData(): void {
    this.data = null;
  }

  private interactive(): boolean {
    return !!this.get<boolean>("interactive");
  }

  // ------------------------------------------------------------------ toolbar
  private buildToolbar() {
    const site = select("site", SITES.map((s) => ({ value: s, label: s })), "resid_pre", (v) => this.setTraits({ site: v }));
    const by = select("by", Object.entries(BY_LABELS).map(([value, label]) => ({ value, label })), "position", (v) => this.setTraits({ by: v }));
    const methods = ["exact", "attribution"].map((m) =>
      button(m, m === "exact" ? "exact patching: one patched run per cell" : "attribution patching: a gradient estimate (fast preview)", () => this.setTraits({ method: m }), "pw-ph-method"),
    );
    for (const b of methods) b.dataset.help = b.title;
    const methodBox = el("span", { cls: "pw-segmented", attrs: { role: "group", "aria-label": "method" } }, methods);
    const direction = select(
      "direction",
      [
        { value: "denoise", label: "denoise (clean → corrupted)" },
        { value: "noise", label: "noise (corrupted → clean)" },
      ],
      "denoise",
      (v) => this.setTraits({ direction: v }),
    );
    const norm = select(
      "colour range",
      [
        { value: "global", label: "± max |effect|" },
        { value: "unit", label: "fixed ± 1" },
      ],
      "global",
      (v) => this.setTraits({ normalization: v }),
    );
    const cmap = select("colours", COLORMAP_OPTIONS, "rdbu", (v) => this.setTraits({ colormap: v }));
    const head = select("head", [], "0", (v) => this.selectHead(Number(v)));
    const png = button("PNG", "save the current view (heatmap, maps, colour bar, panel) as a PNG image", () => {
      void this.exportPng();
    }, "pw-ph-png");
    this.toolbar.append(site.root, by.root, methodBox, direction.root, norm.root, cmap.root, head.root, png);
    return { site, by, methods, direction, norm, cmap, head };
  }

  protected syncControls(): void {
    const c = this.controls;
    const live = this.interactive();
    const site = this.get<string>("site") ?? "resid_pre";
    c.site.set(site);
    c.by.set(this.get<string>("by") ?? "position");
    c.direction.set(this.get<string>("direction") ?? "denoise");
    c.norm.set(this.get<string>("normalization") ?? "global");
    c.cmap.set(this.get<string>("colormap") ?? "rdbu");
    const allowed = SITE_BYS[site] ?? ["position", "layer"];
    Array.from(c.by.input.options).forEach((o) => {
      o.disabled = !allowed.includes(o.value as never);
    });
    const method = this.get<string>("method") ?? "exact";
    for (const b of c.methods) {
      b.setAttribute("aria-pressed", String(b.textContent === method));
      b.disabled = !live;
      b.title = live ? (b.dataset.help ?? "") : `${b.textContent}: ${KERNEL_ONLY}`;
    }
    for (const s of [c.site, c.by, c.direction]) {
      s.input.disabled = !live;
      s.input.title = live ? "changing this runs a new sweep in the kernel" : KERNEL_ONLY;
    }
    const d = this.data;
    const hp = d?.by === "head_position";
    c.head.root.style.display = hp ? "" : "none";
    if (d && hp && c.head.input.options.length !== d.H) {
      c.head.input.replaceChildren(...Array.from({ length: d.H }, (_, h) => el("option", { text: headLabel(d, h), attrs: { value: String(h) } })));
    }
    if (d && hp) c.head.set(String(this.selection()?.head ?? 0));
  }

  private syncKernel(): void {
    const live = this.interactive();
    const note = this.get<string>("note") ?? "";
    setText(this.noteEl, note);
    this.noteEl.style.display = note ? "" : "none";
    const status = this.localStatus || (this.get<string>("status") ?? "");
    setText(this.statusEl, status);
    const p = Math.max(0, Math.min(1, Number(this.get<number>("progress") ?? 0)));
    this.progressFill.style.width = `${(p * 100).toFixed(1)}%`;
    this.progressBar.setAttribute("aria-valuenow", String(Math.round(p * 100)));
    this.root.dataset.progress = p.toFixed(3);
    this.runButton.disabled = !live;
    this.clearButton.disabled = !live;
    this.controls.mode.input.disabled = !live;
    this.runButton.title = live ? "corrupt the painted patches and run a new sweep in the kernel" : `Run ${KERNEL_ONLY}`;
    this.editorCanvas.classList.toggle("pw-ph-readonly", !live);
    const mode = this.get<string>("corruption_mode") ?? "mask";
    if (mode !== this.modeShown) {
      this.modeShown = mode; // follow Python's mode when it changes; keep the user's pick otherwise
      this.controls.mode.set(mode);
    }
    const fromPython = ((this.get<number[]>("corruption_patches") ?? []) as number[]).map(Number);
    const key = JSON.stringify(fromPython);
    if (key !== this.paintShown) {
      this.paintShown = key;
      this.painted = fromPython;
    }
    this.syncControls();
  }

  // ------------------------------------------------------------------ selection
  private selection(): Selection | null {
    const s = this.get<Record<string, number>>("selected");
    if (!s || s.layer === undefined) return null;
    return s as unknown as Selection;
  }

  private select(sel: Selection): void {
    this.setTraits({ selected: { ...sel } });
  }

  private selectHead(h: number): void {
    const sel = this.selection();
    if (sel) this.select({ ...sel, head: h });
  }

  // ------------------------------------------------------------------ build
  protected rebuild(): void {
    try {
      this.errorEl.textContent = "";
      if (!this.data) this.data = readPatching(this.model);
      const d = this.data;
      this.applyTheme();
      const title = this.get<string>("title") ?? "";
      setText(this.titleEl, title);
      this.titleEl.style.display = title ? "" : "none";
      const { nCols, nPrefixCols } = gridColumns(d);
      this.heat = heatLayout(d.L, nCols, nPrefixCols, Number(this.get<number>("size") ?? 560));
      sizeCanvas(this.heatCanvas, this.heat.width, this.heat.height);
      const g = this.heat;
      this.heatCanvas.dataset.layout = JSON.stringify([g.x0, g.y0, g.cellW, g.cellH, g.gap, g.nPrefixCols, g.nRows, g.nCols]);
      this.imageCanvas = d.pixels ? pixelsToCanvas(d.pixels.data, d.pixels.H, d.pixels.W, d.pixels.C) : null;
      this.corruptedImage = d.corrupted ? pixelsToCanvas(d.corrupted.data, d.corrupted.H, d.corrupted.W, d.corrupted.C) : null;
      this.buildMaps(d);
      this.syncKernel();
      this.draw();
    } catch (err) {
      this.showError(err);
    }
  }

  private buildMaps(d: PatchData): void {
    this.maps = [];
    const show = hasMaps(d);
    this.mapsTitle.style.display = show ? "" : "none";
    this.mapsEl.style.display = show ? "" : "none";
    const imgH = d.pixels?.H ?? d.rows * 16;
    const imgW = d.pixels?.W ?? d.cols * 16;
    const { w, h } = mapSize(Math.max(64, Number(this.get<number>("map_size") ?? 120)), imgH, imgW);
    this.mapRect = { x: 0, y: 0, w, h };
    const big = mapSize(180, imgH, imgW);
    this.editorRect = { x: 0, y: 0, w: big.w, h: big.h };
    sizeCanvas(this.editorCanvas, big.w, big.h);
    sizeCanvas(this.corruptedCanvas, big.w, big.h);
    if (!show) {
      this.mapsEl.replaceChildren();
      return;
    }
    const boxes: HTMLElement[] = [];
    for (let lp = 0; lp < d.L; lp++) {
      const geom = mapLayout(w, h, d.nPrefix);
      const canvas = el("canvas", {
        cls: "pw-canvas pw-ph-map",
        attrs: { "data-layer": String(d.layers[lp]), role: "img", "aria-label": `layer ${d.layers[lp]}: effect of each patch; click to select` },
      });
      sizeCanvas(canvas, geom.width, geom.height);
      const view: MapView = { lp, canvas, geom };
      canvas.addEventListener("click", (ev) => this.clickMap(view, ev));
      this.maps.push(view);
      boxes.push(el("div", { cls: "pw-ph-map-box" }, [el("div", { cls: "pw-ph-caption pw-export-text", text: `layer ${d.layers[lp]}` }), canvas]));
    }
    this.mapsEl.replaceChildren(...boxes);
  }

  // ------------------------------------------------------------------ draw
  protected draw(): void {
    if (!this.data) return;
    const t0 = performance.now();
    try {
      const d = this.data;
      this.scale = centredScale(d.values, this.get<string>("normalization") ?? "global");
      this.syncControls();
      this.drawHeat();
      this.drawColorbar();
      this.drawMaps();
      this.drawPanel();
      this.drawEditor();
    } catch (err) {
      this.showError(err);
      return;
    }
    this.paints++;
    const ds = this.root.dataset;
    ds.paints = String(this.paints);
    ds.selected = JSON.stringify(this.selection() ?? {});
    ds.by = this.data.by;
    ds.method = this.get<string>("method") ?? "exact";
    this.root.dispatchEvent(new CustomEvent("pw-paint", { detail: { ms: performance.now() - t0 } }));
  }

  private colorOf(v: number): [number, number, number] {
    const table = lut(this.get<string>("colormap") ?? "rdbu");
    const k = lutIndex(this.scale ? this.scale.map(v) : 0.5) * 4;
    return [table[k], table[k + 1], table[k + 2]];
  }

  private fill(ctx: CanvasRenderingContext2D, v: number, r: Rect): void {
    const [cr, cg, cb] = this.colorOf(v);
    ctx.fillStyle = `rgb(${cr}, ${cg}, ${cb})`;
    ctx.fillRect(r.x, r.y, r.w, r.h);
  }

  private outline(ctx: CanvasRenderingContext2D, r: Rect): void {
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 3;
    ctx.strokeRect(r.x + 0.5, r.y + 0.5, r.w - 1, r.h - 1);
    ctx.strokeStyle = this.theme.accent;
    ctx.lineWidth = 2;
    ctx.strokeRect(r.x + 0.5, r.y + 0.5, r.w - 1, r.h - 1);
  }

  private drawHeat(): void {
    const d = this.data!;
    const g = this.heat;
    const { ctx } = sizeCanvas(this.heatCanvas, g.width, g.height);
    const t = this.theme;
    ctx.fillStyle = t.bg;
    ctx.fillRect(0, 0, g.width, g.height);
    const sel = this.selection();
    const head = sel ? columnOf(d, sel).head : 0;
    for (let row = 0; row < d.L; row++) {
      for (let col = 0; col < g.nCols; col++) this.fill(ctx, valueAt(d, row, columnCell(d, col, head)), cellRect(g, row, col));
    }
    ctx.fillStyle = t.fg;
    ctx.font = `10px ${t.font}`;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let row = 0; row < d.L; row++) ctx.fillText(`L${d.layers[row]}`, g.x0 - 4, g.y0 + (row + 0.5) * g.cellH);
    // column labels: every prefix token, then thinned patch labels (canvas text: never parsed as HTML)
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const label = (col: number) => (d.by === "head" ? headLabel(d, col) : d.by === "layer" ? "layer" : tokenLabel(d, col));
    const y = g.y0 + d.L * g.cellH + 3;
    const step = labelStep(g.cellW, 24);
    const right = [-Infinity, -Infinity]; // two rows of labels; a label that fits neither is left out
    for (let col = 0; col < g.nCols; col++) {
      if (col >= g.nPrefixCols && (col - g.nPrefixCols) % step !== 0) continue;
      const text = label(col);
      const w = ctx.measureText(text).width;
      const cx = colX(g, col) + g.cellW / 2;
      const row = right.findIndex((r) => cx - w / 2 > r + 3);
      if (row < 0) continue;
      ctx.fillText(text, cx, y + row * 11);
      right[row] = cx + w / 2;
    }
    ctx.textAlign = "left";
    ctx.fillStyle = t.muted;
    const top = d.by === "head" ? "heads" : d.by === "layer" ? "whole layers" : g.nPrefixCols ? "prefix tokens | patches (row-major)" : "patches (row-major)";
    ctx.fillText(top, g.x0, 3);
    const c = sel ? cellOf(d, sel) : null;
    if (c && sel) this.outline(ctx, cellRect(g, c.lp, columnOf(d, sel).col));
    const site = this.get<string>("site") ?? "";
    const what = d.by === "head_position" ? ` · ${headLabel(d, head)}` : "";
    setText(this.heatLabel, `${this.get<string>("method") ?? "exact"} patching · ${site} by ${BY_LABELS[d.by]}${what} · ${this.get<string>("direction") ?? "denoise"}`);
  }

  private drawColorbar(): void {
    const w = Math.max(240, Math.min(this.heat.width, 420));
    const height = 58;
    const { ctx } = sizeCanvas(this.colorbarCanvas, w, height);
    ctx.fillStyle = this.theme.bg;
    ctx.fillRect(0, 0, w, height);
    if (!this.scale) return;
    const unit = this.get<string>("normalization") === "unit";
    drawColorbar(ctx, {
      x: 6,
      y: 6,
      width: w - 12,
      height: 12,
      colormap: this.get<string>("colormap") ?? "rdbu",
      scale: this.scale,
      theme: this.theme,
      label: `effect: 0 = corrupted run, 1 = clean run · ${unit ? "fixed ±1" : "± max |effect|"}`,
    });
  }

  private drawMaps(): void {
    const d = this.data!;
    if (!hasMaps(d)) return;
    const sel = this.selection();
    const head = sel ? columnOf(d, sel).head : 0;
    const selCell = sel ? cellOf(d, sel) : null;
    setText(this.mapsTitle, `each layer over the clean image${d.by === "head_position" ? ` (${headLabel(d, head)})` : ""}; prefix tokens on the right`);
    const R = this.mapRect;
    for (const m of this.maps) {
      const { ctx } = sizeCanvas(m.canvas, m.geom.width, m.geom.height);
      ctx.fillStyle = this.theme.bg;
      ctx.fillRect(0, 0, m.geom.width, m.geom.height);
      if (this.imageCanvas) {
        ctx.imageSmoothingEnabled = true;
        ctx.drawImage(this.imageCanvas, R.x, R.y, R.w, R.h);
      }
      const vals = tokenValues(d, m.lp, head);
      ctx.globalAlpha = 0.7;
      for (let p = 0; p < d.rows * d.cols; p++) {
        const r = patchRect(R, d.nPrefix + p, d.rows, d.cols, d.nPrefix);
        if (r) this.fill(ctx, vals[d.nPrefix + p], r);
      }
      ctx.globalAlpha = 1;
      for (let i = 0; i < d.nPrefix; i++) {
        const r = m.geom.prefix[i];
        this.fill(ctx, vals[i], r);
        ctx.strokeStyle = this.theme.grid;
        ctx.lineWidth = 1;
        ctx.strokeRect(r.x + 0.5, r.y + 0.5, r.w - 1, r.h - 1);
      }
      if (selCell && selCell.lp === m.lp && sel?.position !== undefined) {
        const r = sel.position < d.nPrefix ? m.geom.prefix[sel.position] : patchRect(R, sel.position, d.rows, d.cols, d.nPrefix);
        if (r) this.outline(ctx, r);
      }
    }
  }

  private fillTable(body: HTMLTableSectionElement, top: Top[] | null, empty: string): void {
    const d = this.data!;
    if (!top || !top.length) {
      body.replaceChildren(el("tr", {}, [el("td", { cls: "pw-ph-empty", text: empty, attrs: { colspan: "3" } })]));
      return;
    }
    body.replaceChildren(
      ...top.map((e, i) =>
        el("tr", {}, [
          el("td", { cls: "pw-export-text", text: String(i + 1) }),
          el("td", { cls: "pw-export-text", text: className(d, e.cls) }),
          el("td", { cls: "pw-export-text", text: e.prob.toFixed(3) }),
        ]),
      ),
    );
  }

  private drawPanel(): void {
    const d = this.data!;
    const sel = this.selection();
    const c = sel ? cellOf(d, sel) : null;
    if (!sel || !c) {
      setText(this.cellTitleEl, "click a cell");
      setText(this.effectEl, "");
      this.fillTable(this.tables.patched, null, "no cell selected");
      this.root.dataset.cellFilled = "0";
      return;
    }
    setText(this.cellTitleEl, cellTitle(d, sel));
    const method = this.get<string>("method") ?? "exact";
    const v = valueAt(d, c.lp, c.cell);
    setText(this.effectEl, `effect ${formatValue(v)} (${method === "exact" ? "exact" : "attribution estimate"}; 0 = corrupted, 1 = clean)`);
    const cm = Number(this.get<number>("clean_metric") ?? 0);
    const km = Number(this.get<number>("corrupted_metric") ?? 0);
    setText(this.metricEl, `metric: clean ${formatValue(cm)}, corrupted ${formatValue(km)}`);
    const noClasses = d.classNames.length === 0 ? "no class read-out" : "not available";
    this.fillTable(this.tables.clean, d.cleanTop, noClasses);
    this.fillTable(this.tables.corrupted, d.corruptedTop, noClasses);
    const top = d.classNames.length ? patchedTop(d, c.lp, c.cell, this.get("selected_top")) : null;
    const live = this.interactive();
    const waiting = live ? "computing in the kernel…" : "not precomputed for this cell";
    this.fillTable(this.tables.patched, top, d.classNames.length ? waiting : noClasses);
    this.root.dataset.cellFilled = top && top.length ? "1" : "0";
    const note = this.get<string>("predictions_note") ?? "";
    setText(this.predNote, note);
    this.predNote.style.display = note ? "" : "none";
  }

  private drawEditor(): void {
    const d = this.data;
    if (!d) return;
    const R = this.editorRect;
    const { ctx } = sizeCanvas(this.editorCanvas, R.w, R.h);
    ctx.fillStyle = this.theme.dark ? "#444" : "#bbb";
    ctx.fillRect(0, 0, R.w, R.h);
    if (this.imageCanvas) ctx.drawImage(this.imageCanvas, 0, 0, R.w, R.h);
    ctx.fillStyle = "rgba(232, 89, 12, 0.45)";
    ctx.strokeStyle = this.theme.accent;
    ctx.lineWidth = 1.5;
    for (const p of this.painted) {
      const r = patchRect(R, d.nPrefix + p, d.rows, d.cols, d.nPrefix);
      if (!r) continue;
      ctx.fillRect(r.x, r.y, r.w, r.h);
      ctx.strokeRect(r.x + 1, r.y + 1, r.w - 2, r.h - 2);
    }
    strokePatchGrid(ctx, R.w, R.h, d.rows, d.cols, "rgba(255,255,255,0.3)");
    const k = sizeCanvas(this.corruptedCanvas, R.w, R.h).ctx;
    k.fillStyle = this.theme.dark ? "#444" : "#bbb";
    k.fillRect(0, 0, R.w, R.h);
    if (this.corruptedImage) k.drawImage(this.corruptedImage, 0, 0, R.w, R.h);
    this.root.dataset.painted = String(this.painted.length);
  }

  // ------------------------------------------------------------------ pointer
  private setPainted(list: number[]): void {
    if (!this.interactive()) return;
    this.painted = list;
    this.drawEditor();
  }

  private run(): void {
    if (!this.interactive()) return;
    if (!this.painted.length) {
      this.localStatus = "paint at least one patch on the clean image first";
      this.syncKernel();
      return;
    }
    const mode = this.controls.mode.input.value;
    this.localStatus = "sent to the kernel…";
    this.syncKernel();
    this.setTraits({
      corruption_patches: this.painted.slice(),
      corruption_mode: mode,
      run_count: Number(this.get<number>("run_count") ?? 0) + 1,
    });
  }

  private clickMap(m: MapView, ev: MouseEvent): void {
    const d = this.data;
    if (!d) return;
    const r = m.canvas.getBoundingClientRect();
    const x = ev.clientX - r.left;
    const y = ev.clientY - r.top;
    const pre = prefixAt(m.geom, x, y);
    const token = pre >= 0 ? pre : patchTokenAt(this.mapRect, x, y, d.rows, d.cols, d.nPrefix);
    if (token < 0) return;
    const sel = this.selection();
    this.select({ ...selectionOf(d, m.lp, columnCell(d, token, sel?.head ?? 0)) });
  }

  private bindPointer(): void {
    const listen = this.listen.bind(this);
    listen(this.heatCanvas, "click", (ev) => {
      const d = this.data;
      if (!d) return;
      const r = this.heatCanvas.getBoundingClientRect();
      const hit = cellAtPoint(this.heat, ev.clientX - r.left, ev.clientY - r.top);
      if (!hit) return;
      const sel = this.selection();
      this.select(selectionOf(d, hit.row, columnCell(d, hit.col, sel ? columnOf(d, sel).head : 0)));
    });
    listen(this.heatCanvas, "keydown", (ev) => {
      const d = this.data;
      const sel = this.selection();
      if (!d || !sel) return;
      const c = cellOf(d, sel);
      if (!c) return;
      const { col, head } = columnOf(d, sel);
      const nCols = this.heat.nCols;
      let row = c.lp;
      let nc = col;
      if (ev.key === "ArrowLeft") nc = Math.max(0, col - 1);
      else if (ev.key === "ArrowRight") nc = Math.min(nCols - 1, col + 1);
      else if (ev.key === "ArrowUp") row = Math.max(0, row - 1);
      else if (ev.key === "ArrowDown") row = Math.min(d.L - 1, row + 1);
      else return;
      ev.preventDefault();
      this.select(selectionOf(d, row, columnCell(d, nc, head)));
    });
    const patchAt = (ev: PointerEvent) => {
      const d = this.data;
      if (!d) return -1;
      const r = this.editorCanvas.getBoundingClientRect();
      const t = patchTokenAt(this.editorRect, ev.clientX - r.left, ev.clientY - r.top, d.rows, d.cols, d.nPrefix);
      return t < 0 ? -1 : t - d.nPrefix;
    };
    listen(this.editorCanvas, "pointerdown", (ev) => {
      if (!this.interactive()) return;
      const p = patchAt(ev);
      if (p < 0) return;
      this.stroke = !this.painted.includes(p);
      this.setPainted(paintPatch(this.painted, p, this.stroke));
    });
    listen(this.editorCanvas, "pointermove", (ev) => {
      if (this.stroke === null || !(ev.buttons & 1)) return;
      const p = patchAt(ev);
      if (p >= 0 && this.painted.includes(p) !== this.stroke) this.setPainted(paintPatch(this.painted, p, this.stroke));
    });
    const end = () => {
      this.stroke = null;
    };
    listen(this.editorCanvas, "pointerup", end);
    listen(this.editorCanvas, "pointerleave", end);
  }

  // ------------------------------------------------------------------ export
  protected pngName(): string {
    const s = this.selection();
    return `patching_${this.get<string>("site")}_${this.data?.by ?? "position"}_L${s?.layer ?? 0}.png`;
  }
}

export const render = renderWith(PatchingHeatmapView);

export default { render };
