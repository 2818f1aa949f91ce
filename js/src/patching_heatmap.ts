// PatchingHeatmap: activation patching results as a layer x position heatmap, per-layer image maps, or a
// layer x head grid, with a side panel of predictions and a patch editor that runs new sweeps in the kernel.
//
// Python computes every number (effects, top-k predictions); this file builds the DOM, wires the events and
// reports the selection and the controls through the synced traits selected / site / by / method /
// direction / normalization / colormap / corruption_patches / corruption_mode / run_count. Data in
// patching_heatmap/data.ts, geometry in layout.ts, painting in draw.ts, the cell panel in panel.ts, the
// controls in toolbar.ts (all under patching_heatmap/). User text goes in via textContent only.
import "./shared/theme.css";
import "./patching_heatmap/style.css";

import {
  type PatchData,
  type Selection,
  cellOf,
  centredScale,
  columnCell,
  columnLabel,
  columnOf,
  gridColumns,
  hasMaps,
  headLabel,
  paintPatch,
  readPatching,
  selectionOf,
  valueAt,
} from "./patching_heatmap/data";
import { type Colouring, type LayerMap, drawEditor, drawEffectColorbar, drawHeat, drawLayerMap } from "./patching_heatmap/draw";
import { KernelFeedback } from "./patching_heatmap/feedback";
import { type MapView, mapView, mapsByFrame } from "./patching_heatmap/frames";
import { type HeatLayout, cellAtPoint, heatLayout, heatTarget, mapLayout, prefixAt } from "./patching_heatmap/layout";
import { CellPanel } from "./patching_heatmap/panel";
import { BY_LABELS, KERNEL_ONLY, type Toolbar, buildToolbar, syncToolbar } from "./patching_heatmap/toolbar";
import type { CorruptionMode, PatchingHeatmapTraits } from "./patching_heatmap/traits";
import { pixelsToCanvas, sizeCanvas } from "./shared/canvas";
import { lut } from "./shared/colormap";
import { button, el, select, setText } from "./shared/dom";
import { FrameStrip, framePixels } from "./shared/frames";
import { type Rect, arrowCell, mapSize, patchTokenAt } from "./shared/patches";
import { localPoint } from "./shared/pointer";
import { type ColorScale, formatValue } from "./shared/scale";
import type { TraitKey } from "./shared/traits";
import { type Model, WidgetView, renderWith } from "./shared/view";

export type { Model };

type Key = TraitKey<PatchingHeatmapTraits>;
const DATA_KEYS: Key[] = [
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
  "frames",
  "frame_pixels",
];
const LOOK_KEYS: Key[] = ["theme", "title", "size", "map_size"];
const DRAW_KEYS: Key[] = ["selected", "normalization", "colormap", "selected_top", "predictions_note", "site", "method", "direction", "clean_metric", "corrupted_metric"];
const KERNEL_KEYS: Key[] = ["interactive", "note", "status", "error", "progress", "corruption_patches", "corruption_mode"];
const MODES: { value: CorruptionMode; label: string }[] = [
  { value: "mask", label: "mask (mean colour)" },
  { value: "blur", label: "blur" },
  { value: "noise", label: "noise" },
  { value: "swap", label: "swap (from corrupted)" },
];

export class PatchingHeatmapView extends WidgetView<PatchingHeatmapTraits> {

  private readonly noteEl: HTMLDivElement;
  private readonly heatLabel: HTMLDivElement;
  private readonly heatCanvas: HTMLCanvasElement;
  private readonly colorbarCanvas: HTMLCanvasElement;
  private readonly mapsTitle: HTMLDivElement;
  private readonly mapsEl: HTMLDivElement;
  private readonly cellPanel = new CellPanel();
  private readonly editorCanvas: HTMLCanvasElement;
  private readonly corruptedCanvas: HTMLCanvasElement;
  private readonly runButton: HTMLButtonElement;
  private readonly clearButton: HTMLButtonElement;
  private readonly feedback: KernelFeedback;
  private readonly tip = el("div", { cls: "pw-ph-tip", attrs: { role: "status" } });
  private readonly controls: Toolbar;
  private readonly modeSelect: ReturnType<typeof select>;
  private readonly frameStrip: FrameStrip;
  private readonly editorCaption = el("div", { cls: "pw-ph-caption", text: "clean (paint here)" });
  private view: MapView | null = null; // what the maps draw: a clip's shown frame (the whole result for an image)

