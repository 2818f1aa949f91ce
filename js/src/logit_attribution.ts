// LogitAttribution: which head, which layer, which patch wrote the answer.
//
// Python computes every number (every class's decomposition, the position maps, the pooled attention); this
// file builds the DOM, wires the events and reports the selection through the synced traits target / versus
// / layer / head / part (and prompts, normalization, colormap, ...). Data in logit_attribution/data.ts,
// geometry in logit_attribution/layout.ts, painting in logit_attribution/draw.ts, the target picker, the
// largest contributions and the prompt editor in logit_attribution/panels.ts.
import "./shared/theme.css";
import "./logit_attribution/style.css";

import {
  type AttributionData,
  type Selection,
  attentionMap,
  cellValue,
  hoverText,
  positionMap,
  readAttribution,
  selectionLabel,
  signed,
  targetScore,
  targetText,
  targetValues,
} from "./logit_attribution/data";
import { type MapGeometry, drawHeatmap, drawTokenMap, heatmapCaption, mapCaption, mapGeometry, mapTokenAt } from "./logit_attribution/draw";
import { type HeatmapLayout, cellAt, computeHeatmap } from "./logit_attribution/layout";
import { PromptEditor, TargetPicker, topRows } from "./logit_attribution/panels";
import type { LogitAttributionTraits, Part } from "./logit_attribution/traits";
import { pixelsToCanvas, sizeCanvas } from "./shared/canvas";
import { drawColorbar } from "./shared/colorbar";
import { COLORMAP_OPTIONS, lut } from "./shared/colormap";
import { button, el, select, setText } from "./shared/dom";
import { localPoint } from "./shared/pointer";
import { type ColorScale, extent, formatValue, makeScale, makeSymmetricScale } from "./shared/scale";
import type { TraitKey } from "./shared/traits";
import { type Model, WidgetView, renderWith } from "./shared/view";

export type { Model };

type Key = TraitKey<LogitAttributionTraits>;
const DATA_KEYS: Key[] = [
  "component_values",
  "class_scores",
  "position_values",
  "pooled_attention",
  "image_pixels",
  "labels",
  "n_layers",
  "n_heads",
  "class_names",
  "position_class_ids",
  "grid",
  "n_prefix_tokens",
  "token_labels",
];
const LOOK_KEYS: Key[] = ["theme", "title", "cell_size", "map_size"];
const DRAW_KEYS: Key[] = ["target", "versus", "layer", "head", "part", "normalization", "colormap", "opacity"];
const PROMPT_KEYS: Key[] = ["prompts", "prompts_editable", "prompt_note", "status"];
const PARTS: Part[] = ["head", "attn", "mlp", "embed", "bias"];

export class LogitAttributionView extends WidgetView<LogitAttributionTraits> {
  private readonly heatTitle = el("div", { cls: "pw-la-heat-title pw-export-text" });
  private readonly heatCanvas = el("canvas", {
    cls: "pw-canvas pw-la-heatmap",
    attrs: { tabindex: "0", role: "img", "aria-label": "direct contribution of every head, MLP, the embedding and the biases; click a cell to open it" },
  });
  private readonly colorbarCanvas = el("canvas", { cls: "pw-la-colorbar" });
  private readonly detailTitle = el("div", { cls: "pw-la-detail-title pw-export-text" });
  private readonly sourceLabel = el("div", { cls: "pw-la-map-label", text: "where it comes from" });
  private readonly sourceCanvas = el("canvas", { cls: "pw-canvas pw-la-source", attrs: { role: "img", "aria-label": "contribution from each token" } });
  private readonly attnLabel = el("div", { cls: "pw-la-map-label", text: "attention from the pooled token" });
  private readonly attnCanvas = el("canvas", { cls: "pw-canvas pw-la-attention", attrs: { role: "img", "aria-label": "the head's attention from the pooled token" } });
  private readonly attnBlock: HTMLDivElement;
  private readonly topList = el("div", { cls: "pw-la-top", attrs: { role: "list", "aria-label": "largest contributions" } });
  private readonly statusEl = el("div", { cls: "pw-status pw-la-status" });
  private readonly picker: TargetPicker;
  private readonly prompts: PromptEditor;
  private readonly controls: { norm: ReturnType<typeof select>; cmap: ReturnType<typeof select> };

