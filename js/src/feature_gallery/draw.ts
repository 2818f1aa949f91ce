// FeatureGallery drawing: images with a feature's patch activations over them, the density histogram.
// Canvas only (text drawn on a canvas is never parsed as HTML).
import { pixelsToCanvas, sizeCanvas } from "../shared/canvas";
import { drawColorbar } from "../shared/colorbar";
import { lut } from "../shared/colormap";
import { drawImageOverGrey, placeholderGrey } from "../shared/marks";
import { patchRect } from "../shared/patches";
import { paintBlock } from "../shared/raster";
import { formatValue, makeScale } from "../shared/scale";
import type { Theme } from "../shared/theme";
import { type Grid, type Shot, mapTop } from "./data";
import { type Placed, stripRects, stripSize } from "./layout";

export class ImagePool {
  private canvases = new Map<number, HTMLCanvasElement>();
  constructor(private readonly pixels: { data: Uint8Array; shape: number[] } | null) {}

  get(p: number): HTMLCanvasElement | null {
    if (!this.pixels || p < 0 || p >= this.pixels.shape[0]) return null;
    let c = this.canvases.get(p);
    if (!c) {
      const [, H, W, C] = this.pixels.shape;
      c = pixelsToCanvas(this.pixels.data.subarray(p * H * W * C, (p + 1) * H * W * C), H, W, C);
      this.canvases.set(p, c);
    }
    return c;
  }
}

export interface ShotStyle {
  colormap: string;
  opacity: number;
  normalization: string;
  featureMax: number;
  theme: Theme;
  caption: (s: Shot) => string;
  selected?: { image: number; token: number } | null;
}

/** Draw shots into a canvas; returns where each went (for hit tests). */
export function drawShots(canvas: HTMLCanvasElement, shots: Shot[], pool: ImagePool, lay: Grid, size: number, perRow: number, st: ShotStyle): Placed[] {
  const { w, h } = stripSize(Math.max(1, shots.length), size, perRow);
  const { ctx } = sizeCanvas(canvas, w, h);
  ctx.fillStyle = st.theme.bg;
  ctx.fillRect(0, 0, w, h);
  const rects = stripRects(shots.length, size, perRow);
  const table = lut(st.colormap);
  const placed: Placed[] = [];
  const overlay = document.createElement("canvas");
  overlay.width = Math.max(1, lay.cols);
  overlay.height = Math.max(1, lay.rows);
  const octx = overlay.getContext("2d");
  shots.forEach((s, i) => {
    const r = rects[i];
    drawImageOverGrey(ctx, pool.get(s.image), r, placeholderGrey(st.theme));
    if (octx && lay.rows * lay.cols > 0) {
      const top = mapTop(s.map, st.featureMax, st.normalization);
      const data = octx.createImageData(lay.cols, lay.rows);
      paintBlock(data, s.map, { rows: lay.rows, cols: lay.cols, start: lay.nPrefix }, (v) => Math.min(1, Math.max(0, v / top)), table, (v, t) => activationAlpha(v, t, st.opacity));
      octx.putImageData(data, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(overlay, 0, 0, lay.cols, lay.rows, r.x, r.y, r.w, r.h);
    }
    const sel = st.selected;
    if (sel && sel.image === s.image) {
      const pr = patchRect(r, sel.token, lay.rows, lay.cols, lay.nPrefix);
      if (pr) {
        ctx.strokeStyle = st.theme.accent;
        ctx.lineWidth = 2;
        ctx.strokeRect(pr.x + 1, pr.y + 1, pr.w - 2, pr.h - 2);
      }
    }
    ctx.fillStyle = st.theme.muted;
    ctx.font = `10px ${st.theme.font}`;
    ctx.textBaseline = "top";
    ctx.fillText(st.caption(s), r.x, r.y + r.h + 2, r.w);
    placed.push({ rect: r, shot: s });
  });
  return placed;
}

/** The colour bar of the maps: 0 to the feature's largest activation, or to each image's own maximum. */
export function drawMapColorbar(canvas: HTMLCanvasElement, st: ShotStyle, w = 260): void {
  const { ctx } = sizeCanvas(canvas, w, 44);
  ctx.fillStyle = st.theme.bg;
  ctx.fillRect(0, 0, w, 44);
  const top = st.normalization === "feature" ? Math.max(st.featureMax, 1e-9) : 1;
  drawColorbar(ctx, {
    x: 4, y: 4, width: w - 8, height: 10, colormap: st.colormap, scale: makeScale("linear", [0, top]), theme: st.theme,
    label: st.normalization === "feature" ? "activation (0 to the feature's max)" : "activation / each image's max",
  });
}

/** An activation map's alpha: clear where the feature is silent, more opaque where it fires harder. */
export function activationAlpha(v: number, t: number, opacity: number): number {
  return v > 0 ? Math.round(255 * opacity * (0.25 + 0.75 * t)) : 0;
}

/** The log-density histogram of all features, the bar holding `marked` in the accent colour. */
export function drawHistogram(canvas: HTMLCanvasElement, counts: number[], edges: number[], marked: number, theme: Theme, width = 260, height = 110): void {
  const { ctx } = sizeCanvas(canvas, width, height);
  ctx.fillStyle = theme.bg;
  ctx.fillRect(0, 0, width, height);
  const R = { x: 8, y: 6, w: width - 16, h: height - 40 };
  const top = Math.max(1, ...counts);
  const n = Math.max(1, counts.length);
  counts.forEach((c, i) => {
    const bh = (Math.log1p(c) / Math.log1p(top)) * R.h;
    ctx.fillStyle = i === marked ? theme.accent : theme.dark ? "#6b7785" : "#9aa7b5";
    ctx.fillRect(R.x + (i * R.w) / n, R.y + R.h - bh, Math.max(1, R.w / n - 1), bh);
  });
  ctx.strokeStyle = theme.grid;
  ctx.beginPath();
  ctx.moveTo(R.x, R.y + R.h + 0.5);
  ctx.lineTo(R.x + R.w, R.y + R.h + 0.5);
  ctx.stroke();
  ctx.fillStyle = theme.muted;
  ctx.font = `10px ${theme.font}`;
  ctx.textBaseline = "top";
  if (edges.length >= 2) {
    ctx.textAlign = "left";
    ctx.fillText(frequencyLabel(edges[0]), R.x, R.y + R.h + 3);
    ctx.textAlign = "right";
    ctx.fillText(frequencyLabel(edges[edges.length - 1]), R.x + R.w, R.y + R.h + 3);
  }
  ctx.textAlign = "left";
  ctx.fillText("firing frequency of all features (log), count (log)", R.x, R.y + R.h + 16);
}

/** A log10 firing frequency as a readable percentage ("0.56%", "100%"). */
export function frequencyLabel(log10Frequency: number): string {
  return `${formatValue(100 * Math.pow(10, log10Frequency))}%`;
}
