// LogitLens: what every patch predicts at every layer, over the image.
//
// Python computes every number (top-k, probabilities of the legend classes, entropy, KL, ranks); this
// file builds the DOM, wires the events and reports the selection through the synced traits layer /
// patch / target_class / mode / prompts (and normalization, colormap, show_labels, ...). Data in
// logit_lens/data.ts, geometry in logit_lens/layout.ts, painting in logit_lens/draw.ts, the legend, table
// and prompt editor in logit_lens/panels.ts. User text goes in via textContent.
import "./shared/theme.css";
import "./logit_lens/style.css";

import { type LensData, type Mode, MODES, layerPos, legendPos, readLens, top1, top1Counts } from "./logit_lens/data";
import { type ShownScale, drawChart, drawMap, drawMapColorbar, tokenColours } from "./logit_lens/draw";
import { type Rect, mapSize, nextLayerPos, patchTokenAt } from "./logit_lens/layout";
import { sliceLens } from "./logit_lens/frames";
import { PromptPanel, legendItems, topRows } from "./logit_lens/panels";
import type { LogitLensTraits } from "./logit_lens/traits";
import { pixelsToCanvas, scratch, sizeCanvas } from "./shared/canvas";
import { COLORMAP_OPTIONS } from "./shared/colormap";
import { button, el, select, setText } from "./shared/dom";
import { FrameStrip, clipToken, framePixels, localToken } from "./shared/frames";
import { arrowStep } from "./shared/patches";
import { cssRgb } from "./shared/raster";
import { localPoint } from "./shared/pointer";
import type { TraitKey } from "./shared/traits";
import { type Model, WidgetView, renderWith } from "./shared/view";

export type { Model };

type Key = TraitKey<LogitLensTraits>;
const DATA_KEYS: Key[] = [
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
  "frames",
  "frame_pixels",
];
const LOOK_KEYS: Key[] = ["theme", "title", "size"];
const DRAW_KEYS: Key[] = ["layer", "patch", "target_class", "mode", "normalization", "colormap", "show_labels", "opacity"];
const PROMPT_KEYS: Key[] = ["prompts", "prompts_editable", "prompt_note", "status"];

const MODE_LABEL: Record<Mode, string> = Object.fromEntries(MODES.map((m) => [m.value, m.label])) as Record<Mode, string>;

export class LogitLensView extends WidgetView<LogitLensTraits> {
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
  private readonly prompts: PromptPanel;
  private readonly statusEl: HTMLDivElement;
  private readonly controls: {
    mode: ReturnType<typeof select>;
    norm: ReturnType<typeof select>;
    cmap: ReturnType<typeof select>;
    labels: HTMLInputElement;
  };

  private data: LensData | null = null; // the shown token frame's lens (the whole lens for an image)
  private full: LensData | null = null; // a clip's whole lens
  private readonly frameStrip: FrameStrip;
  /** each prompt's palette slot, kept across prompt edits: a prompt keeps its colour while it stays */
  private readonly colourMemory = new Map<string, number>();
  private mapRect: Rect = { x: 0, y: 0, w: 1, h: 1 };
  private imageCanvas: HTMLCanvasElement | null = null;
  private overlay: { canvas: HTMLCanvasElement; ctx: CanvasRenderingContext2D; image: ImageData } | null = null;
  private preview: number | null = null;
  private shownScale: ShownScale | null = null;
  private lastColors: Uint8ClampedArray = new Uint8ClampedArray(0);
  private playTimer: ReturnType<typeof setInterval> | null = null;
  private paints = 0;

