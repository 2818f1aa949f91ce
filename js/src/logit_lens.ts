// LogitLens: what every patch predicts at every layer, over the image.
//
// Python computes every number (top-k, probabilities of the legend classes, entropy, KL, ranks); this
// file draws them and reports the selection through the synced traits layer / patch / target_class /
// mode / prompts (and normalization, colormap, show_labels, ...). User text goes in via textContent.
import "./shared/theme.css";
import "./logit_lens/style.css";

import {
  type LensData,
  type Mode,
  MODES,
  className,
  layerPos,
  legendPos,
  modeRangeValues,
  modeValues,
  readLens,
  shortLabel,
  top1,
  top1Counts,
  topAt,
  trajectory,
} from "./logit_lens/data";
import { type Rect, chartPoint, classColor, mapSize, nextLayerPos, patchRect, patchTokenAt, rgb, textOn } from "./logit_lens/layout";
import { pixelsToCanvas, scratch, sizeCanvas, strokePatchGrid } from "./shared/canvas";
import { drawColorbar } from "./shared/colorbar";
import { COLORMAP_OPTIONS, lut, lutIndex } from "./shared/colormap";
import { button, el, select, setText } from "./shared/dom";
import { type ColorScale, formatValue, makeScale } from "./shared/scale";
import { type Model, WidgetView, renderWith } from "./shared/view";

export type { Model };

const DATA_KEYS = [
  "image_pixels",
  "top_indices",
  "top_probs",
  "top_scale",
  "entropy",
  "kl",
  "final_rank",
  "class_probs",
  "class_scale",
  "class_ids",
  "track_indices",
  "track_probs",
  "track_scale",
  "grid",
  "n_prefix_tokens",
  "token_labels",
  "layer_indices",
  "class_names",
  "max_entropy",
];
const LOOK_KEYS = ["theme", "title", "size"];
const DRAW_KEYS = ["layer", "patch", "target_class", "mode", "normalization", "colormap", "show_labels", "opacity"];
const PROMPT_KEYS = ["prompts", "prompts_editable", "prompt_note", "status"];

const MODE_LABEL: Record<Mode, string> = Object.fromEntries(MODES.map((m) => [m.value, m.label])) as Record<Mode, string>;

export class LogitLensView extends WidgetView {
  private readonly layerLabel: HTMLSpanElement;
  private readonly slider: HTMLInputElement;
  private readonly playButton: HTMLButtonElement;
  private readonly mapLabel: HTMLDivElement;
  private readonly mapCanvas: HTMLCanvasElement;
  private readonly prefixBar: HTMLDivElement;
  private readonly colorbarCanvas: HTMLCanvasElement;
  private readonly legendEl: HTMLDivElement;
  private readonly detailTitle: HTMLDivElement;
  private readonly tableBody: HTMLTableSectionElement;
  private readonly chartCanvas: HTMLCanvasElement;
  private readonly promptPanel: HTMLDivElement;
  private readonly promptList: HTMLDivElement;
  private readonly promptNote: HTMLDivElement;
  private readonly addPrompt: HTMLButtonElement;
  private readonly statusEl: HTMLDivElement;
  private readonly controls: {
    mode: ReturnType<typeof select>;
    norm: ReturnType<typeof select>;
    cmap: ReturnType<typeof select>;
    labels: HTMLInputElement;
  };

  private data: LensData | null = null;
  private mapRect: Rect = { x: 0, y: 0, w: 1, h: 1 };
  private imageCanvas: HTMLCanvasElement | null = null;
  private overlay: { canvas: HTMLCanvasElement; ctx: CanvasRenderingContext2D; image: ImageData } | null = null;
  private preview: number | null = null;
  private shownScale: { scale: ColorScale; label: string; offset: number } | null = null;
  private playTimer: ReturnType<typeof setInterval> | null = null;
  private paints = 0;
  private promptsShown = "";

