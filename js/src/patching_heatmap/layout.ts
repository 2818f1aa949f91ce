// Geometry of the PatchingHeatmap: the layer x column heatmap (prefix columns apart from the patch
// columns), the per-layer image maps with their prefix strip, and the label thinning. Pure: vitest covers it.
import type { Rect } from "../shared/patches";

export interface HeatLayout {
  /** left edge of column 0 and top edge of row 0 (room for the layer labels and the column labels) */
  x0: number;
  y0: number;
  cellW: number;
  cellH: number;
  /** gap between the prefix columns and the patch columns (0 without prefix columns) */
  gap: number;
  nRows: number;
  nCols: number;
  nPrefixCols: number;
  width: number;
  height: number;
}

export const HEAT_LEFT = 52;
export const HEAT_TOP = 20;
export const HEAT_BOTTOM = 34;
export const PREFIX_GAP = 8;

/** Pixels a cell would like to be wide: enough to see and point at one token. */
export const COMFORTABLE_CELL = 12;
/** The panel beside the heatmap (its CSS width and the gap): it stays beside it when there is room. */
export const PANEL_ROOM = 410;

/**
 * How wide to lay the heatmap out: wide enough for comfortable cells (so it grows with the token count),
 * at least `size` (the widget's size trait), and never wider than the room there is (`available`, the
 * widget's width; 0 when not known yet). With room for two columns, the panel keeps its place beside it.
 */
export function heatTarget(nCols: number, size: number, available: number): number {
  const wanted = Math.max(size, HEAT_LEFT + PREFIX_GAP + 8 + nCols * COMFORTABLE_CELL);
  if (!(available > 0)) return wanted;
  const room = available >= 2.2 * PANEL_ROOM + 100 ? available - PANEL_ROOM : available;
  return Math.max(160, Math.min(wanted, room));
}

/** Cells as wide as `targetWidth` allows (3..40 px); rows as tall as a few layers deserve (12..32 px). */
export function heatLayout(nRows: number, nCols: number, nPrefixCols: number, targetWidth: number): HeatLayout {
  const gap = nPrefixCols > 0 && nPrefixCols < nCols ? PREFIX_GAP : 0;
  const avail = Math.max(40, targetWidth - HEAT_LEFT - gap - 8);
  const cellW = Math.max(3, Math.min(40, Math.floor(avail / Math.max(1, nCols))));
  // few layers get tall rows (a strip of 4 rows stays about 120 px tall), many get at least 12 px each
  const cellH = Math.max(12, Math.min(32, Math.max(cellW, Math.floor(120 / Math.max(1, nRows)))));
  const width = HEAT_LEFT + nCols * cellW + gap + 8;
  const height = HEAT_TOP + nRows * cellH + HEAT_BOTTOM;
  return { x0: HEAT_LEFT, y0: HEAT_TOP, cellW, cellH, gap, nRows, nCols, nPrefixCols, width, height };
}

/** x of a column's left edge (patch columns shift right by the gap). */
export function colX(g: HeatLayout, col: number): number {
  return g.x0 + col * g.cellW + (col >= g.nPrefixCols ? g.gap : 0);
}

export function cellRect(g: HeatLayout, row: number, col: number): Rect {
  return { x: colX(g, col), y: g.y0 + row * g.cellH, w: g.cellW, h: g.cellH };
}

/** The cell under a point, or null (the gap and the margins belong to no cell). */
export function cellAtPoint(g: HeatLayout, x: number, y: number): { row: number; col: number } | null {
  const row = Math.floor((y - g.y0) / g.cellH);
  if (row < 0 || row >= g.nRows) return null;
  let col: number;
  const prefixEnd = g.x0 + g.nPrefixCols * g.cellW;
  if (x < g.x0) return null;
  if (x < prefixEnd) col = Math.floor((x - g.x0) / g.cellW);
  else if (x < prefixEnd + g.gap) return null;
  else col = g.nPrefixCols + Math.floor((x - prefixEnd - g.gap) / g.cellW);
  return col >= 0 && col < g.nCols ? { row, col } : null;
}

/** Every `step`-th column gets a label, so labels of `labelPx` pixels do not overlap. */
export function labelStep(cellW: number, labelPx: number): number {
  return Math.max(1, Math.ceil((labelPx + 4) / Math.max(1, cellW)));
}

export interface MapLayout {
  /** the image-shaped map */
  map: Rect;
  /** one square per prefix token, stacked right of the map */
  prefix: Rect[];
  width: number;
  height: number;
}

/** One layer's map: the image `w` x `h` and, apart on its right, a column of prefix-token cells. */
export function mapLayout(w: number, h: number, nPrefix: number): MapLayout {
  const side = Math.max(10, Math.min(18, Math.floor(h / Math.max(1, nPrefix)) - 2));
  const px = w + 6;
  const prefix = Array.from({ length: nPrefix }, (_, i) => ({ x: px, y: i * (side + 2), w: side, h: side }));
  return { map: { x: 0, y: 0, w, h }, prefix, width: nPrefix ? px + side : w, height: Math.max(h, nPrefix * (side + 2)) };
}

/** Which prefix cell a point is in, or -1. */
export function prefixAt(m: MapLayout, x: number, y: number): number {
  return m.prefix.findIndex((r) => x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h);
}
