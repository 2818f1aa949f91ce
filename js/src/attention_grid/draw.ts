// AttentionGrid painting: the grid of thumbnails (grey image, attention over it, prefix cells), the query
// panel, the colour bars and the detail view's matrix and image. Functions of data, layout and a context;
// canvas text only (never parsed as HTML).
import { scratch, sizeCanvas, strokePatchGrid } from "../shared/canvas";
import { colorbarHeight, drawColorbar } from "../shared/colorbar";
import { drawImageOrGrey, outlinePatch, placeholderGrey } from "../shared/marks";
import { type Rect, patchRect } from "../shared/patches";
import { cssRgb, lutRgb, paintBlock } from "../shared/raster";
import type { ColorScale } from "../shared/scale";
import type { Theme } from "../shared/theme";
import type { AttentionData } from "./data";
import { type Cell, type GridLayout, MATRIX_COLORBAR_H, MATRIX_PAD, matrixTicks } from "./layout";

/** AttentionGrid's placeholder is a shade lighter on dark themes than the other widgets'. */
export const greyOf = (theme: Theme): string => placeholderGrey(theme, "#555");

export interface Atlas {
  canvas: HTMLCanvasElement;
  ctx: CanvasRenderingContext2D;
  image: ImageData;
}

/** One row of `nCells` patch maps side by side (rows x cols pixels each), drawn scaled into the thumbnails. */
export function makeAtlas(nCells: number, rows: number, cols: number): Atlas {
  const atlas = scratch(Math.max(1, nCells * cols), rows);
  return { ...atlas, image: atlas.ctx.createImageData(Math.max(1, nCells * cols), rows) };
}

/** The parts of the grid that only change on a rebuild: labels and the grey image under every thumbnail. */
export function renderGridBackground(d: AttentionData, L: GridLayout, t: Theme, grey: HTMLCanvasElement | null, sortedBy = ""): HTMLCanvasElement {
  const { canvas } = scratch(1, 1);
  const { ctx } = sizeCanvas(canvas, L.width, L.height);
  ctx.fillStyle = t.bg;
  ctx.fillRect(0, 0, L.width, L.height);
  ctx.fillStyle = t.muted;
  ctx.font = `10px ${t.font}`;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  if (sortedBy) {
    ctx.textAlign = "left";
    ctx.fillText(`sorted by ${sortedBy} ↑`, L.spec.labelW, L.headerY + L.spec.headerH / 2);
  } else d.heads.forEach((h, c) => ctx.fillText(`H${h}`, L.colCentres[c], L.headerY + L.spec.headerH / 2));
  ctx.textAlign = "right";
  d.layers.forEach((l, r) => ctx.fillText(`L${l}`, L.spec.labelW - 6, L.rowCentres[r]));
  if (L.rolloutHeaderY >= 0) {
    ctx.textAlign = "center";
    d.layers.forEach((l, c) => ctx.fillText(`≤L${l}`, L.colCentres[c], L.rolloutHeaderY + L.spec.headerH / 2));
    ctx.textAlign = "right";
    ctx.fillText("rollout", L.spec.labelW - 2, L.rolloutCentreY);
  }
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  for (const cell of L.cells) drawImageOrGrey(ctx, grey, cell.thumb, greyOf(t));
  return canvas;
}

export interface GridPaint {
  L: GridLayout;
  background: HTMLCanvasElement;
  atlas: Atlas;
  /** every cell's T values, [cells, T] */
  values: Float32Array;
  scales: ColorScale[];
  table: Uint8ClampedArray;
  opacity: number;
  /** the token outlined on every thumbnail */
  token: number;
  /** the selected head's cell, or undefined */
  selected: Cell | undefined;
  theme: Theme;
}