  constructor(model: Model, host: HTMLElement) {
    super(model, host, "pw-logit-lens", "LogitLens");

    this.playButton = button("▶ play", "animate through the layers", () => this.togglePlay(), "pw-ll-play");
    this.playButton.setAttribute("aria-pressed", "false");
    this.slider = el("input", { cls: "pw-ll-slider", attrs: { type: "range", min: "0", max: "0", step: "1", "aria-label": "layer" } });
    this.layerLabel = el("span", { cls: "pw-ll-layer-label pw-export-text" });
    const layerRow = el("div", { cls: "pw-ll-layer-row" }, [this.playButton, this.slider, this.layerLabel]);
    this.mapLabel = el("div", { cls: "pw-ll-map-label pw-export-text" });
    this.mapCanvas = el("canvas", {
      cls: "pw-canvas pw-ll-map",
      attrs: { tabindex: "0", role: "img", "aria-label": "logit lens map: hover a patch for its top classes, click to select it" },
    });
    this.prefixBar = el("div", { cls: "pw-ll-prefix" });
    this.colorbarCanvas = el("canvas", { cls: "pw-ll-colorbar" });
    this.legendEl = el("div", { cls: "pw-ll-legend", attrs: { role: "list", "aria-label": "classes: click one to map its probability" } });
    this.detailTitle = el("div", { cls: "pw-ll-detail-title pw-export-text" });
    this.tableBody = el("tbody");
    const table = el("table", { cls: "pw-ll-table" }, [
      el("thead", {}, [el("tr", {}, [el("th", { text: "#" }), el("th", { text: "class" }), el("th", { text: "p" })])]),
      this.tableBody,
    ]);
    this.chartCanvas = el("canvas", { cls: "pw-ll-chart", attrs: { role: "img", "aria-label": "the patch's final top classes across layers" } });
    this.promptList = el("div", { cls: "pw-ll-prompt-list" });
    this.promptNote = el("div", { cls: "pw-ll-prompt-note" });
    this.addPrompt = button("+ prompt", "add a prompt", () => this.addPromptRow(), "pw-ll-add-prompt");
    this.promptPanel = el("div", { cls: "pw-ll-prompts" }, [
      el("div", { cls: "pw-ll-section-title", text: "prompts" }),
      this.promptList,
      this.addPrompt,
      this.promptNote,
    ]);
    this.statusEl = el("div", { cls: "pw-status pw-ll-status" });

    const left = el("div", { cls: "pw-ll-left" }, [this.mapLabel, this.mapCanvas, this.prefixBar, this.colorbarCanvas]);
    const mid = el("div", { cls: "pw-ll-mid" }, [el("div", { cls: "pw-ll-section-title", text: "top-1 classes at this layer" }), this.legendEl, this.promptPanel]);
    const right = el("div", { cls: "pw-ll-right" }, [this.detailTitle, table, this.chartCanvas]);
    this.root.append(this.titleEl, this.toolbar, layerRow, this.errorEl, el("div", { cls: "pw-ll-body" }, [left, mid, right]), this.statusEl);

    this.controls = this.buildToolbar();
    this.bindPointer();
    this.bindTraits({ data: DATA_KEYS, look: LOOK_KEYS, draw: DRAW_KEYS });
    this.onChange(PROMPT_KEYS, () => this.syncPrompts());
    this.rebuild();
  }

  // ------------------------------------------------------------------ model
  protected dropData(): void {
    this.data = null;
  }

