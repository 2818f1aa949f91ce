// AttentionGrid's per-head summaries (mean attention distance in patches, entropy in nats, averaged over
// the images; Python computes them): the layer x head table beside the grid, the bar under each thumbnail,
// and the order of each layer's heads when the grid is sorted by a summary.
import { drawColorbar } from "../shared/colorbar";
import { lut } from "../shared/colormap";
import { el, setText } from "../shared/dom";
import { type Rect, gridCellAt } from "../shared/patches";
import { localPoint } from "../shared/pointer";
import { cssRgb, lutRgb } from "../shared/raster";
import { type ColorScale, extent, formatValue } from "../shared/scale";
import type { Theme } from "../shared/theme";
import type { Listen } from "../shared/view";
import { sizeCanvas } from "../shared/canvas";
import type { AttentionData } from "./data";
import type { Cell } from "./layout";
import type { Summary } from "./traits";

export const SUMMARY_OPTIONS: { value: Summary; label: string }[] = [
  { value: "none", label: "none" },
  { value: "distance", label: "mean distance" },
  { value: "entropy", label: "entropy" },
];

const UNIT: Record<Exclude<Summary, "none">, string> = { distance: "mean attention distance (patches)", entropy: "attention entropy (nats)" };

/** The summary's [L, H] values, or null (none chosen, or the widget has no summaries). */
export function summaryValues(d: SummarySource, kind: Summary): Float32Array | null {
  if (kind === "none") return null;
  return kind === "distance" ? d.distance : d.entropy;
}

type SummarySource = Pick<AttentionData, "distance" | "entropy" | "layers" | "heads">;

/** Per layer row, head positions by increasing summary (local, focused heads first); ties keep head order. */
export function headOrder(d: SummarySource, values: Float32Array): number[][] {
  const H = d.heads.length;
  return d.layers.map((_, r) => Array.from({ length: H }, (_, c) => c).sort((a, b) => values[r * H + a] - values[r * H + b] || a - b));
}

/** A colour scale from the smallest to the largest summary value. */
export function summaryScale(values: ArrayLike<number>): ColorScale {
  const [lo, hi] = extent(values);
  const span = hi - lo || 1;
  return { kind: "linear", lo, hi: lo + span, max: hi, clipped: false, map: (v: number) => Math.min(1, Math.max(0, (v - lo) / span)) };
}

/** The bar under each head's thumbnail: the summary's colour, the head's name and value. */
export function drawBars(ctx: CanvasRenderingContext2D, d: AttentionData, cells: readonly Cell[], values: Float32Array, scale: ColorScale, theme: Theme): void {
  const table = lut("viridis");
  const H = d.heads.length;
  ctx.font = `9px ${theme.font}`;
  ctx.textBaseline = "middle";
  ctx.textAlign = "left";
  for (const cell of cells) {
    if (cell.kind !== "head" || cell.bar.h <= 0) continue;
    const v = values[cell.row * H + cell.col];
    const rgb = lutRgb(table, scale.map(v));
    ctx.fillStyle = cssRgb(rgb);
    ctx.fillRect(cell.bar.x, cell.bar.y, cell.bar.w, cell.bar.h);
    ctx.fillStyle = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 140 ? "#000" : "#fff";
    ctx.fillText(`H${d.heads[cell.col]} ${formatValue(v)}`, cell.bar.x + 3, cell.bar.y + cell.bar.h / 2, cell.bar.w - 4);
  }
}

/** The layer x head table: click a cell to select that head; hover for its value. */
export class SummaryTable {
  readonly root: HTMLDivElement;
  private readonly title = el("div", { cls: "pw-ag-summary-title pw-export-text" });
  private readonly canvas = el("canvas", { cls: "pw-canvas pw-ag-summary", attrs: { role: "img", "aria-label": "per-head summary: click a head to select it" } });
  private readonly status = el("div", { cls: "pw-status pw-ag-summary-status" });
  private rect: Rect = { x: 0, y: 0, w: 1, h: 1 };
  private shown: { d: AttentionData; values: Float32Array } | null = null;