/** The thumbnails: the background, every cell's patch map over it, its prefix cells, the outlines. */
export function drawGrid(ctx: CanvasRenderingContext2D, d: AttentionData, p: GridPaint): void {
  const { L, atlas, values, scales, table } = p;
  const { rows, cols, nPrefix, T } = d;
  L.cells.forEach((_, i) => paintBlock(atlas.image, values, { rows, cols, start: i * T + nPrefix, x: i * cols }, scales[i].map, table));
  atlas.ctx.putImageData(atlas.image, 0, 0);

  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(p.background, 0, 0, L.width, L.height);
  ctx.globalAlpha = p.opacity;
  L.cells.forEach((cell, i) => {
    const r = cell.thumb;
    ctx.drawImage(atlas.canvas, i * cols, 0, cols, rows, r.x, r.y, r.w, r.h);
  });
  ctx.globalAlpha = 1;
  const ps = L.prefixSize;
  L.cells.forEach((cell, i) => {
    const s = scales[i];
    for (let k = 0; k < nPrefix; k++) {
      ctx.fillStyle = cssRgb(lutRgb(table, s.map(values[i * T + k])));
      ctx.fillRect(cell.prefix.x + k * ps, cell.prefix.y, ps - 1, ps - 1);
    }
  });
  ctx.strokeStyle = p.theme.accent;
  ctx.lineWidth = 1.5;
  for (const cell of L.cells) outlineToken(ctx, d, cell, p.token, ps);
  const sel = p.selected;
  if (sel) {
    ctx.strokeStyle = p.theme.fg;
    ctx.lineWidth = 2;
    const top = nPrefix ? sel.prefix.y : sel.thumb.y;
    ctx.strokeRect(sel.thumb.x - 2, top - 2, sel.thumb.w + 4, sel.thumb.y + sel.thumb.h - top + 4);
  }
}

/** A thin outline of `token` on one thumbnail: its patch, or its prefix cell (stroke style set by the caller). */
function outlineToken(ctx: CanvasRenderingContext2D, d: AttentionData, cell: Cell, token: number, ps: number): void {
  const pr = patchRect(cell.thumb, token, d.rows, d.cols, d.nPrefix);
  if (pr) ctx.strokeRect(pr.x + 0.5, pr.y + 0.5, Math.max(1, pr.w - 1), Math.max(1, pr.h - 1));
  else if (token < d.nPrefix) ctx.strokeRect(cell.prefix.x + token * ps - 0.5, cell.prefix.y - 0.5, ps, ps);
}

/** The query panel: the colour image, a faint patch grid, the query patch outlined. */
/** The query image: the query's patch (accent) and, while a detail matrix cell is hovered, its key's
 * patch (accent2). */
export function drawQueryPanel(ctx: CanvasRenderingContext2D, d: AttentionData, R: Rect, image: HTMLCanvasElement | null, token: number, theme: Theme, key = -1): void {
  drawImageOrGrey(ctx, image, { x: 0, y: 0, w: R.w, h: R.h }, greyOf(theme));
  strokePatchGrid(ctx, R.w, R.h, d.rows, d.cols, "rgba(255,255,255,0.18)");
  const pr = patchRect(R, token, d.rows, d.cols, d.nPrefix);
  if (pr) outlinePatch(ctx, pr, theme.accent);
  const kr = key >= 0 ? patchRect(R, key, d.rows, d.cols, d.nPrefix) : null;
  if (kr) outlinePatch(ctx, kr, theme.accent2);
}

/** The colour bar under the query panel (blank without a selected head). */
export function drawPanelColorbar(canvas: HTMLCanvasElement, w: number, shown: { scale: ColorScale; label: string } | null, colormap: string, theme: Theme): void {
  const o = { x: 6, y: 6, width: w - 12, height: 12, colormap, theme, label: shown?.label ?? "", labelLines: 3, dark: theme.dark };
  const h = Math.max(58, colorbarHeight(o));
  const { ctx } = sizeCanvas(canvas, w, h);
  ctx.fillStyle = theme.bg;
  ctx.fillRect(0, 0, w, h);
  if (!shown) return;
  drawColorbar(ctx, { ...o, scale: shown.scale });
}

/** A T x T matrix as a T x T pixel canvas, through the colour table. */
export function matrixImage(values: Float32Array, T: number, scale: ColorScale, table: Uint8ClampedArray): HTMLCanvasElement {
  const { canvas, ctx } = scratch(T, T);
  const img = ctx.createImageData(T, T);
  paintBlock(img, values, { rows: T, cols: T }, scale.map, table);
  ctx.putImageData(img, 0, 0);
  return canvas;
}

export interface MatrixPaint {
  image: HTMLCanvasElement;
  scale: ColorScale;
  colormap: string;
  dark: boolean;
  /** the plot: where the window's n x n cells go on the matrix canvas */
  plot: Rect;
  /** the window of tokens shown (zoom) */
  win: { q0: number; k0: number; n: number };
  /** the selected query's row, or the selected key's column */
  token: number;
  column: boolean;
  hover: { q: number; k: number } | null;
  theme: Theme;
  /** the canvas' whole size */
  width: number;
  height: number;
  label: (token: number) => string;
}