  // ------------------------------------------------------------------ toolbar
  private buildToolbar() {
    const mode = select("show", MODES, "top1", (v) => this.setTraits({ mode: v }));
    const norm = select(
      "colour range",
      [
        { value: "global", label: "all layers" },
        { value: "layer", label: "this layer" },
      ],
      "global",
      (v) => this.setTraits({ normalization: v }),
    );
    const cmap = select(
      "colours",
      COLORMAP_OPTIONS,
      "viridis",
      (v) => this.setTraits({ colormap: v }),
    );
    const labels = el("input", { attrs: { type: "checkbox" } });
    labels.addEventListener("change", () => this.setTraits({ show_labels: labels.checked }));
    const labelsField = el("label", { cls: "pw-field" }, [labels, el("span", { cls: "pw-field-label", text: "labels on patches" })]);
    const png = button("PNG", "save the current view (map, legend, colour bar, chart) as a PNG image", () => {
      void this.exportPng();
    }, "pw-ll-png");
    this.toolbar.append(mode.root, norm.root, cmap.root, labelsField, png);
    this.slider.addEventListener("input", () => {
      const d = this.data;
      if (!d) return;
      const lp = Math.max(0, Math.min(d.L - 1, Math.round(Number(this.slider.value))));
      if (d.layers[lp] !== this.get<number>("layer")) this.setTraits({ layer: d.layers[lp] });
    });
    return { mode, norm, cmap, labels };
  }

  protected syncControls(): void {
    const c = this.controls;
    c.mode.set(this.mode());
    c.norm.set(this.get<string>("normalization") ?? "global");
    c.cmap.set(this.get<string>("colormap") ?? "viridis");
    c.labels.checked = !!this.get<boolean>("show_labels");
    const d = this.data;
    if (d) {
      this.slider.max = String(Math.max(0, d.L - 1));
      const lp = String(this.lp());
      if (this.slider.value !== lp) this.slider.value = lp;
      this.slider.disabled = d.L <= 1;
      this.playButton.disabled = d.L <= 1;
    }
  }

  // ------------------------------------------------------------------ prompts (CLIP)
  private syncPrompts(): void {
    const prompts = ((this.get<string[]>("prompts") ?? []) as string[]).map(String);
    const editable = !!this.get<boolean>("prompts_editable");
    this.promptPanel.style.display = prompts.length ? "" : "none";
    const key = JSON.stringify([prompts, editable]);
    const focused = this.promptList.contains(document.activeElement);
    if (key !== this.promptsShown && !focused) {
      this.promptsShown = key;
      this.promptList.replaceChildren(...prompts.map((p, i) => this.promptRow(p, i, editable, prompts.length)));
    }
    this.addPrompt.style.display = editable ? "" : "none";
    const note = this.get<string>("prompt_note") || (editable ? "edit a prompt and press Enter: the kernel recomputes the lens" : "read-only");
    setText(this.promptNote, note);
    this.promptNote.classList.toggle("pw-ll-readonly", !editable);
    const status = this.get<string>("status") ?? "";
    setText(this.statusEl, status);
    this.statusEl.classList.toggle("pw-ll-busy", status !== "");
  }