  constructor(listen: Listen, pick: (layer: number, head: number) => void) {
    this.root = el("div", { cls: "pw-ag-summary-box" }, [this.title, this.canvas, this.status]);
    const at = (ev: MouseEvent) => {
      const s = this.shown;
      if (!s) return null;
      const p = localPoint(this.canvas, ev);
      return gridCellAt(this.rect, p.x, p.y, s.d.layers.length, s.d.heads.length);
    };
    listen(this.canvas, "pointermove", (ev) => {
      const c = at(ev);
      const s = this.shown;
      setText(this.status, c && s ? `L${s.d.layers[c.row]} H${s.d.heads[c.col]}: ${formatValue(s.values[c.row * s.d.heads.length + c.col])}` : "");
    });
    listen(this.canvas, "pointerleave", () => setText(this.status, ""));
    listen(this.canvas, "click", (ev) => {
      const c = at(ev);
      const s = this.shown;
      if (c && s) pick(s.d.layers[c.row], s.d.heads[c.col]);
    });
  }

  /** Draw the table `width` CSS pixels wide (hidden when `kind` is none); outline the selected head. */
  draw(d: AttentionData, kind: Summary, width: number, layer: number, head: number, theme: Theme): void {
    const values = summaryValues(d, kind);
    this.root.style.display = values ? "" : "none";
    if (!values || kind === "none") {
      this.shown = null;
      return;
    }
    this.shown = { d, values };
    setText(this.title, `${UNIT[kind]}, mean over ${d.images.length} image${d.images.length === 1 ? "" : "s"}`);
    const L = d.layers.length;
    const H = d.heads.length;
    const labelW = 26;
    const cell = Math.max(8, Math.min(30, Math.floor((width - labelW) / Math.max(1, H))));
    this.rect = { x: labelW, y: 14, w: cell * H, h: cell * L };
    const height = this.rect.y + this.rect.h + 40;
    const { ctx } = sizeCanvas(this.canvas, width, height);
    ctx.fillStyle = theme.bg;
    ctx.fillRect(0, 0, width, height);
    const scale = summaryScale(values);
    const table = lut("viridis");
    ctx.font = `9px ${theme.font}`;
    ctx.textBaseline = "middle";
    for (let r = 0; r < L; r++) {
      ctx.fillStyle = theme.muted;
      ctx.textAlign = "right";
      ctx.fillText(`L${d.layers[r]}`, labelW - 4, this.rect.y + (r + 0.5) * cell);
      for (let c = 0; c < H; c++) {
        const v = values[r * H + c];
        const rgb = lutRgb(table, scale.map(v));
        ctx.fillStyle = cssRgb(rgb);
        ctx.fillRect(this.rect.x + c * cell, this.rect.y + r * cell, cell - 1, cell - 1);
        if (cell >= 24) {
          ctx.fillStyle = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 140 ? "#000" : "#fff";
          ctx.textAlign = "center";
          ctx.fillText(formatValue(v), this.rect.x + (c + 0.5) * cell, this.rect.y + (r + 0.5) * cell, cell - 2);
        }
      }
    }
    ctx.fillStyle = theme.muted;
    ctx.textAlign = "center";
    if (cell >= 14) d.heads.forEach((h, c) => ctx.fillText(`H${h}`, this.rect.x + (c + 0.5) * cell, 7));
    const r = d.layers.indexOf(layer);
    const c = d.heads.indexOf(head);
    if (r >= 0 && c >= 0) {
      ctx.strokeStyle = theme.fg;
      ctx.lineWidth = 2;
      ctx.strokeRect(this.rect.x + c * cell - 1, this.rect.y + r * cell - 1, cell + 1, cell + 1);
    }
    ctx.textAlign = "left";
    drawColorbar(ctx, { x: 4, y: this.rect.y + this.rect.h + 6, width: width - 8, height: 8, colormap: "viridis", scale, theme });
  }
}