/** The detail matrix (the zoom window of it) with its prefix separators, the selected row (column), the
 * hovered cell and a colour bar. Its axes are drawn beside it (`drawMatrixAxes`). */
export function drawMatrix(ctx: CanvasRenderingContext2D, d: AttentionData, m: MatrixPaint): void {
  const { plot: P, win, theme } = m;
  ctx.fillStyle = theme.bg;
  ctx.fillRect(0, 0, m.width, m.height);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(m.image, win.k0, win.q0, win.n, win.n, P.x, P.y, P.w, P.h);
  const cell = P.w / win.n;
  const xOf = (k: number) => P.x + (k - win.k0) * cell;
  const yOf = (q: number) => P.y + (q - win.q0) * cell;
  const inWin = (t: number, t0: number) => t >= t0 && t < t0 + win.n;
  ctx.save();
  ctx.beginPath();
  ctx.rect(P.x - 1, P.y - 1, P.w + 2, P.h + 2);
  ctx.clip();
  if (d.nPrefix) {
    ctx.strokeStyle = theme.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    if (inWin(d.nPrefix, win.q0)) {
      ctx.moveTo(P.x, yOf(d.nPrefix));
      ctx.lineTo(P.x + P.w, yOf(d.nPrefix));
    }
    if (inWin(d.nPrefix, win.k0)) {
      ctx.moveTo(xOf(d.nPrefix), P.y);
      ctx.lineTo(xOf(d.nPrefix), P.y + P.h);
    }
    ctx.stroke();
  }
  ctx.strokeStyle = theme.accent;
  ctx.lineWidth = 1;
  if (m.column) ctx.strokeRect(xOf(m.token), P.y, Math.max(1, cell), P.h);
  else ctx.strokeRect(P.x, yOf(m.token), P.w, Math.max(1, cell));
  const hm = m.hover;
  if (hm) {
    ctx.strokeStyle = theme.accent2;
    ctx.strokeRect(xOf(hm.k) - 1, yOf(hm.q) - 1, cell + 2, cell + 2);
  }
  ctx.restore();
  ctx.strokeStyle = theme.grid;
  ctx.strokeRect(P.x - 0.5, P.y - 0.5, P.w + 1, P.h + 1);
  drawColorbar(ctx, { x: P.x, y: P.y + P.h + 6, width: Math.max(40, P.w - 4), height: 10, colormap: m.colormap, scale: m.scale, theme, dark: m.dark });
}

/** The matrix' axes on canvases of their own: query ticks down the left (`left`, `leftW` wide, beside
 * the matrix canvas), key ticks along the top (`top`, `topH` tall, above it), each tick named by its
 * token. `m.plot` is where the plot sits on the matrix canvas. */
export function drawMatrixAxes(left: CanvasRenderingContext2D, top: CanvasRenderingContext2D, m: Pick<MatrixPaint, "plot" | "win" | "theme" | "label" | "height" | "width">, leftW: number, topH: number): void {
  const { plot: P, win, theme } = m;
  const cell = P.w / win.n;
  for (const [ctx, w, h] of [[left, leftW, m.height], [top, m.width, topH]] as const) {
    ctx.fillStyle = theme.bg;
    ctx.fillRect(0, 0, w, h);
    ctx.fillStyle = theme.muted;
    ctx.font = `9px ${theme.font}`;
  }
  left.textAlign = "right";
  left.textBaseline = "middle";
  for (const t of matrixTicks(win.q0, win.n)) left.fillText(m.label(t), leftW - 3, P.y + (t - win.q0) * cell + cell / 2, leftW - 4);
  top.textAlign = "left";
  top.textBaseline = "bottom";
  top.fillText("key →", P.x, topH - 13);
  let right = -Infinity;
  for (const t of matrixTicks(win.k0, win.n, 3)) {
    const text = m.label(t);
    const w = top.measureText(text).width;
    const x = Math.min(Math.max(P.x + (t - win.k0) * cell + cell / 2 - w / 2, 0), m.width - w);
    if (x < right + 4) continue;
    top.fillText(text, x, topH - 1);
    right = x + w;
  }
}

/** The detail matrix' canvas height for a plot `side` pixels square. */
export function matrixCanvasHeight(side: number): number {
  return side + 2 * MATRIX_PAD + MATRIX_COLORBAR_H;
}