  private data: AttributionData | null = null;
  private layout: HeatmapLayout | null = null;
  private geometry: MapGeometry | null = null;
  private grey: HTMLCanvasElement | null = null;
  private vals: Float32Array = new Float32Array(0);
  private scale: ColorScale = makeSymmetricScale([0]);
  private hover: Selection | null = null;
  private hoverToken = -1;
  private paints = 0;

  constructor(model: Model, host: HTMLElement) {
    super(model, host, "pw-logit-attribution", "LogitAttribution");
    this.picker = new TargetPicker((v) => this.setTraits(v));
    this.prompts = new PromptEditor(this.model, (v) => this.setTraits(v), this.statusEl);
    this.attnBlock = el("div", { cls: "pw-la-map" }, [this.attnLabel, this.attnCanvas]);
    const left = el("div", { cls: "pw-la-left" }, [this.heatTitle, this.heatCanvas, this.colorbarCanvas]);
    const maps = el("div", { cls: "pw-la-maps" }, [el("div", { cls: "pw-la-map" }, [this.sourceLabel, this.sourceCanvas]), this.attnBlock]);
    const mid = el("div", { cls: "pw-la-mid" }, [this.detailTitle, maps]);
    const right = el("div", { cls: "pw-la-right" }, [el("div", { cls: "pw-la-section-title", text: "largest contributions" }), this.topList, this.prompts.root]);
    this.root.append(this.titleEl, this.toolbar, this.errorEl, el("div", { cls: "pw-la-body" }, [left, mid, right]), this.statusEl);
    this.controls = this.buildToolbar();
    this.bindPointer();
    this.bindTraits({ data: DATA_KEYS, look: LOOK_KEYS, draw: DRAW_KEYS });
    this.onChange(PROMPT_KEYS, () => this.prompts.sync());
    this.rebuild();
  }

  private buildToolbar() {
    const norm = select("colour range", [{ value: "all", label: "all cells" }, { value: "heads", label: "heads only" }], "all", (v) => this.setTraits({ normalization: v }));
    const cmap = select("colours", COLORMAP_OPTIONS, "rdbu", (v) => this.setTraits({ colormap: v }));
    const png = button("PNG", "save the current view (heatmap, maps, colour bars) as a PNG image", () => void this.exportPng(), "pw-la-png");
    this.toolbar.append(this.picker.target.root, this.picker.versus.root, norm.root, cmap.root, png);
    return { norm, cmap };
  }

  // ------------------------------------------------------------------ model
  protected dropData(): void {
    this.data = null;
  }

  protected syncControls(): void {
    this.picker.sync(this.data, this.model);
    this.controls.norm.set(this.get("normalization") ?? "all");
    this.controls.cmap.set(this.get("colormap") ?? "rdbu");
  }

  private selection(): Selection {
    const part = this.get("part");
    return { part: PARTS.includes(part) ? part : "head", layer: this.get("layer") ?? 0, head: this.get("head") ?? 0 };
  }

  private target(): number {
    return this.data ? Math.min(this.data.K - 1, Math.max(0, this.get("target") ?? 0)) : 0;
  }

  private versus(): number {
    const v = this.get("versus") ?? -1;
    return this.data && v >= 0 && v < this.data.K ? v : -1;
  }

  // ------------------------------------------------------------------ build
  protected rebuild(): void {
    try {
      this.errorEl.textContent = "";
      if (!this.data) this.data = readAttribution(this.model);
      const d = this.data;
      this.applyTheme();
      const title = this.get("title") ?? "";
      setText(this.titleEl, title);
      this.titleEl.style.display = title ? "" : "none";
      const cell = Math.max(12, Math.min(64, Math.round(this.get("cell_size") ?? 28)));
      this.layout = computeHeatmap({ nLayers: d.nLayers, nHeads: d.nHeads, cell });
      sizeCanvas(this.heatCanvas, this.layout.width, this.layout.height);
      this.heatCanvas.dataset.cells = JSON.stringify(this.layout.cells.map((c) => [selectionLabel(c.sel), c.rect.x, c.rect.y, c.rect.w, c.rect.h]));
      const imgH = d.pixels?.H ?? d.rows * 16;
      const imgW = d.pixels?.W ?? d.cols * 16;
      this.geometry = mapGeometry(this.get("map_size") ?? 180, d.nPrefix, imgH, imgW);
      this.grey = d.pixels ? pixelsToCanvas(d.pixels.data, d.pixels.H, d.pixels.W, d.pixels.C, true) : null;
      this.prompts.sync();
      this.syncControls();
      this.draw();
    } catch (err) {
      this.showError(err);
    }
  }