  private promptRow(text: string, i: number, editable: boolean, n: number): HTMLDivElement {
    const swatch = el("span", { cls: "pw-ll-swatch" });
    const d = this.data;
    swatch.style.background = rgb(classColor(d ? legendPos(d, i) : i));
    const input = el("input", { cls: "pw-input pw-ll-prompt-input", attrs: { type: "text", "aria-label": `prompt ${i + 1}` } });
    input.value = text;
    input.readOnly = !editable;
    input.addEventListener("change", () => this.submitPrompts());
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        input.blur();
      }
    });
    const remove = button("×", "remove this prompt", () => {
      row.remove();
      this.submitPrompts();
    }, "pw-ll-remove-prompt");
    remove.disabled = !editable || n <= 1;
    remove.style.display = editable ? "" : "none";
    const row = el("div", { cls: "pw-ll-prompt" }, [swatch, input, remove]);
    return row;
  }

  private addPromptRow(): void {
    const n = this.promptList.children.length;
    const row = this.promptRow("", n, true, n + 1);
    this.promptList.appendChild(row);
    row.querySelector("input")?.focus();
  }

  private submitPrompts(): void {
    if (!this.get<boolean>("prompts_editable")) return;
    const values = Array.from(this.promptList.querySelectorAll<HTMLInputElement>("input.pw-ll-prompt-input")).map((i) => i.value.trim());
    const filled = values.filter((v) => v !== "");
    if (!filled.length) return;
    if (values.some((v) => v === "") && filled.length === values.length - 1 && values[values.length - 1] === "") return; // a new, still empty row
    const current = (this.get<string[]>("prompts") ?? []).map(String);
    if (JSON.stringify(filled) === JSON.stringify(current)) return;
    this.promptsShown = "";
    setText(this.statusEl, "recomputing…");
    this.setTraits({ prompts: filled });
  }

  // ------------------------------------------------------------------ selection helpers
  private mode(): Mode {
    const m = this.get<string>("mode");
    return (MODES.some((x) => x.value === m) ? m : "top1") as Mode;
  }

  private lp(): number {
    const d = this.data;
    return d ? layerPos(d, this.get<number>("layer")) : 0;
  }

  private shownToken(): number {
    const d = this.data;
    const t = this.preview ?? this.get<number>("patch") ?? 0;
    return d ? Math.min(d.T - 1, Math.max(0, t)) : 0;
  }

  /** Legend position of the class shown in class_prob mode (target_class, else the first). */
  private targetPos(): number {
    const d = this.data;
    if (!d) return -1;
    const c = this.get<number>("target_class");
    if (c === undefined || c < 0) return d.classIds.length ? 0 : -1;
    return legendPos(d, c);
  }

  private tokenLabel(t: number): string {
    return this.data?.tokenLabels[t] ?? `token ${t}`;
  }

  // ------------------------------------------------------------------ build
  protected rebuild(): void {
    try {
      this.errorEl.textContent = "";
      if (!this.data) this.data = readLens(this.model);
      const d = this.data;
      this.applyTheme();
      const title = this.get<string>("title") ?? "";
      setText(this.titleEl, title);
      this.titleEl.style.display = title ? "" : "none";
      const imgH = d.pixels?.H ?? d.rows * 16;
      const imgW = d.pixels?.W ?? d.cols * 16;
      const { w, h } = mapSize(this.get<number>("size") ?? 320, imgH, imgW);
      this.mapRect = { x: 0, y: 0, w, h };
      sizeCanvas(this.mapCanvas, w, h);
      (this.mapCanvas.parentElement as HTMLElement).style.width = `${Math.max(w, 200)}px`;
      this.mapCanvas.dataset.rect = JSON.stringify([0, 0, w, h, d.rows, d.cols, d.nPrefix]);
      this.imageCanvas = d.pixels ? pixelsToCanvas(d.pixels.data, d.pixels.H, d.pixels.W, d.pixels.C, false) : null;
      const ov = scratch(d.cols, d.rows);
      this.overlay = { ...ov, image: ov.ctx.createImageData(d.cols, d.rows) };
      this.buildPrefixButtons();
      this.promptsShown = "";
      this.syncPrompts();
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
      const b = button(this.tokenLabel(i), `${this.tokenLabel(i)}: hover for its top classes, click to select`, () => this.clickToken(i), "pw-ll-prefix-button");
      b.prepend(el("span", { cls: "pw-ll-swatch" }));
      b.addEventListener("pointerenter", () => this.hoverToken(i));
      b.addEventListener("pointerleave", () => this.hoverToken(null));
      return b;
    });
    this.prefixBar.replaceChildren(...(d.nPrefix ? [el("span", { cls: "pw-ll-prefix-title", text: "prefix tokens" }), ...buttons] : []));
    this.prefixBar.style.display = d.nPrefix ? "" : "none";
  }

  // ------------------------------------------------------------------ draw
  protected draw(): void {
    if (!this.data) return;
    const t0 = performance.now();
    try {
      this.drawMap();
      this.drawPrefix();
      this.drawColorbar();
      this.drawLegend();
      this.drawDetail();
      this.syncControls();
    } catch (err) {
      this.showError(err);
      return;
    }
    this.paints++;
    const ds = this.root.dataset;
    ds.paints = String(this.paints);
    ds.layer = String(this.get<number>("layer"));
    ds.patch = String(this.shownToken());
    ds.mode = this.mode();
    ds.targetClass = String(this.get<number>("target_class"));
    this.root.dispatchEvent(new CustomEvent("pw-paint", { detail: { ms: performance.now() - t0 } }));
  }

  /** Colour of every token in the current mode (RGB triples) and the scale used (null for top1). */
  private tokenColors(): { colors: Uint8ClampedArray; values: Float32Array | null } {
    const d = this.data!;
    const lp = this.lp();
    const mode = this.mode();
    const colors = new Uint8ClampedArray(d.T * 3);
    if (mode === "top1") {
      const cls = top1(d, lp);
      for (let t = 0; t < d.T; t++) colors.set(classColor(legendPos(d, cls[t])), t * 3);
      this.shownScale = null;
      return { colors, values: null };
    }
    const tp = this.targetPos();
    const values = modeValues(d, mode, lp, tp);
    const global = this.get<string>("normalization") !== "layer";
    const range = modeRangeValues(d, mode, lp, tp, global);
    let scale: ColorScale;
    let offset = 0;
    let label: string;
    if (mode === "entropy") {
      const top = d.maxEntropy > 0 ? d.maxEntropy : 1;
      scale = { kind: "linear", lo: 0, hi: top, max: top, clipped: false, map: (v: number) => (v <= 0 ? 0 : v >= top ? 1 : v / top) };
      label = `entropy (nats), max log ${d.classNames.length || "C"} = ${formatValue(top)}`;
    } else if (mode === "rank") {
      offset = 1; // log scale on rank + 1: 1 = the final class is top-1 here
      const shifted = Float32Array.from(range, (v) => v + 1);
      scale = makeScale("log", shifted);
      label = "rank of the final class + 1 (1 = top-1), log";
    } else if (mode === "kl") {
      scale = makeScale("linear", range);
      label = `KL(last ‖ this layer), nats · ${global ? "all layers" : "this layer"}`;
    } else {
      scale = makeScale("linear", range);
      const c = tp >= 0 ? d.classIds[tp] : -1;
      label = tp >= 0 ? `p(${className(d, c)}) · ${global ? "all layers" : "this layer"}` : "no map for this class";
    }
    const table = lut(this.get<string>("colormap") ?? "viridis");
    for (let t = 0; t < d.T; t++) {
      const k = lutIndex(scale.map(values[t] + offset)) * 4;
      colors[t * 3] = table[k];
      colors[t * 3 + 1] = table[k + 1];
      colors[t * 3 + 2] = table[k + 2];
    }
    this.shownScale = { scale, label, offset };
    return { colors, values };
  }

  private lastColors: Uint8ClampedArray = new Uint8ClampedArray(0);

  private drawMap(): void {
    const d = this.data!;
    const R = this.mapRect;
    const { ctx } = sizeCanvas(this.mapCanvas, R.w, R.h);
    ctx.fillStyle = this.theme.dark ? "#444" : "#bbb";
    ctx.fillRect(0, 0, R.w, R.h);
    if (this.imageCanvas) {
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(this.imageCanvas, 0, 0, R.w, R.h);
    }
    const { colors } = this.tokenColors();
    this.lastColors = colors;
    const ov = this.overlay!;
    const px = ov.image.data;
    for (let p = 0; p < d.rows * d.cols; p++) {
      const t = d.nPrefix + p;
      px[p * 4] = colors[t * 3];
      px[p * 4 + 1] = colors[t * 3 + 1];
      px[p * 4 + 2] = colors[t * 3 + 2];
      px[p * 4 + 3] = 255;
    }
    ov.ctx.putImageData(ov.image, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.globalAlpha = Math.min(1, Math.max(0, Number(this.get<number>("opacity") ?? 0.65)));
    ctx.drawImage(ov.canvas, 0, 0, d.cols, d.rows, 0, 0, R.w, R.h);
    ctx.globalAlpha = 1;
    // faint patch grid
    strokePatchGrid(ctx, R.w, R.h, d.rows, d.cols, "rgba(255,255,255,0.25)");
    // short labels on patches (canvas text: never parsed as HTML)
    const cw = R.w / d.cols;
    const ch = R.h / d.rows;
    if (this.get<boolean>("show_labels") && cw >= 22 && ch >= 12) {
      const cls = top1(d, this.lp());
      const max = Math.max(2, Math.floor(cw / 6));
      ctx.font = `${Math.min(11, Math.floor(ch * 0.45))}px ${this.theme.font}`;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      for (let p = 0; p < d.rows * d.cols; p++) {
        const t = d.nPrefix + p;
        const r = Math.floor(p / d.cols);
        const c = p % d.cols;
        const col: [number, number, number] = [colors[t * 3], colors[t * 3 + 1], colors[t * 3 + 2]];
        ctx.fillStyle = textOn(col);
        ctx.fillText(shortLabel(className(d, cls[t]), max), (c + 0.5) * cw, (r + 0.5) * ch, cw - 2);
      }
    }
    // the selected (or hovered) patch
    const pr = patchRect(R, this.shownToken(), d.rows, d.cols, d.nPrefix);
    if (pr) {
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 3;
      ctx.strokeRect(pr.x + 1, pr.y + 1, pr.w - 2, pr.h - 2);
      ctx.strokeStyle = this.theme.accent;
      ctx.lineWidth = 2;
      ctx.strokeRect(pr.x + 1, pr.y + 1, pr.w - 2, pr.h - 2);
    }
    const lp = this.lp();
    setText(this.mapLabel, `${MODE_LABEL[this.mode()]} · layer ${d.layers[lp]} (${this.get<string>("site") ?? "resid_post"})`);
    setText(this.layerLabel, `layer ${d.layers[lp]} (${lp + 1}/${d.L})`);
  }

  private drawPrefix(): void {
    const d = this.data!;
    const shown = this.shownToken();
    Array.from(this.prefixBar.querySelectorAll<HTMLButtonElement>(".pw-ll-prefix-button")).forEach((b, i) => {
      const sw = b.querySelector<HTMLElement>(".pw-ll-swatch");
      if (sw && i < d.T) sw.style.background = `rgb(${this.lastColors[i * 3]}, ${this.lastColors[i * 3 + 1]}, ${this.lastColors[i * 3 + 2]})`;
      b.setAttribute("aria-pressed", String(i === shown));
    });
  }

  private drawColorbar(): void {
    const w = Math.max(200, this.mapRect.w);
    const height = 58;
    const { ctx } = sizeCanvas(this.colorbarCanvas, w, height);
    ctx.fillStyle = this.theme.bg;
    ctx.fillRect(0, 0, w, height);
    const s = this.shownScale;
    if (!s) {
      ctx.fillStyle = this.theme.muted;
      ctx.font = `11px ${this.theme.font}`;
      ctx.textBaseline = "top";
      ctx.fillText("colour = top-1 class (see the legend); grey = other", 6, 8);
      return;
    }
    drawColorbar(ctx, {
      x: 6,
      y: 6,
      width: w - 12,
      height: 12,
      colormap: this.get<string>("colormap") ?? "viridis",
      scale: s.scale,
      theme: this.theme,
      label: s.label,
    });
  }

  private drawLegend(): void {
    const d = this.data!;
    const counts = top1Counts(d, this.lp());
    const mode = this.mode();
    const tp = this.targetPos();
    // legend classes present at this layer, most frequent first, then an "other" entry
    const entries = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    const items: HTMLElement[] = [];
    let other = 0;
    for (const [cls, n] of entries) {
      const pos = legendPos(d, cls);
      const col = classColor(pos);
      if (pos < 0 || col === classColor(-1)) {
        other += n;
        if (pos < 0) continue;
      }
      const b = el("button", {
        cls: "pw-ll-legend-item",
        title: `${className(d, cls)}: top-1 at ${n} patch${n === 1 ? "" : "es"}; click to map its probability`,
        attrs: { type: "button", role: "listitem", "data-class": String(cls) },
      });
      const sw = el("span", { cls: "pw-ll-swatch" });
      sw.style.background = rgb(col);
      b.append(sw, el("span", { cls: "pw-ll-legend-name", text: className(d, cls) }), el("span", { cls: "pw-ll-legend-count", text: String(n) }));
      b.setAttribute("aria-pressed", String(mode === "class_prob" && pos === tp));
      b.addEventListener("click", () => this.setTraits({ target_class: cls, mode: "class_prob" }));
      items.push(b);
    }
    if (other > 0) {
      const sw = el("span", { cls: "pw-ll-swatch" });
      sw.style.background = rgb(classColor(-1));
      items.push(el("div", { cls: "pw-ll-legend-item pw-ll-legend-other" }, [sw, el("span", { cls: "pw-ll-legend-name", text: "other classes" }), el("span", { cls: "pw-ll-legend-count", text: String(other) })]));
    }
    // the mapped class, when it is not top-1 anywhere at this layer
    if (mode === "class_prob" && tp >= 0 && !counts.has(d.classIds[tp])) {
      const cls = d.classIds[tp];
      const sw = el("span", { cls: "pw-ll-swatch" });
      sw.style.background = rgb(classColor(tp));
      const b = el("div", { cls: "pw-ll-legend-item", attrs: { "aria-pressed": "true", "data-class": String(cls) } }, [sw, el("span", { cls: "pw-ll-legend-name", text: className(d, cls) }), el("span", { cls: "pw-ll-legend-count", text: "0" })]);
      items.unshift(b);
    }
    this.legendEl.replaceChildren(...items);
  }

  private drawDetail(): void {
    const d = this.data!;
    const token = this.shownToken();
    const lp = this.lp();
    const how = this.preview !== null ? "hover" : "selected";
    setText(this.detailTitle, `${this.tokenLabel(token)} at layer ${d.layers[lp]} (${how})`);
    const rows = topAt(d, lp, token).map((e, i) => {
      const sw = el("span", { cls: "pw-ll-swatch" });
      sw.style.background = rgb(classColor(legendPos(d, e.cls)));
      return el("tr", {}, [
        el("td", { text: String(i + 1) }),
        el("td", { cls: "pw-ll-table-class" }, [sw, el("span", { text: className(d, e.cls) })]),
        el("td", { cls: "pw-ll-table-p", text: e.prob.toFixed(3) }),
      ]);
    });
    this.tableBody.replaceChildren(...rows);
    this.drawChart(token, lp);
  }

  private drawChart(token: number, lp: number): void {
    const d = this.data!;
    const W = 260;
    const H = 150;
    const { ctx } = sizeCanvas(this.chartCanvas, W, H);
    const t = this.theme;
    ctx.fillStyle = t.bg;
    ctx.fillRect(0, 0, W, H);
    const series = trajectory(d, token);
    let top = 0;
    for (const s of series) for (const v of s.values) top = Math.max(top, v);
    top = top > 0 ? top : 1;
    const R = { x: 42, y: 8, w: W - 52, h: H - 44 };
    ctx.strokeStyle = t.grid;
    ctx.lineWidth = 1;
    ctx.strokeRect(R.x + 0.5, R.y + 0.5, R.w, R.h);
    ctx.fillStyle = t.muted;
    ctx.font = `10px ${t.font}`;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillText(formatValue(top), R.x - 3, R.y);
    ctx.fillText("0", R.x - 3, R.y + R.h);
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const step = Math.max(1, Math.ceil(d.L / 8));
    for (let i = 0; i < d.L; i += step) ctx.fillText(String(d.layers[i]), chartPoint(i, d.L, 0, top, R).x, R.y + R.h + 3);
    ctx.fillText("layer", R.x + R.w / 2, R.y + R.h + 15);
    // current layer
    const cx = chartPoint(lp, d.L, 0, top, R).x;
    ctx.strokeStyle = t.accent;
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(cx, R.y);
    ctx.lineTo(cx, R.y + R.h);
    ctx.stroke();
    ctx.setLineDash([]);
    series.forEach((s, k) => {
      const pos = legendPos(d, s.cls);
      const col = pos >= 0 && pos < 20 ? classColor(pos) : classColor(10 + (k % 10));
      ctx.strokeStyle = rgb(col);
      ctx.fillStyle = rgb(col);
      ctx.lineWidth = k === 0 ? 2.5 : 1.5;
      ctx.beginPath();
      for (let i = 0; i < d.L; i++) {
        const p = chartPoint(i, d.L, s.values[i], top, R);
        if (i === 0) ctx.moveTo(p.x, p.y);
        else ctx.lineTo(p.x, p.y);
      }
      ctx.stroke();
      if (d.L === 1) {
        const p = chartPoint(0, 1, s.values[0], top, R);
        ctx.fillRect(p.x - 2, p.y - 2, 4, 4);
      }
    });
    ctx.fillStyle = t.muted;
    ctx.textAlign = "left";
    ctx.fillText("p of the final top classes", R.x, H - 12);
  }

  // ------------------------------------------------------------------ pointer and play
  private hoverToken(token: number | null): void {
    if (this.preview === token) return;
    this.preview = token;
    this.draw();
  }

  private clickToken(token: number): void {
    this.preview = null;
    if (token !== this.get<number>("patch")) this.setTraits({ patch: token });
    this.draw();
  }

  private togglePlay(): void {
    if (this.playTimer) {
      clearInterval(this.playTimer);
      this.playTimer = null;
    } else {
      const ms = Math.max(50, Number(this.get<number>("play_interval_ms") ?? 700));
      this.playTimer = setInterval(() => {
        const d = this.data;
        if (!d) return;
        this.setTraits({ layer: d.layers[nextLayerPos(this.lp(), d.L)] });
      }, ms);
    }
    const playing = this.playTimer !== null;
    this.playButton.textContent = playing ? "❚❚ pause" : "▶ play";
    this.playButton.setAttribute("aria-pressed", String(playing));
  }

  private bindPointer(): void {
    const listen = this.listen.bind(this);
    const tokenAt = (ev: MouseEvent) => {
      const d = this.data;
      if (!d) return -1;
      const r = this.mapCanvas.getBoundingClientRect();
      return patchTokenAt(this.mapRect, ev.clientX - r.left, ev.clientY - r.top, d.rows, d.cols, d.nPrefix);
    };
    listen(this.mapCanvas, "pointermove", (ev) => {
      const t = tokenAt(ev);
      if (t >= 0) this.hoverToken(t);
    });
    listen(this.mapCanvas, "pointerleave", () => this.hoverToken(null));
    listen(this.mapCanvas, "click", (ev) => {
      const t = tokenAt(ev);
      if (t >= 0) this.clickToken(t);
    });
    listen(this.mapCanvas, "keydown", (ev) => {
      const d = this.data;
      if (!d) return;
      const p = this.get<number>("patch") - d.nPrefix;
      let r = p >= 0 ? Math.floor(p / d.cols) : Math.floor(d.rows / 2);
      let c = p >= 0 ? p % d.cols : Math.floor(d.cols / 2);
      if (ev.key === "ArrowLeft") c = Math.max(0, c - 1);
      else if (ev.key === "ArrowRight") c = Math.min(d.cols - 1, c + 1);
      else if (ev.key === "ArrowUp") r = Math.max(0, r - 1);
      else if (ev.key === "ArrowDown") r = Math.min(d.rows - 1, r + 1);
      else if (ev.key === "PageUp" || ev.key === "PageDown") {
        const lp = Math.max(0, Math.min(d.L - 1, this.lp() + (ev.key === "PageUp" ? 1 : -1)));
        ev.preventDefault();
        this.setTraits({ layer: d.layers[lp] });
        return;
      } else return;
      ev.preventDefault();
      this.setTraits({ patch: d.nPrefix + r * d.cols + c });
    });
  }

  // ------------------------------------------------------------------ export
  protected pngName(): string {
    return `logit_lens_L${this.get<number>("layer")}_${this.mode()}.png`;
  }

  override destroy(): void {
    if (this.playTimer) clearInterval(this.playTimer);
    super.destroy();
  }
}

export const render = renderWith(LogitLensView);

export default { render };
