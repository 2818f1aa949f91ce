// PatchingHeatmap painting: the layer x column heatmap with its labels, the colour bar, the per-layer
// image maps and the patch editor's two images. Canvas text only (never parsed as HTML).
import { sizeCanvas, strokePatchGrid } from "../shared/canvas";
import { drawColorbar } from "../shared/colorbar";
import { drawImageIn, drawImageOverGrey, outlinePatch, placeholderGrey } from "../shared/marks";
import { type Rect, patchRect } from "../shared/patches";
import { cssRgb, lutRgb } from "../shared/raster";
import type { ColorScale } from "../shared/scale";
import type { Theme } from "../shared/theme";
import { type PatchData, cellOf, columnCell, columnLabel, columnOf, tokenLabel, tokenValues, valueAt } from "./data";
import { columnsCaption, drawFrameGroups, frameMajor } from "./frames";
import { type HeatLayout, type MapLayout, cellRect, colX, labelStep } from "./layout";
import type { Selection } from "./traits";

/** How effects are coloured: the colour table and the centred scale (null before the first draw: the middle colour). */
export interface Colouring {
  table: Uint8ClampedArray;
  scale: ColorScale | null;
}

/** Fill `r` with the colour of effect `v`. */
export function fillValue(ctx: CanvasRenderingContext2D, c: Colouring, v: number, r: Rect): void {
  ctx.fillStyle = cssRgb(lutRgb(c.table, c.scale ? c.scale.map(v) : 0.5));
  ctx.fillRect(r.x, r.y, r.w, r.h);
}

/** The selected cell (or patch): black under the accent, half a pixel in. */
function outlineSelected(ctx: CanvasRenderingContext2D, r: Rect, theme: Theme): void {
  outlinePatch(ctx, r, theme.accent, 0.5);
}

/** The heatmap: one row per layer, one column per token / head / layer, labels, the selected cell outlined. */
export function drawHeat(ctx: CanvasRenderingContext2D, d: PatchData, g: HeatLayout, sel: Selection | null, c: Colouring, t: Theme): void {
  ctx.fillStyle = t.bg;
  ctx.fillRect(0, 0, g.width, g.height);
  const head = sel ? columnOf(d, sel).head : 0;
  for (let row = 0; row < d.L; row++) {
    for (let col = 0; col < g.nCols; col++) fillValue(ctx, c, valueAt(d, row, columnCell(d, col, head)), cellRect(g, row, col));
  }
  ctx.fillStyle = t.fg;
  ctx.font = `10px ${t.font}`;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let row = 0; row < d.L; row++) ctx.fillText(`L${d.layers[row]}`, g.x0 - 4, g.y0 + (row + 0.5) * g.cellH);
  const y = g.y0 + d.L * g.cellH + 3;
  const byRows = (d.by === "position" || d.by === "head_position") && d.cols > 1 && g.nCols === d.nPrefix + d.rows * d.cols;
  const byFrames = (d.by === "position" || d.by === "head_position") && d.frames > 1 && frameMajor(d);
  if (byFrames) drawFrameGroups(ctx, d, g, y, t, (col) => tokenLabel(d, col));
  else if (byRows) drawPatchRows(ctx, d, g, y, t);
  else drawColumnLabels(ctx, d, g, y);
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  ctx.fillStyle = t.muted;
  ctx.fillText(columnsCaption(d, g.nPrefixCols), g.x0, 3);
  const cell = sel ? cellOf(d, sel) : null;
  if (cell && sel) outlineSelected(ctx, cellRect(g, cell.lp, columnOf(d, sel).col), t);
}

/** Column labels, thinned so they do not overlap (two rows; a label that fits neither is left out). */
function drawColumnLabels(ctx: CanvasRenderingContext2D, d: PatchData, g: HeatLayout, y: number): void {
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const label = (col: number) => columnLabel(d, col);
  const step = labelStep(g.cellW, 24);
  const right = [-Infinity, -Infinity];
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
}

/** Under the patch columns: a tick where each row of the patch grid starts and the row's name (r0, r1, ...)
 * centred under it, thinned when rows are narrow; the prefix tokens keep their own labels. */