  private data: PatchData | null = null;
  private heat: HeatLayout = heatLayout(1, 1, 0, 200);
  private maps: LayerMap[] = [];
  private mapRect: Rect = { x: 0, y: 0, w: 1, h: 1 };
  private imageCanvas: HTMLCanvasElement | null = null;
  private corruptedImage: HTMLCanvasElement | null = null;
  private editorRect: Rect = { x: 0, y: 0, w: 1, h: 1 };
  private painted: number[] = [];
  private paintShown = "";
  private modeShown = "";
  private stroke: boolean | null = null;
  private laidOutWidth = 0;
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
    this.editorCanvas = el("canvas", {
      cls: "pw-canvas pw-ph-editor",
      attrs: { role: "img", "aria-label": "patch editor: paint patches of the clean image to corrupt them" },
    });
    this.corruptedCanvas = el("canvas", { cls: "pw-ph-corrupted", attrs: { role: "img", "aria-label": "the corrupted image" } });
    this.runButton = button("▶ Run", "corrupt the painted patches and run a new sweep in the kernel", () => this.run(), "pw-ph-run");
    this.clearButton = button("clear", "unpaint every patch", () => this.setPainted([]), "pw-ph-clear");
    this.feedback = new KernelFeedback(this.root);
    const modeSelect = select("corrupt by", MODES, "mask", () => undefined); // sent with Run
    const editor = el("div", { cls: "pw-ph-editor-box" }, [
      el("div", { cls: "pw-ph-section-title", text: "patch editor" }),
      el("div", { cls: "pw-ph-images" }, [
        el("div", {}, [this.editorCaption, this.editorCanvas]),
        el("div", {}, [el("div", { cls: "pw-ph-caption", text: "corrupted" }), this.corruptedCanvas]),
      ]),
      el("div", { cls: "pw-ph-editor-row" }, [modeSelect.root, this.clearButton, this.runButton]),
    ]);

    const heatBox = el("div", { cls: "pw-ph-heat-box" }, [this.heatCanvas, this.tip]);
    this.frameStrip = new FrameStrip((f) => this.setTraits({ frame: f }), () => 700);
    const left = el("div", { cls: "pw-ph-left" }, [this.heatLabel, ...this.feedback.parts, heatBox, this.colorbarCanvas, this.mapsTitle, this.frameStrip.root, this.mapsEl]);
    const panel = el("div", { cls: "pw-ph-panel" }, [...this.cellPanel.parts, editor]);
    this.root.append(this.titleEl, this.toolbar, this.noteEl, this.errorEl, el("div", { cls: "pw-ph-body" }, [left, panel]));