  // ------------------------------------------------------------------ draw
  protected draw(): void {
    const d = this.data;
    const L = this.layout;
    if (!d || !L) return;
    const t0 = performance.now();
    try {
      const target = this.target();
      const versus = this.versus();
      this.vals = targetValues(d, target, versus);
      const range = this.get("normalization") === "heads" && d.nHeads ? d.heads.flat().map((i) => this.vals[i]) : L.cells.map((c) => cellValue(d, this.vals, c.sel));
      this.scale = makeSymmetricScale(range);
      const colormap = this.get("colormap") ?? "rdbu";
      const sel = this.selection();
      drawHeatmap(sizeCanvas(this.heatCanvas, L.width, L.height).ctx, d, L, { vals: this.vals, scale: this.scale, table: lut(colormap, this.theme.dark), selected: sel, hover: this.hover, theme: this.theme });
      const total = targetScore(d, target, versus);
      const sum = this.vals.reduce((a, b) => a + b, 0);
      setText(this.heatTitle, `score(${targetText(d, target, versus)}) = ${signed(total)} = sum of the cells (${signed(sum)})`);
      const barW = Math.max(200, L.width);
      const { ctx } = sizeCanvas(this.colorbarCanvas, barW, 46);
      ctx.fillStyle = this.theme.bg;
      ctx.fillRect(0, 0, barW, 46);
      ctx.textAlign = "left";
      drawColorbar(ctx, { x: 4, y: 4, width: barW - 8, height: 10, colormap, dark: this.theme.dark, scale: this.scale, theme: this.theme, label: heatmapCaption(this.get("normalization") ?? "all") });
      this.drawDetail(d, sel, target, versus, colormap);
      this.topList.replaceChildren(...topRows(d, this.vals, 6, sel, (s) => this.select(s)));
      this.syncControls();
    } catch (err) {
      this.showError(err);
      return;
    }
    this.paints++;
    const ds = this.root.dataset;
    ds.paints = String(this.paints);
    ds.layer = String(this.get("layer"));
    ds.head = String(this.get("head"));
    ds.part = this.selection().part;
    ds.selected = selectionLabel(this.selection());
    ds.target = String(this.target());
    ds.versus = String(this.versus());
    this.root.dispatchEvent(new CustomEvent("pw-paint", { detail: { ms: performance.now() - t0 } }));
  }

  private drawDetail(d: AttributionData, sel: Selection, target: number, versus: number, colormap: string): void {
    const G = this.geometry!;
    const value = cellValue(d, this.vals, sel);
    setText(this.detailTitle, `${selectionLabel(sel)} → ${targetText(d, target, versus)}: ${signed(value)} logits`);
    const source = positionMap(d, sel, target, versus);
    const [lo, hi] = source ? extent(source) : [0, 0];
    const missing = d.positions ? "no position map for this class here" : "no position maps in this widget";
    drawTokenMap(sizeCanvas(this.sourceCanvas, G.width, G.height).ctx, d, {
      G,
      values: source,
      scale: makeSymmetricScale(source ?? [0]),
      table: lut(colormap, this.theme.dark),
      colormap,
      grey: this.grey,
      opacity: Math.min(1, Math.max(0, Number(this.get("opacity") ?? 0.75))),
      caption: mapCaption("source", sel, Math.max(Math.abs(lo), Math.abs(hi))),
      missing,
      signed: true,
      hoverToken: this.hoverToken,
      theme: this.theme,
    });
    const attention = sel.part === "head" ? attentionMap(d, sel.layer, sel.head) : null;
    this.attnBlock.style.display = attention ? "" : "none";
    if (attention) {
      const scale = makeScale("linear", attention);
      drawTokenMap(sizeCanvas(this.attnCanvas, G.width, G.height).ctx, d, {
        G,
        values: attention,
        scale,
        table: lut("viridis"),
        colormap: "viridis",
        grey: this.grey,
        opacity: Math.min(1, Math.max(0, Number(this.get("opacity") ?? 0.75))),
        caption: mapCaption("attention", sel, scale.max),
        missing: "",
        signed: false,
        hoverToken: this.hoverToken,
        theme: this.theme,
      });
    }
  }