function drawPatchRows(ctx: CanvasRenderingContext2D, d: PatchData, g: HeatLayout, y: number, t: Theme): void {
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let col = 0; col < g.nPrefixCols; col++) ctx.fillText(tokenLabel(d, col), colX(g, col) + g.cellW / 2, y + 6);
  const rowW = d.cols * g.cellW;
  const step = Math.max(1, Math.ceil(22 / Math.max(1, rowW)));
  ctx.strokeStyle = t.muted;
  ctx.lineWidth = 1;
  for (let r = 0; r < d.rows; r++) {
    const x = colX(g, d.nPrefix + r * d.cols);
    ctx.beginPath();
    ctx.moveTo(Math.round(x) + 0.5, y - 3);
    ctx.lineTo(Math.round(x) + 0.5, y + 4);
    ctx.stroke();
    if (r % step === 0) ctx.fillText(`r${r}`, x + rowW / 2, y + 6);
  }
  const end = colX(g, g.nCols - 1) + g.cellW;
  ctx.beginPath();
  ctx.moveTo(Math.round(end) - 0.5, y - 3);
  ctx.lineTo(Math.round(end) - 0.5, y + 4);
  ctx.stroke();
}

/** The colour bar of the effects: 0 = the corrupted run, 1 = the clean run. */
export function drawEffectColorbar(canvas: HTMLCanvasElement, w: number, scale: ColorScale | null, unit: boolean, colormap: string, theme: Theme): void {
  const height = 58;
  const { ctx } = sizeCanvas(canvas, w, height);
  ctx.fillStyle = theme.bg;
  ctx.fillRect(0, 0, w, height);
  if (!scale) return;
  drawColorbar(ctx, {
    x: 6,
    y: 6,
    width: w - 12,
    height: 12,
    colormap,
    dark: theme.dark,
    scale,
    theme,
    label: `effect: 0 = corrupted run, 1 = clean run · ${unit ? "fixed ±1" : "± max |effect|"}`,
  });
}

export interface LayerMap {
  /** layer position */
  lp: number;
  canvas: HTMLCanvasElement;
  geom: MapLayout;
}

/** One layer's map: every patch's effect over the clean image, the prefix tokens' cells beside it. */
export function drawLayerMap(m: LayerMap, d: PatchData, R: Rect, image: HTMLCanvasElement | null, sel: Selection | null, c: Colouring, theme: Theme): void {
  const { ctx } = sizeCanvas(m.canvas, m.geom.width, m.geom.height);
  ctx.fillStyle = theme.bg;
  ctx.fillRect(0, 0, m.geom.width, m.geom.height);
  if (image) drawImageIn(ctx, image, R);
  const head = sel ? columnOf(d, sel).head : 0;
  const vals = tokenValues(d, m.lp, head);
  ctx.globalAlpha = 0.7;
  for (let p = 0; p < d.rows * d.cols; p++) {
    const r = patchRect(R, d.nPrefix + p, d.rows, d.cols, d.nPrefix);
    if (r) fillValue(ctx, c, vals[d.nPrefix + p], r);
  }
  ctx.globalAlpha = 1;
  for (let i = 0; i < d.nPrefix; i++) {
    const r = m.geom.prefix[i];
    fillValue(ctx, c, vals[i], r);
    ctx.strokeStyle = theme.grid;
    ctx.lineWidth = 1;
    ctx.strokeRect(r.x + 0.5, r.y + 0.5, r.w - 1, r.h - 1);
  }
  const selCell = sel ? cellOf(d, sel) : null;
  if (selCell && selCell.lp === m.lp && sel?.position !== undefined) {
    const r = sel.position < d.nPrefix ? m.geom.prefix[sel.position] : patchRect(R, sel.position, d.rows, d.cols, d.nPrefix);
    if (r) outlineSelected(ctx, r, theme);
  }
}

/** The editor: the clean image with the painted patches, and the corrupted image beside it. */
export function drawEditor(
  editor: HTMLCanvasElement,
  corrupted: HTMLCanvasElement,
  d: PatchData,
  R: Rect,
  images: { clean: HTMLCanvasElement | null; corrupted: HTMLCanvasElement | null },
  painted: readonly number[],
  theme: Theme,
): void {
  const grey = placeholderGrey(theme);
  const full = { x: 0, y: 0, w: R.w, h: R.h };
  const { ctx } = sizeCanvas(editor, R.w, R.h);
  drawImageOverGrey(ctx, images.clean, full, grey);
  ctx.fillStyle = "rgba(232, 89, 12, 0.45)";
  ctx.strokeStyle = theme.accent;
  ctx.lineWidth = 1.5;
  for (const p of painted) {
    const r = patchRect(R, d.nPrefix + p, d.rows, d.cols, d.nPrefix);
    if (!r) continue;
    ctx.fillRect(r.x, r.y, r.w, r.h);
    ctx.strokeRect(r.x + 1, r.y + 1, r.w - 2, r.h - 2);
  }
  strokePatchGrid(ctx, R.w, R.h, d.rows, d.cols, "rgba(255,255,255,0.3)");
  drawImageOverGrey(sizeCanvas(corrupted, R.w, R.h).ctx, images.corrupted, full, grey);
}