    this.modeSelect = modeSelect;
    this.controls = buildToolbar(this.toolbar, (v) => this.setTraits(v), (h) => this.selectHead(h), () => void this.exportPng());
    this.bindPointer();
    this.bindTraits({ data: DATA_KEYS, look: LOOK_KEYS, draw: DRAW_KEYS });
    this.onChange(KERNEL_KEYS, () => {
      this.syncKernel();
      this.drawEditor();
    });
    this.onChange(["frame"], () => {
      this.view = null; // the maps follow the shown token frame (its tokens and its image)
      this.draw();
    });
    this.disposers.push(() => this.feedback.destroy(), () => this.frameStrip.stop());
    if (typeof ResizeObserver === "function") {
      // the heatmap is laid out for the widget's width: follow a notebook resized or a panel opened
      const ro = new ResizeObserver(() => {
        if (Math.abs(this.root.clientWidth - this.laidOutWidth) > 24) this.requestRebuild();
      });
      ro.observe(this.root);
      this.disposers.push(() => ro.disconnect());
    }
    this.rebuild();
  }

  // ------------------------------------------------------------------ model
  protected dropData(): void {
    this.data = null;
    this.view = null;
  }

  /** The maps' view of the result: for a clip, the token frame the strip shows. */
  private mapView(): MapView {
    const d = this.data!;
    if (!this.view) {
      const f = Math.max(0, Math.min(d.frames - 1, Number(this.get("frame") ?? 0)));
      this.view = mapView(d, f, d.frames > 1 ? framePixels(this.get("frame_pixels"), f) : null);
    }
    return this.view;
  }

  private interactive(): boolean {
    return !!this.get("interactive");
  }

  // ------------------------------------------------------------------ toolbar
  protected syncControls(): void {
    syncToolbar(this.controls, this.model, this.data, this.selection());
  }

  private syncKernel(): void {
    const live = this.interactive();
    const note = this.get("note") ?? "";
    setText(this.noteEl, note);
    this.noteEl.style.display = note ? "" : "none";
    this.runButton.disabled = !live;
    this.clearButton.disabled = !live;
    this.modeSelect.input.disabled = !live;
    this.runButton.title = live ? "corrupt the painted patches and run a new sweep in the kernel" : `Run ${KERNEL_ONLY}`;
    this.editorCanvas.classList.toggle("pw-ph-readonly", !live);
    const mode = this.get("corruption_mode") ?? "mask";
    if (mode !== this.modeShown) {
      this.modeShown = mode; // follow Python's mode when it changes; keep the user's pick otherwise
      this.modeSelect.set(mode);
    }
    const fromPython = ((this.get("corruption_patches") ?? []) as number[]).map(Number);
    const key = JSON.stringify(fromPython);
    if (key !== this.paintShown) {
      this.paintShown = key;
      this.painted = fromPython;
    }
    this.showFeedback();
    this.syncControls();
  }

  private showFeedback(): void {
    const key = (a: number[]) => JSON.stringify([...a].sort((x, y) => x - y));
    this.feedback.show({
      progress: Number(this.get("progress") ?? 0),
      status: this.get("status") ?? "",
      error: this.get("error") ?? "",
      pending: this.interactive() && key(this.painted) !== key(((this.get("corruption_patches") ?? []) as number[]).map(Number)),
    });
  }

  // ------------------------------------------------------------------ selection
  private selection(): Selection | null {
    const s = this.get("selected") as Partial<Selection> | undefined;
    if (!s || s.layer === undefined) return null;
    return s as Selection;
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
      const title = this.get("title") ?? "";
      setText(this.titleEl, title);
      this.titleEl.style.display = title ? "" : "none";
      const { nCols, nPrefixCols } = gridColumns(d);
      this.laidOutWidth = this.root.clientWidth;
      this.heat = heatLayout(d.L, nCols, nPrefixCols, heatTarget(nCols, Number(this.get("size") ?? 560), this.laidOutWidth));
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

  private buildMaps(full: PatchData): void {
    this.maps = [];
    const d = this.mapView().data;
    const show = hasMaps(full);
    this.mapsTitle.style.display = show ? "" : "none";
    this.mapsEl.style.display = show ? "" : "none";
    const imgH = d.pixels?.H ?? d.rows * 16;
    const imgW = d.pixels?.W ?? d.cols * 16;
    const { w, h } = mapSize(Math.max(64, Number(this.get("map_size") ?? 120)), imgH, imgW);
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
      const view: LayerMap = { lp, canvas, geom };
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
      this.scale = centredScale(d.values, this.get("normalization") ?? "global");
      this.syncControls();
      this.drawHeat();
      const cbw = Math.max(240, Math.min(this.heat.width, 420));
      drawEffectColorbar(this.colorbarCanvas, cbw, this.scale, this.get("normalization") === "unit", this.get("colormap") ?? "rdbu", this.theme);
      this.drawMaps();
      this.root.dataset.cellFilled = this.cellPanel.draw(d, this.selection(), this.model) ? "1" : "0";
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
    ds.method = this.get("method") ?? "exact";
    this.root.dispatchEvent(new CustomEvent("pw-paint", { detail: { ms: performance.now() - t0 } }));
  }

  private colouring(): Colouring {
    return { table: lut(this.get("colormap") ?? "rdbu", this.theme.dark), scale: this.scale };
  }

  private drawHeat(): void {
    const d = this.data!;
    const g = this.heat;
    const sel = this.selection();
    drawHeat(sizeCanvas(this.heatCanvas, g.width, g.height).ctx, d, g, sel, this.colouring(), this.theme);
    const site = this.get("site") ?? "";
    const what = d.by === "head_position" ? ` · ${headLabel(d, sel ? columnOf(d, sel).head : 0)}` : "";
    setText(this.heatLabel, `${this.get("method") ?? "exact"} patching · ${site} by ${BY_LABELS[d.by]}${what} · ${this.get("direction") ?? "denoise"}`);
  }

  private drawMaps(): void {
    const full = this.data!;
    const frames = full.frames;
    const frame = Math.max(0, Math.min(frames - 1, Number(this.get("frame") ?? 0)));
    this.frameStrip.sync(frame, mapsByFrame(full) ? frames : 1, `t${frame}`);
    if (!hasMaps(full)) return;
    const { data: d, local } = this.mapView();
    const sel = local(this.selection());
    const head = sel ? columnOf(d, sel).head : 0;
    const over = frames > 1 ? `frame t${frame} of the clean clip${full.by === "tube" ? " (each patch: its tube)" : ""}` : "the clean image";
    setText(this.mapsTitle, `each layer over ${over}${d.by === "head_position" ? ` (${headLabel(d, head)})` : ""}${d.nPrefix ? "; prefix tokens on the right" : ""}`);
    const c = this.colouring();
    const image = d.pixels && d.pixels !== full.pixels ? pixelsToCanvas(d.pixels.data, d.pixels.H, d.pixels.W, d.pixels.C) : this.imageCanvas;
    for (const m of this.maps) drawLayerMap(m, d, this.mapRect, image, sel, c, this.theme);
    this.root.dataset.frame = String(frame);
  }

  private drawEditor(): void {
    const d = this.data;
    if (!d) return;
    drawEditor(this.editorCanvas, this.corruptedCanvas, d, this.editorRect, { clean: this.imageCanvas, corrupted: this.corruptedImage }, this.painted, this.theme);
    this.root.dataset.painted = String(this.painted.length);
    setText(this.editorCaption, d.frames > 1 ? "clean, frame t0 (paint here: every frame)" : "clean (paint here)");
  }

  // ------------------------------------------------------------------ pointer
  private setPainted(list: number[]): void {
    if (!this.interactive()) return;
    this.painted = list;
    this.drawEditor();
    this.showFeedback();
  }

  private run(): void {
    if (!this.interactive()) return;
    if (!this.painted.length) {
      this.feedback.local("paint at least one patch on the clean image first");
      return;
    }
    const mode = this.modeSelect.input.value as CorruptionMode;
    this.feedback.local("sent to the kernel…");
    this.setTraits({
      corruption_patches: this.painted.slice(),
      corruption_mode: mode,
      run_count: Number(this.get("run_count") ?? 0) + 1,
    });
  }

  private clickMap(m: LayerMap, ev: MouseEvent): void {
    if (!this.data) return;
    const { data: d, global } = this.mapView();
    const { x, y } = localPoint(m.canvas, ev);
    const pre = prefixAt(m.geom, x, y);
    const token = pre >= 0 ? pre : patchTokenAt(this.mapRect, x, y, d.rows, d.cols, d.nPrefix);
    if (token < 0) return;
    const sel = this.selection();
    this.select(global(m.lp, token, sel?.head ?? 0));
  }

  private bindPointer(): void {
    const listen = this.listen.bind(this);
    listen(this.heatCanvas, "click", (ev) => {
      const d = this.data;
      if (!d) return;
      const p = localPoint(this.heatCanvas, ev);
      const hit = cellAtPoint(this.heat, p.x, p.y);
      if (!hit) return;
      const sel = this.selection();
      this.select(selectionOf(d, hit.row, columnCell(d, hit.col, sel ? columnOf(d, sel).head : 0)));
    });
    listen(this.heatCanvas, "pointermove", (ev) => this.hover(ev));
    listen(this.heatCanvas, "pointerleave", () => this.hover(null));
    listen(this.heatCanvas, "keydown", (ev) => {
      const d = this.data;
      const sel = this.selection();
      if (!d || !sel) return;
      const c = cellOf(d, sel);
      if (!c) return;
      const { col, head } = columnOf(d, sel);
      const next = arrowCell(c.lp, col, ev.key, d.L, this.heat.nCols);
      if (!next) return;
      ev.preventDefault();
      this.select(selectionOf(d, next.row, columnCell(d, next.col, head)));
    });
    const patchAt = (ev: PointerEvent) => {
      const d = this.data;
      if (!d) return -1;
      const p = localPoint(this.editorCanvas, ev);
      const t = patchTokenAt(this.editorRect, p.x, p.y, d.rows, d.cols, d.nPrefix);
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

  /** The value under the pointer, in a tip beside it (and `data-hover` for tests); null hides it. */
  private hover(ev: PointerEvent | null): void {
    const d = this.data;
    const p = ev && d ? localPoint(this.heatCanvas, ev) : null;
    const hit = p ? cellAtPoint(this.heat, p.x, p.y) : null;
    if (!d || !p || !hit) {
      this.tip.style.display = "none";
      this.root.dataset.hover = "";
      return;
    }
    const sel = this.selection();
    const head = sel ? columnOf(d, sel).head : 0;
    const cell = columnCell(d, hit.col, head);
    const col = d.by === "layer" ? "whole layer" : columnLabel(d, hit.col);
    const what = d.by === "head_position" ? ` · ${headLabel(d, head)}` : "";
    const text = `L${d.layers[hit.row]} · ${col}${what} · effect ${formatValue(valueAt(d, hit.row, cell))}`;
    setText(this.tip, text);
    this.root.dataset.hover = text;
    this.tip.style.display = "block";
    const left = Math.min(p.x + 12, Math.max(0, this.heat.width - this.tip.offsetWidth));
    this.tip.style.left = `${left}px`;
    this.tip.style.top = `${Math.max(0, p.y - 28)}px`;
  }

  // ------------------------------------------------------------------ export
  protected pngName(): string {
    const s = this.selection();
    const f = (this.data?.frames ?? 1) > 1 ? `_t${this.get("frame") ?? 0}` : "";
    return `patching_${this.get("site")}_${this.data?.by ?? "position"}_L${s?.layer ?? 0}${f}.png`;
  }
}

export const render = renderWith(PatchingHeatmapView);

export default { render };
