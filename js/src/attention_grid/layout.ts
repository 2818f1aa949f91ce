// Pure geometry of the AttentionGrid view: where each thumbnail, prefix cell and label goes, and
// what is under a pointer. No DOM here, so it is unit-tested directly.
import { type Rect, patchTokenAt } from "../shared/patches";

export { type Rect, patchRect, patchTokenAt } from "../shared/patches";

export interface GridSpec {
  /** Layers shown (rows of thumbnails). */
  nLayers: number;
  /** Heads shown (columns). */
  nHeads: number;
  /** Cells of the rollout row (0 = no rollout row). */
  nRollout: number;
  /** Thumbnail size in CSS pixels. */
  thumbW: number;
  thumbH: number;
  /** Prefix tokens (CLS, registers): each thumbnail gets a strip of this many cells above it. */
  nPrefix: number;
  gap?: number;
  labelW?: number;
  headerH?: number;
  /** Height of the summary bar under each head's thumbnail (0: none). */
  barH?: number;
  /** Per layer row, the head positions in display order (default: in order). */
  order?: number[][];
}

export interface Cell {
  kind: "head" | "rollout";
  /** Position in the shown layers (row) and heads (column); rollout cells use `col` only. */
  row: number;
  col: number;
  /** The image part of the thumbnail. */
  thumb: Rect;
  /** The first prefix cell; the i-th is at x + i * size. Width 0 when nPrefix is 0. */
  prefix: Rect;
  /** The summary bar under the thumbnail (height 0 without one). */
  bar: Rect;
}

export interface GridLayout {
  spec: Required<Omit<GridSpec, "order">>;
  width: number;
  height: number;
  prefixSize: number;
  cells: Cell[];
  /** y of the head labels row, and of the rollout row's labels (or -1). */
  headerY: number;
  rolloutHeaderY: number;
  /** x of each column's centre (for labels). */
  colCentres: number[];
  /** y of each layer row's centre. */
  rowCentres: number[];
  rolloutCentreY: number;
}

export function prefixCellSize(thumbW: number, nPrefix: number): number {
  if (nPrefix <= 0) return 0;
  return Math.max(4, Math.min(10, Math.floor(thumbW / nPrefix)));
}

export function computeGridLayout(input: GridSpec): GridLayout {
  const { order, ...rest } = input;
  const spec: Required<Omit<GridSpec, "order">> = { gap: 6, labelW: 34, headerH: 16, barH: 0, ...rest };
  const { nLayers, nHeads, nRollout, thumbW, thumbH, nPrefix, gap, labelW, headerH, barH } = spec;
  const ps = prefixCellSize(thumbW, nPrefix);
  const strip = nPrefix > 0 ? ps + 2 : 0;
  const bar = barH > 0 ? barH + 1 : 0;
  const cellH = strip + thumbH + bar;
  const nCols = Math.max(nHeads, nRollout);
  const colX = (c: number) => labelW + c * (thumbW + gap);
  const cells: Cell[] = [];
  const rowCentres: number[] = [];
  let y = headerH;
  for (let r = 0; r < nLayers; r++) {
    const rowOrder = order?.[r] ?? Array.from({ length: nHeads }, (_, c) => c);
    rowOrder.forEach((c, slot) => {
      cells.push({
        kind: "head",
        row: r,
        col: c,
        thumb: { x: colX(slot), y: y + strip, w: thumbW, h: thumbH },
        prefix: { x: colX(slot), y, w: ps, h: ps },
        bar: { x: colX(slot), y: y + strip + thumbH + 1, w: thumbW, h: bar ? barH : 0 },
      });
    });
    rowCentres.push(y + strip + thumbH / 2);
    y += cellH + gap;
  }
  let rolloutHeaderY = -1;
  let rolloutCentreY = -1;
  if (nRollout > 0) {
    rolloutHeaderY = y + 2;
    y += headerH + 2;
    for (let c = 0; c < nRollout; c++) {
      cells.push({
        kind: "rollout",
        row: -1,
        col: c,
        thumb: { x: colX(c), y: y + strip, w: thumbW, h: thumbH },
        prefix: { x: colX(c), y, w: ps, h: ps },
        bar: { x: colX(c), y: y + strip + thumbH, w: thumbW, h: 0 },
      });
    }
    rolloutCentreY = y + strip + thumbH / 2;
    y += cellH + gap;
  }
  const colCentres = Array.from({ length: nCols }, (_, c) => colX(c) + thumbW / 2);
  return {
    spec,
    width: labelW + nCols * (thumbW + gap),
    height: y,
    prefixSize: ps,
    cells,
    headerY: 0,
    rolloutHeaderY,
    colCentres,
    rowCentres,
    rolloutCentreY,
  };
}