  constructor(model: Model, host: HTMLElement) {
    super(model, host, "pw-logit-lens", "LogitLens");

    this.playButton = button("▶ play", "animate through the layers", () => this.togglePlay(), "pw-ll-play");
    this.playButton.setAttribute("aria-pressed", "false");
    this.slider = el("input", { cls: "pw-ll-slider", attrs: { type: "range", min: "0", max: "0", step: "1", "aria-label": "layer" } });
    this.layerLabel = el("span", { cls: "pw-ll-layer-label pw-no-export" }); // the slider's read-out: the export's caption names the layer
    const layerRow = el("div", { cls: "pw-ll-layer-row" }, [this.playButton, this.slider, this.layerLabel]);
    this.frameStrip = new FrameStrip((f) => this.setTraits({ frame: f }), () => Number(this.get("play_interval_ms") ?? 700));
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
    this.statusEl = el("div", { cls: "pw-status pw-ll-status" });
    this.prompts = new PromptPanel(this.model, (v) => this.setTraits(v), this.statusEl, () => this.data);

    const left = el("div", { cls: "pw-ll-left" }, [this.mapLabel, this.mapCanvas, this.prefixBar, this.colorbarCanvas]);
    const mid = el("div", { cls: "pw-ll-mid" }, [el("div", { cls: "pw-ll-section-title", text: "top-1 classes at this layer" }), this.legendEl, this.prompts.root]);
    const right = el("div", { cls: "pw-ll-right" }, [this.detailTitle, table, this.chartCanvas]);
    this.root.append(this.titleEl, this.toolbar, layerRow, this.frameStrip.root, this.errorEl, el("div", { cls: "pw-ll-body" }, [left, mid, right]), this.statusEl);

    this.controls = this.buildToolbar();
    this.bindPointer();
    this.bindTraits({ data: DATA_KEYS, look: LOOK_KEYS, draw: DRAW_KEYS });
    this.onChange(PROMPT_KEYS, () => this.prompts.sync());
    this.onChange(["frame"], () => {
      this.data = null; // re-sliced from the clip's lens, with that frame's image
      this.requestRebuild();
    });
    this.rebuild();
  }

  // ------------------------------------------------------------------ model
  protected dropData(): void {
    this.data = null;
    this.full = null;
  }

  /** Clip layout: token frames and the shown one (1 and 0 for an image). */
  private frames(): { frames: number; frame: number } {
    const frames = Math.max(1, Number(this.get("frames") ?? 1));
    return { frames, frame: Math.max(0, Math.min(frames - 1, Number(this.get("frame") ?? 0))) };
  }

  /** The lens the view draws: the shown frame's slice of a clip's lens. */
  private readData(): LensData {
    if (!this.full) this.full = readLens(this.model, this.colourMemory);
    const { frames, frame } = this.frames();
    return frames > 1 ? sliceLens(this.full, frame, framePixels(this.get("frame_pixels"), frame)) : this.full;
  }

  /** The selected `patch` (a clip token) as a position in the shown frame, and back. */
  private localPatch(): number {
    const d = this.data;
    const p = this.get("patch") ?? 0;
    return d && this.frames().frames > 1 ? localToken(p, d.nPrefix, d.rows, d.cols) : p;
  }

