// AttentionGrid painting: the grid of thumbnails (grey image, attention over it, prefix cells), the query
// panel, the colour bars and the detail view's matrix and image. Functions of data, layout and a context;
// canvas text only (never parsed as HTML).
import { scratch, sizeCanvas, strokePatchGrid } from "../shared/canvas";
import { drawColorbar } from "../shared/colorbar";
import { drawImageOrGrey, outlinePatch, placeholderGrey } from "../shared/marks";
import { type Rect, patchRect } from "../shared/patches";
import { cssRgb, lutRgb, paintBlock } from "../shared/raster";
import type { ColorScale } from "../shared/scale";
import type { Theme } from "../shared/theme";
import type { AttentionData } from "./data";
import { type Cell, type GridLayout, MATRIX_COLORBAR_H, MATRIX_PAD } from "./layout";

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
export function drawQueryPanel(ctx: CanvasRenderingContext2D, d: AttentionData, R: Rect, image: HTMLCanvasElement | null, token: number, theme: Theme): void {
  drawImageOrGrey(ctx, image, { x: 0, y: 0, w: R.w, h: R.h }, greyOf(theme));
  strokePatchGrid(ctx, R.w, R.h, d.rows, d.cols, "rgba(255,255,255,0.18)");
  const pr = patchRect(R, token, d.rows, d.cols, d.nPrefix);
  if (pr) outlinePatch(ctx, pr, theme.accent);
}

/** The colour bar under the query panel (blank without a selected head). */
export function drawPanelColorbar(canvas: HTMLCanvasElement, w: number, shown: { scale: ColorScale; label: string } | null, colormap: string, theme: Theme): void {
  const { ctx } = sizeCanvas(canvas, w, 58);
  ctx.fillStyle = theme.bg;
  ctx.fillRect(0, 0, w, 58);
  if (!shown) return;
  drawColorbar(ctx, { x: 6, y: 6, width: w - 12, height: 12, colormap, scale: shown.scale, theme, label: shown.label });
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
  size: number;
  /** the selected query's row, or the selected key's column */
  token: number;
  column: boolean;
  hover: { q: number; k: number } | null;
  theme: Theme;
}

/** The detail matrix with its prefix separators, the selected row (column), the hovered cell and a colour bar. */
export function drawMatrix(ctx: CanvasRenderingContext2D, d: AttentionData, m: MatrixPaint): void {
  const { size, theme } = m;
  const pad = MATRIX_PAD;
  ctx.fillStyle = theme.bg;
  ctx.fillRect(0, 0, size + 2 * pad, size + 2 * pad + MATRIX_COLORBAR_H);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(m.image, pad, pad, size, size);
  const cell = size / d.T;
  if (d.nPrefix) {
    ctx.strokeStyle = theme.grid;
    ctx.lineWidth = 1;
    const p = pad + d.nPrefix * cell;
    ctx.beginPath();
    ctx.moveTo(pad, p);
    ctx.lineTo(pad + size, p);
    ctx.moveTo(p, pad);
    ctx.lineTo(p, pad + size);
    ctx.stroke();
  }
  ctx.strokeStyle = theme.accent;
  ctx.lineWidth = 1;
  if (m.column) ctx.strokeRect(pad + m.token * cell, pad, Math.max(1, cell), size);
  else ctx.strokeRect(pad, pad + m.token * cell, size, Math.max(1, cell));
  const hm = m.hover;
  if (hm) {
    ctx.strokeStyle = theme.accent2;
    ctx.strokeRect(pad + hm.k * cell - 1, pad + hm.q * cell - 1, cell + 2, cell + 2);
  }
  drawColorbar(ctx, { x: pad + 2, y: pad + size + 6, width: Math.min(size - 4, 240), height: 10, colormap: m.colormap, scale: m.scale, theme });
}

/** The detail view's image: the hovered cell's query patch (accent) and key patch (accent2), else the query's. */
export function drawDetailImage(ctx: CanvasRenderingContext2D, d: AttentionData, R: Rect, image: HTMLCanvasElement | null, token: number, hover: { q: number; k: number } | null, theme: Theme): void {
  drawImageOrGrey(ctx, image, R, greyOf(theme));
  const outline = (t: number, color: string) => {
    const pr = patchRect(R, t, d.rows, d.cols, d.nPrefix);
    if (pr) outlinePatch(ctx, pr, color);
  };
  outline(hover ? hover.q : token, theme.accent);
  if (hover) outline(hover.k, theme.accent2);
}