export interface Hit {
  cell: Cell;
  /** Token under the pointer (a patch or a prefix cell), or -1 for the cell's frame. */
  token: number;
}

export function hitTest(layout: GridLayout, x: number, y: number, rows: number, cols: number): Hit | null {
  const n = layout.spec.nPrefix;
  for (const cell of layout.cells) {
    const t = patchTokenAt(cell.thumb, x, y, rows, cols, n);
    if (t >= 0) return { cell, token: t };
    if (n > 0 && y >= cell.prefix.y && y < cell.prefix.y + cell.prefix.h) {
      const i = Math.floor((x - cell.prefix.x) / layout.prefixSize);
      if (x >= cell.prefix.x && i < n) return { cell, token: i };
    }
    // the gap between strip and thumb, and the summary bar, still belong to the cell
    const inColumn = x >= cell.thumb.x && x < cell.thumb.x + cell.thumb.w;
    if (inColumn && ((y >= cell.prefix.y && y < cell.thumb.y) || (cell.bar.h > 0 && y >= cell.bar.y && y < cell.bar.y + cell.bar.h))) {
      return { cell, token: -1 };
    }
  }
  return null;
}

/** Size of the thumbnail for an image of `imgH` x `imgW` at a target width. */
export function thumbSize(target: number, imgH: number, imgW: number): { w: number; h: number } {
  const w = Math.max(8, Math.round(target));
  const h = Math.max(8, Math.round((target * imgH) / Math.max(1, imgW)));
  return { w, h };
}

/** The query panel: 3 thumbnails wide, 160..256 CSS pixels, the image's aspect ratio. */
export function queryPanelRect(thumbW: number, imgH: number, imgW: number): Rect {
  const w = Math.max(160, Math.min(256, thumbW * 3));
  return { x: 0, y: 0, w, h: Math.round((w * imgH) / imgW) };
}

/** The thumbnail width that fits `nCols` thumbnails (and the layer labels) into `avail` CSS pixels: the
 * requested `target` when it fits, else smaller, down to `min`. */
export function fitThumbWidth(avail: number, nCols: number, target: number, min = 16, labelW = 34, gap = 6): number {
  if (!(avail > 0) || nCols <= 0) return target;
  const fit = Math.floor((avail - labelW) / nCols - gap);
  return Math.max(min, Math.min(target, fit));
}

/** Where the grid goes in a widget `avail` pixels wide, beside a side column `side` wide (`gap` between):
 * beside it when thumbnails at least `min` wide fit there, else below it, over the whole width. */
export function placeGrid(avail: number, side: number, nCols: number, target: number, min = 28, gap = 16): { thumbW: number; beside: boolean } {
  const beside = fitThumbWidth(avail - side - gap, nCols, target, 1);
  if (beside >= Math.min(min, target)) return { thumbW: beside, beside: true };
  return { thumbW: fitThumbWidth(avail, nCols, target, 12), beside: false };
}

export const MATRIX_PAD = 4;
export const MATRIX_COLORBAR_H = 44;
/** Margins of the detail matrix: the query tick labels on the left, the key tick labels above. */
export const MATRIX_LEFT = 38;
export const MATRIX_TOP = 28;
export const ZOOMS = [1, 2, 4, 8, 16] as const;

/** The tokens the detail matrix shows at `zoom`: `n` per side from (q0, k0), centred on (q, k) where the
 * matrix edges allow. Zoom 1 is the whole T x T matrix. */
export function matrixWindow(T: number, zoom: number, q: number, k: number): { q0: number; k0: number; n: number } {
  const n = Math.max(1, Math.min(T, Math.ceil(T / Math.max(1, zoom))));
  const start = (c: number) => Math.max(0, Math.min(T - n, Math.round(c - n / 2)));
  return { q0: start(q), k0: start(k), n };
}

/** Tick positions (token indices) along a window of `n` tokens from `t0`: its first token, then the
 * multiples of a round step (1, 2, 5, 10, 20, 25, 50, ...) giving about `count` ticks. */
export function matrixTicks(t0: number, n: number, count = 4): number[] {
  const raw = n / Math.max(1, count);
  const nice = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000].find((s) => s >= raw) ?? Math.ceil(raw);
  const out = [t0];
  for (let t = Math.ceil((t0 + 1) / nice) * nice; t < t0 + n; t += nice) if (t - t0 >= nice / 2) out.push(t);
  return out;
}