  private clipPatch(local: number): number {
    const d = this.data;
    return d && this.frames().frames > 1 ? clipToken(local, d.nPrefix, d.rows, d.cols, this.frames().frame) : local;
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
      if (d.layers[lp] !== this.get("layer")) this.setTraits({ layer: d.layers[lp] });
    });
    return { mode, norm, cmap, labels };
  }

  protected syncControls(): void {
    const c = this.controls;
    c.mode.set(this.mode());
    c.norm.set(this.get("normalization") ?? "global");
    c.cmap.set(this.get("colormap") ?? "viridis");
    c.labels.checked = !!this.get("show_labels");
    // top-1 colours are classes: a colour map and its range would change nothing, so they are not offered
    const scalar = this.mode() !== "top1";
    c.norm.root.style.display = scalar ? "" : "none";
    c.cmap.root.style.display = scalar ? "" : "none";
    const d = this.data;
    if (d) {
      this.slider.max = String(Math.max(0, d.L - 1));
      const lp = String(this.lp());
      if (this.slider.value !== lp) this.slider.value = lp;
      this.slider.disabled = d.L <= 1;
      this.playButton.disabled = d.L <= 1;
    }
    const { frames, frame } = this.frames();
    this.frameStrip.sync(frame, frames, frames > 1 ? `t${frame}` : "");
  }

  // ------------------------------------------------------------------ selection helpers
  private mode(): Mode {
    const m = this.get("mode");
    return (MODES.some((x) => x.value === m) ? m : "top1") as Mode;
  }

  private lp(): number {
    const d = this.data;
    return d ? layerPos(d, this.get("layer")) : 0;
  }

  private shownToken(): number {
    const d = this.data;
    const t = this.preview ?? this.localPatch();
    return d ? Math.min(d.T - 1, Math.max(0, t)) : 0;
  }

  /** Legend position of the class shown in class_prob mode (target_class, else the first). */
  private targetPos(): number {
    const d = this.data;
    if (!d) return -1;
    const c = this.get("target_class");
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
      if (!this.data) this.data = this.readData();
      const d = this.data;
      this.applyTheme();
      const title = this.get("title") ?? "";
      setText(this.titleEl, title);
      this.titleEl.style.display = title ? "" : "none";
      const imgH = d.pixels?.H ?? d.rows * 16;
      const imgW = d.pixels?.W ?? d.cols * 16;
      const { w, h } = mapSize(this.get("size") ?? 320, imgH, imgW);
      this.mapRect = { x: 0, y: 0, w, h };
      sizeCanvas(this.mapCanvas, w, h);
      (this.mapCanvas.parentElement as HTMLElement).style.width = `${Math.max(w, 200)}px`;
      this.mapCanvas.dataset.rect = JSON.stringify([0, 0, w, h, d.rows, d.cols, d.nPrefix]);
      this.mapCanvas.dataset.patchLabels = JSON.stringify(d.shortNames); // the words "labels on patches" writes
      this.imageCanvas = d.pixels ? pixelsToCanvas(d.pixels.data, d.pixels.H, d.pixels.W, d.pixels.C, false) : null;
      const ov = scratch(d.cols, d.rows);
      this.overlay = { ...ov, image: ov.ctx.createImageData(d.cols, d.rows) };
      this.buildPrefixButtons();
      this.prompts.reset();
      this.prompts.sync();
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
      const b = button(this.tokenLabel(i), `${this.tokenLabel(i)}: hover for its top classes, click to select`, () => this.clickToken(i), "pw-ll-prefix-button pw-export-keep");
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
      drawMapColorbar(this.colorbarCanvas, Math.max(200, this.mapRect.w), this.shownScale, this.get("colormap") ?? "viridis", this.theme);
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
    ds.layer = String(this.get("layer"));
    ds.patch = String(this.shownToken());
    ds.frame = String(this.frames().frame);
    ds.mode = this.mode();
    ds.targetClass = String(this.get("target_class"));
    this.root.dispatchEvent(new CustomEvent("pw-paint", { detail: { ms: performance.now() - t0 } }));
  }

  private drawMap(): void {
    const d = this.data!;
    const lp = this.lp();
    const { colors, shown } = tokenColours(d, this.mode(), lp, this.targetPos(), this.get("normalization") !== "layer", this.get("colormap") ?? "viridis", this.theme.dark);
    this.shownScale = shown;
    this.lastColors = colors;
    const R = this.mapRect;
    drawMap(sizeCanvas(this.mapCanvas, R.w, R.h).ctx, d, {
      R,
      image: this.imageCanvas,
      overlay: this.overlay!,
      colors,
      opacity: Math.min(1, Math.max(0, Number(this.get("opacity") ?? 0.65))),
      labels: this.get("show_labels") ? top1(d, lp) : null,
      token: this.shownToken(),
      theme: this.theme,
    });
    setText(this.mapLabel, `${MODE_LABEL[this.mode()]} · layer ${d.layers[lp]} (${this.get("site") ?? "resid_post"})`);
    setText(this.layerLabel, `layer ${d.layers[lp]} (${lp + 1}/${d.L})`);
  }

  private drawPrefix(): void {
    const d = this.data!;
    const shown = this.shownToken();
    const c = this.lastColors;
    Array.from(this.prefixBar.querySelectorAll<HTMLButtonElement>(".pw-ll-prefix-button")).forEach((b, i) => {
      const sw = b.querySelector<HTMLElement>(".pw-ll-swatch");
      if (sw && i < d.T) sw.style.background = cssRgb(c.subarray(i * 3, i * 3 + 3));
      b.setAttribute("aria-pressed", String(i === shown));
    });
  }

  private drawLegend(): void {
    const d = this.data!;
    const pick = (cls: number) => this.setTraits({ target_class: cls, mode: "class_prob" });
    this.legendEl.replaceChildren(...legendItems(d, top1Counts(d, this.lp()), this.mode(), this.targetPos(), pick));
  }

  private drawDetail(): void {
    const d = this.data!;
    const token = this.shownToken();
    const lp = this.lp();
    const how = this.preview !== null ? "hover" : "selected";
    setText(this.detailTitle, `${this.tokenLabel(token)} at layer ${d.layers[lp]} (${how})`);
    this.tableBody.replaceChildren(...topRows(d, lp, token));
    drawChart(this.chartCanvas, d, token, lp, this.theme);
  }

  // ------------------------------------------------------------------ pointer and play
  private hoverToken(token: number | null): void {
    if (this.preview === token) return;
    this.preview = token;
    this.draw();
  }

  private clickToken(token: number): void {
    this.preview = null;
    const patch = this.clipPatch(token);
    if (patch !== this.get("patch")) this.setTraits({ patch });
    this.draw();
  }

  private togglePlay(): void {
    if (this.playTimer) {
      clearInterval(this.playTimer);
      this.playTimer = null;
    } else {
      const ms = Math.max(50, Number(this.get("play_interval_ms") ?? 700));
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
      const p = localPoint(this.mapCanvas, ev);
      return patchTokenAt(this.mapRect, p.x, p.y, d.rows, d.cols, d.nPrefix);
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
      const next = arrowStep(this.localPatch(), ev.key, d.rows, d.cols, d.nPrefix);
      if (next !== null) {
        ev.preventDefault();
        this.setTraits({ patch: this.clipPatch(next) });
      } else if (ev.key === "PageUp" || ev.key === "PageDown") {
        const lp = Math.max(0, Math.min(d.L - 1, this.lp() + (ev.key === "PageUp" ? 1 : -1)));
        ev.preventDefault();
        this.setTraits({ layer: d.layers[lp] });
      }
    });
  }

  // ------------------------------------------------------------------ export
  protected override exportCaption(): string {
    const d = this.data;
    const lp = this.lp();
    const parts = [this.get("model_name") ?? "", this.get("image_label") ? `image: ${this.get("image_label")}` : ""];
    if (d) parts.push(`layer ${d.layers[lp]} (${this.get("site") ?? "resid_post"})`);
    const tp = this.targetPos();
    const what = this.mode() === "class_prob" && d && tp >= 0 ? `p(${d.classNames[d.classIds[tp]] ?? d.classIds[tp]})` : MODE_LABEL[this.mode()];
    parts.push(what);
    return parts.filter((p) => p).join(" · ");
  }

  protected pngName(): string {
    const { frames, frame } = this.frames();
    return `logit_lens_L${this.get("layer")}${frames > 1 ? `_t${frame}` : ""}_${this.mode()}.png`;
  }

  override destroy(): void {
    if (this.playTimer) clearInterval(this.playTimer);
    this.frameStrip.stop();
    super.destroy();
  }
}

export const render = renderWith(LogitLensView);

export default { render };
