// Geometry of the patch grid drawn over an image: which cell or token is under the pointer, where a
// token's patch is, how large the image is drawn, where the arrow keys move. Prefix tokens (CLS,
// registers) come first in token order and have no patch.

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Whether (x, y) is inside `r` (left and top edges in, right and bottom edges out). */
export function inRect(r: Rect, x: number, y: number): boolean {
  return x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h;
}

/** Row and column of the rows x cols grid spread over `r` under (x, y), or null outside `r`. */
export function gridCellAt(r: Rect, x: number, y: number, rows: number, cols: number): { row: number; col: number } | null {
  if (!inRect(r, x, y)) return null;
  return {
    row: Math.min(rows - 1, Math.floor(((y - r.y) / r.h) * rows)),
    col: Math.min(cols - 1, Math.floor(((x - r.x) / r.w) * cols)),
  };
}

/** The patch token under (x, y) inside the image rect `r`, or -1 outside it. */
export function patchTokenAt(r: Rect, x: number, y: number, rows: number, cols: number, nPrefix: number): number {
  const cell = gridCellAt(r, x, y, rows, cols);
  return cell ? nPrefix + cell.row * cols + cell.col : -1;
}

/** The rectangle of a token's patch within the image rect `r`, or null for a prefix token. */
export function patchRect(r: Rect, token: number, rows: number, cols: number, nPrefix: number): Rect | null {
  const p = token - nPrefix;
  if (p < 0 || p >= rows * cols) return null;
  const row = Math.floor(p / cols);
  const c = p % cols;
  return { x: r.x + (c * r.w) / cols, y: r.y + (row * r.h) / rows, w: r.w / cols, h: r.h / rows };
}

/** Drawn image size: the longer side is `size` CSS pixels, keeping the image's aspect ratio. */
export function mapSize(size: number, imgH: number, imgW: number): { w: number; h: number } {
  const s = Math.max(64, Math.round(size));
  if (imgW >= imgH) return { w: s, h: Math.max(16, Math.round((s * imgH) / imgW)) };
  return { w: Math.max(16, Math.round((s * imgW) / imgH)), h: s };
}

/** The cell an arrow key moves (row, col) to in a rows x cols grid, clamped at its edges; null for any other key. */
export function arrowCell(row: number, col: number, key: string, rows: number, cols: number): { row: number; col: number } | null {
  if (key === "ArrowLeft") return { row, col: Math.max(0, col - 1) };
  if (key === "ArrowRight") return { row, col: Math.min(cols - 1, col + 1) };
  if (key === "ArrowUp") return { row: Math.max(0, row - 1), col };
  if (key === "ArrowDown") return { row: Math.min(rows - 1, row + 1), col };
  return null;
}

/**
 * The token an arrow key moves a selected patch token to (clamped at the grid's edges), or null for any
 * other key. From a prefix token the first step starts at the centre patch.
 */
export function arrowStep(token: number, key: string, rows: number, cols: number, nPrefix: number): number | null {
  const p = token - nPrefix;
  const r = p >= 0 ? Math.floor(p / cols) : Math.floor(rows / 2);
  const c = p >= 0 ? p % cols : Math.floor(cols / 2);
  const next = arrowCell(r, c, key, rows, cols);
  return next ? nPrefix + next.row * cols + next.col : null;
}