  // ------------------------------------------------------------------ pointer
  private select(s: Selection): void {
    const values: Partial<LogitAttributionTraits> = { part: s.part };
    if (s.part !== "embed" && s.part !== "bias") values.layer = s.layer;
    if (s.part === "head") values.head = s.head;
    this.setTraits(values);
  }

  private bindPointer(): void {
    const listen = this.listen.bind(this);
    const cellUnder = (ev: MouseEvent) => {
      const L = this.layout;
      if (!L) return null;
      const p = localPoint(this.heatCanvas, ev);
      return cellAt(L, p.x, p.y);
    };
    listen(this.heatCanvas, "pointermove", (ev) => {
      const d = this.data;
      const c = cellUnder(ev);
      const same = c && this.hover && selectionLabel(c.sel) === selectionLabel(this.hover);
      if (!d || same || (!c && !this.hover)) return;
      this.hover = c ? c.sel : null;
      const target = this.target();
      const versus = this.versus();
      setText(this.statusEl, c ? hoverText(d, c.sel, cellValue(d, this.vals, c.sel), targetScore(d, target, versus), target, versus) : "");
      this.draw();
    });
    listen(this.heatCanvas, "pointerleave", () => {
      this.hover = null;
      setText(this.statusEl, this.get("status") ?? "");
      this.draw();
    });
    listen(this.heatCanvas, "click", (ev) => {
      const c = cellUnder(ev);
      if (c) this.select(c.sel);
    });
    listen(this.heatCanvas, "keydown", (ev) => {
      const d = this.data;
      const s = this.selection();
      if (!d || !d.nHeads || s.part !== "head") return;
      const step: Record<string, [number, number]> = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
      const move = step[ev.key];
      if (!move) return;
      ev.preventDefault();
      const layer = Math.min(d.nLayers - 1, Math.max(0, s.layer + move[0]));
      const head = Math.min(d.nHeads - 1, Math.max(0, s.head + move[1]));
      this.select({ part: "head", layer, head });
    });
    for (const canvas of [this.sourceCanvas, this.attnCanvas]) {
      listen(canvas, "pointermove", (ev) => {
        const d = this.data;
        const G = this.geometry;
        if (!d || !G) return;
        const p = localPoint(canvas, ev);
        const t = mapTokenAt(G, d, p.x, p.y);
        if (t === this.hoverToken) return;
        this.hoverToken = t;
        const sel = this.selection();
        const src = positionMap(d, sel, this.target(), this.versus());
        const att = sel.part === "head" ? attentionMap(d, sel.layer, sel.head) : null;
        const label = d.tokenLabels[t] ?? `token ${t}`;
        const parts = [src ? `${signed(src[t])} logits from ${label}` : "", att ? `attention ${formatValue(att[t])}` : ""].filter(Boolean);
        setText(this.statusEl, t >= 0 ? `${selectionLabel(sel)} · ${label}: ${parts.join(" · ")}` : "");
        this.draw();
      });
      listen(canvas, "pointerleave", () => {
        this.hoverToken = -1;
        setText(this.statusEl, this.get("status") ?? "");
        this.draw();
      });
    }
  }

  // ------------------------------------------------------------------ export
  protected pngName(): string {
    return `logit_attribution_${selectionLabel(this.selection()).replace(/\s+/g, "_")}.png`;
  }
}

export const render = renderWith(LogitAttributionView);

export default { render };
