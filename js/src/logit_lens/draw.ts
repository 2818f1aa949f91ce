// LogitLens painting: every token's colour in the current mode, the map (image, colour overlay, patch
// labels, the selected patch), the colour bar and the line chart. Canvas text only (never parsed as HTML).
import { sizeCanvas, strokePatchGrid } from "../shared/canvas";
import { colorbarHeight, drawColorbar } from "../shared/colorbar";
import { lut } from "../shared/colormap";
import { drawImageOverGrey, outlinePatch, placeholderGrey } from "../shared/marks";
import { type Rect, patchRect } from "../shared/patches";
import { cssRgb, paintRgbBlock, rgbOfValues } from "../shared/raster";
import { type ColorScale, formatValue, makeScale } from "../shared/scale";
import type { Theme } from "../shared/theme";
import { type LensData, className, colourOf, modeRangeValues, modeValues, shortLabel, top1, trajectory } from "./data";
import { OTHER, chartPoint, classColor, textOn } from "./layout";
import type { Mode } from "./traits";

export interface ShownScale {
  scale: ColorScale;
  label: string;
  /** added to a value before the scale maps it (rank + 1 on a log scale) */
  offset: number;
}

export interface TokenColours {
  /** RGB triples, one per token */
  colors: Uint8ClampedArray;
  /** the colour bar's scale; null in top1 mode (colours are classes) */
  shown: ShownScale | null;
}

/**
 * Every token's colour in `mode` at layer position `lp`: its top-1 class (top1), else its value through
 * the colour map, with the range over this layer or all layers (`global`). `tp`: legend position of the
 * class mapped in class_prob mode.
 */
export function tokenColours(d: LensData, mode: Mode, lp: number, tp: number, global: boolean, colormap: string, dark = false): TokenColours {
  if (mode === "top1") {
    const colors = new Uint8ClampedArray(d.T * 3);
    const cls = top1(d, lp);
    for (let t = 0; t < d.T; t++) colors.set(colourOf(d, cls[t]), t * 3);
    return { colors, shown: null };
  }
  const values = modeValues(d, mode, lp, tp);
  const range = modeRangeValues(d, mode, lp, tp, global);
  const scope = global ? "all layers" : "this layer";
  let scale: ColorScale;
  let offset = 0;
  let label: string;
  if (mode === "entropy") {
    const top = d.maxEntropy > 0 ? d.maxEntropy : 1;
    scale = { kind: "linear", lo: 0, hi: top, max: top, clipped: false, map: (v: number) => (v <= 0 ? 0 : v >= top ? 1 : v / top) };
    label = `entropy (nats), max log ${d.classNames.length || "C"} = ${formatValue(top)}`;
  } else if (mode === "rank") {
    offset = 1; // log scale on rank + 1: 1 = the final class is top-1 here
    scale = makeScale("log", Float32Array.from(range, (v) => v + 1));
    label = "rank of the final class + 1 (1 = top-1), log";
  } else if (mode === "kl") {
    scale = makeScale("linear", range);
    label = `KL(last ‖ this layer), nats · ${scope}`;
  } else {
    scale = makeScale("linear", range);
    const c = tp >= 0 ? d.classIds[tp] : -1;
    label = tp >= 0 ? `p(${className(d, c)}) · ${scope}` : "no map for this class";
  }
  const colors = rgbOfValues(values, (v) => scale.map(v + offset), lut(colormap, dark));
  return { colors, shown: { scale, label, offset } };
}

export interface MapPaint {
  R: Rect;
  image: HTMLCanvasElement | null;
  /** a cols x rows canvas and its pixels, where the patch colours go before they are scaled up */
  overlay: { canvas: HTMLCanvasElement; ctx: CanvasRenderingContext2D; image: ImageData };
  colors: Uint8ClampedArray;
  opacity: number;
  /** class of every token at this layer when patch labels are on, else null */
  labels: Int32Array | null;
  token: number;
  theme: Theme;
}

/** The map: the image, the colour overlay, a faint patch grid, short labels, the selected patch. */
export function drawMap(ctx: CanvasRenderingContext2D, d: LensData, m: MapPaint): void {
  const { R, overlay: ov, colors, theme } = m;
  drawImageOverGrey(ctx, m.image, { x: 0, y: 0, w: R.w, h: R.h }, placeholderGrey(theme));
  paintRgbBlock(ov.image, colors, { rows: d.rows, cols: d.cols, start: d.nPrefix });
  ov.ctx.putImageData(ov.image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.globalAlpha = m.opacity;
  ctx.drawImage(ov.canvas, 0, 0, d.cols, d.rows, 0, 0, R.w, R.h);
  ctx.globalAlpha = 1;
  strokePatchGrid(ctx, R.w, R.h, d.rows, d.cols, "rgba(255,255,255,0.25)");
  const cw = R.w / d.cols;
  const ch = R.h / d.rows;
  if (m.labels && cw >= 22 && ch >= 12) {
    const cls = m.labels;
    const max = Math.max(2, Math.floor(cw / 6));
    ctx.font = `${Math.min(11, Math.floor(ch * 0.45))}px ${theme.font}`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (let p = 0; p < d.rows * d.cols; p++) {
      const t = d.nPrefix + p;
      const r = Math.floor(p / d.cols);
      const c = p % d.cols;
      ctx.fillStyle = textOn([colors[t * 3], colors[t * 3 + 1], colors[t * 3 + 2]]);
      ctx.fillText(shortLabel(d.shortNames[cls[t]] ?? className(d, cls[t]), max), (c + 0.5) * cw, (r + 0.5) * ch, cw - 2);
    }
  }
  const pr = patchRect(R, m.token, d.rows, d.cols, d.nPrefix);
  if (pr) outlinePatch(ctx, pr, theme.accent, 1);
}

/** The colour bar of the current scale, or (top1: colours are classes) a line saying so. */
export function drawMapColorbar(canvas: HTMLCanvasElement, w: number, shown: ShownScale | null, colormap: string, theme: Theme): void {
  const o = { x: 6, y: 6, width: w - 12, height: 12, colormap, theme, label: shown?.label ?? "", labelLines: 3, dark: theme.dark };
  const height = Math.max(58, colorbarHeight(o));
  const { ctx } = sizeCanvas(canvas, w, height);
  ctx.fillStyle = theme.bg;
  ctx.fillRect(0, 0, w, height);
  if (!shown) {
    ctx.fillStyle = theme.muted;
    ctx.font = `11px ${theme.font}`;
    ctx.textBaseline = "top";
    ctx.fillText("colour = top-1 class (see the legend); grey = other", 6, 8);
    return;
  }
  drawColorbar(ctx, { ...o, scale: shown.scale });
}

/** The token's final top classes through every layer, the current layer dashed. */
export function drawChart(canvas: HTMLCanvasElement, d: LensData, token: number, lp: number, t: Theme): void {
  const W = 260;
  const H = 150;
  const { ctx } = sizeCanvas(canvas, W, H);
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
  const cx = chartPoint(lp, d.L, 0, top, R).x;
  ctx.strokeStyle = t.accent;
  ctx.setLineDash([3, 3]);
  ctx.beginPath();
  ctx.moveTo(cx, R.y);
  ctx.lineTo(cx, R.y + R.h);
  ctx.stroke();
  ctx.setLineDash([]);
  series.forEach((s, k) => {
    const own = colourOf(d, s.cls);
    const col = own !== OTHER ? own : classColor(10 + (k % 10));
    ctx.strokeStyle = cssRgb(col);
    ctx.fillStyle = cssRgb(col);
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
