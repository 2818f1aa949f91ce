// LogitAttribution painting: the heatmap (diverging, centred at 0, values in the cells when they fit), and
// a token map over the image (prefix tokens in a strip above it) with its colour bar. Canvas text only.
import { scratch, strokePatchGrid } from "../shared/canvas";
import { drawColorbar } from "../shared/colorbar";
import { drawImageOverGrey, outlinePatch, placeholderGrey } from "../shared/marks";
import { type Rect, patchRect } from "../shared/patches";
import { cssRgb, lutRgb, paintBlock } from "../shared/raster";
import { type ColorScale, formatValue } from "../shared/scale";
import type { Theme } from "../shared/theme";
import { type AttributionData, type Selection, cellValue, selectionLabel } from "./data";
import { type HeatmapLayout, cellOf, textOn } from "./layout";

export interface HeatmapPaint {
  vals: ArrayLike<number>;
  scale: ColorScale;
  table: Uint8ClampedArray;
  selected: Selection;
  hover: Selection | null;
  theme: Theme;
}

/** The heatmap: labels, every cell's colour (and value when cells are large enough), the selection. */
export function drawHeatmap(ctx: CanvasRenderingContext2D, d: AttributionData, L: HeatmapLayout, p: HeatmapPaint): void {
  const { theme } = p;
  ctx.fillStyle = theme.bg;
  ctx.fillRect(0, 0, L.width, L.height);
  ctx.font = `10px ${theme.font}`;
  ctx.fillStyle = theme.muted;
  ctx.textBaseline = "middle";
  ctx.textAlign = "center";
  for (const h of L.headers) ctx.fillText(h.text, h.x, L.headerY);
  ctx.textAlign = "right";
  for (const r of L.rows) ctx.fillText(r.text, L.cells[0].rect.x - 5, r.y);
  const numbers = L.cells[0].rect.w >= 24;
  for (const cell of L.cells) {
    const { rect, sel } = cell;
    const v = cellValue(d, p.vals, sel);
    const rgb = lutRgb(p.table, p.scale.map(v));
    ctx.fillStyle = cssRgb(rgb);
    ctx.fillRect(rect.x, rect.y, rect.w, rect.h);
    if (numbers) {
      ctx.fillStyle = textOn(rgb);
      ctx.textAlign = "center";
      ctx.font = `9px ${theme.font}`;
      ctx.fillText(shortValue(v), rect.x + rect.w / 2, rect.y + rect.h / 2);
    }
    if (sel.part === "embed" || sel.part === "bias") {
      ctx.fillStyle = theme.muted;
      ctx.textAlign = "center";
      ctx.font = `10px ${theme.font}`;
      ctx.fillText(sel.part, rect.x + rect.w / 2, L.captionY + 6);
    }
  }
  const outline = (s: Selection | null, color: string, width: number) => {
    const c = s && cellOf(L, s);
    if (!c) return;
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.strokeRect(c.rect.x - 1, c.rect.y - 1, c.rect.w + 2, c.rect.h + 2);
  };
  outline(p.hover, p.theme.accent2, 1.5);
  outline(p.selected, p.theme.fg, 2);
}

/** A value short enough for a cell: "1.2", "-0.3", "12". */
function shortValue(v: number): string {
  const a = Math.abs(v);
  if (a < 0.005) return "0";
  const s = a >= 10 ? a.toFixed(0) : a >= 1 ? a.toFixed(1) : a.toFixed(2).replace(/^0/, "");
  return (v < 0 ? "-" : "") + s;
}

export interface MapGeometry {
  /** the prefix tokens' strip (height 0 without prefix tokens) and the image */
  strip: Rect;
  image: Rect;
  colorbarY: number;
  width: number;
  height: number;
}

/** A token map `size` CSS pixels wide: the prefix strip, the image (its aspect ratio), a colour bar below. */
export function mapGeometry(size: number, nPrefix: number, imgH: number, imgW: number): MapGeometry {
  const w = Math.max(96, Math.round(size));
  const stripH = nPrefix > 0 ? 16 : 0;
  const h = Math.round((w * imgH) / Math.max(1, imgW));
  const image = { x: 0, y: stripH ? stripH + 4 : 0, w, h };
  const colorbarY = image.y + h + 6;
  return { strip: { x: 0, y: 0, w, h: stripH }, image, colorbarY, width: w, height: colorbarY + 44 };
}

export interface MapPaint {
  G: MapGeometry;
  values: Float32Array | null;
  scale: ColorScale;
  table: Uint8ClampedArray;
  colormap: string;
  grey: HTMLCanvasElement | null;
  opacity: number;
  /** the colour bar's caption */
  caption: string;
  /** shown over a grey image when there is no map */
  missing: string;
  /** signed values on a diverging map: the further from 0, the more opaque (the image shows where nothing is written) */
  signed: boolean;
  hoverToken: number;
  theme: Theme;
}

/** One token map: grey image, values over the patches, prefix cells (labelled), colour bar. */
export function drawTokenMap(ctx: CanvasRenderingContext2D, d: AttributionData, p: MapPaint): void {
  const { G, theme } = p;
  ctx.fillStyle = theme.bg;
  ctx.fillRect(0, 0, G.width, G.height);
  drawImageOverGrey(ctx, p.grey, G.image, placeholderGrey(theme));
  if (!p.values) {
    ctx.fillStyle = "rgba(0,0,0,0.55)";
    ctx.fillRect(G.image.x, G.image.y + G.image.h / 2 - 12, G.image.w, 24);
    ctx.fillStyle = "#fff";
    ctx.font = `11px ${theme.font}`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(p.missing, G.image.x + G.image.w / 2, G.image.y + G.image.h / 2, G.image.w - 8);
    return;
  }
  const { canvas, ctx: octx } = scratch(d.cols, d.rows);
  const img = octx.createImageData(d.cols, d.rows);
  const alpha = p.signed ? (_: number, t: number) => Math.round(255 * Math.min(1, 0.15 + 2.5 * Math.abs(2 * t - 1))) : undefined;
  paintBlock(img, p.values, { rows: d.rows, cols: d.cols, start: d.nPrefix }, p.scale.map, p.table, alpha);
  octx.putImageData(img, 0, 0);
  ctx.globalAlpha = p.opacity;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(canvas, G.image.x, G.image.y, G.image.w, G.image.h);
  ctx.globalAlpha = 1;
  ctx.save();
  ctx.translate(G.image.x, G.image.y);
  strokePatchGrid(ctx, G.image.w, G.image.h, d.rows, d.cols, "rgba(255,255,255,0.15)");
  ctx.restore();
  // prefix tokens: one labelled cell each
  const n = d.nPrefix;
  if (n > 0) {
    const cw = Math.min(48, (G.strip.w - 4 * (n - 1)) / n);
    ctx.font = `9px ${theme.font}`;
    ctx.textBaseline = "middle";
    ctx.textAlign = "center";
    for (let t = 0; t < n; t++) {
      const rgb = lutRgb(p.table, p.scale.map(p.values[t]));
      const x = G.strip.x + t * (cw + 4);
      ctx.fillStyle = cssRgb(rgb);
      ctx.fillRect(x, G.strip.y, cw, G.strip.h);
      ctx.fillStyle = textOn(rgb);
      ctx.fillText(d.tokenLabels[t] ?? `p${t}`, x + cw / 2, G.strip.y + G.strip.h / 2, cw - 2);
    }
    if (p.hoverToken >= 0 && p.hoverToken < n) {
      ctx.strokeStyle = theme.accent;
      ctx.lineWidth = 2;
      ctx.strokeRect(G.strip.x + p.hoverToken * (cw + 4), G.strip.y, cw, G.strip.h);
    }
  }
  const pr = patchRect(G.image, p.hoverToken, d.rows, d.cols, d.nPrefix);
  if (pr) outlinePatch(ctx, pr, theme.accent);
  ctx.textAlign = "left";
  drawColorbar(ctx, { x: 4, y: G.colorbarY, width: G.width - 8, height: 10, colormap: p.colormap, dark: theme.dark, scale: p.scale, theme, label: p.caption });
}

/** The token under (x, y) of a map: a patch, a prefix cell, or -1. */
export function mapTokenAt(G: MapGeometry, d: AttributionData, x: number, y: number): number {
  const { image, strip } = G;
  if (x >= image.x && x < image.x + image.w && y >= image.y && y < image.y + image.h) {
    const r = Math.min(d.rows - 1, Math.floor(((y - image.y) / image.h) * d.rows));
    const c = Math.min(d.cols - 1, Math.floor(((x - image.x) / image.w) * d.cols));
    return d.nPrefix + r * d.cols + c;
  }
  const n = d.nPrefix;
  if (n > 0 && y >= strip.y && y < strip.y + strip.h) {
    const cw = Math.min(48, (strip.w - 4 * (n - 1)) / n);
    const t = Math.floor((x - strip.x) / (cw + 4));
    if (t >= 0 && t < n && x - strip.x - t * (cw + 4) < cw) return t;
  }
  return -1;
}

/** The caption of the heatmap's colour bar. */
export function heatmapCaption(normalization: string): string {
  return `logits · colour range: ${normalization === "heads" ? "heads" : "all cells"}`;
}

/** A map's caption: what it shows and its largest magnitude. */
export function mapCaption(kind: "source" | "attention", s: Selection, max: number): string {
  return kind === "source" ? `logits per token · max |v| ${formatValue(max)}` : `${selectionLabel(s)} attention · max ${formatValue(max)}`;
}
