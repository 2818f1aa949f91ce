// Geometry of the patch grid drawn over an image: which token is under the pointer, where a token's
// patch is, how large the image is drawn. Prefix tokens (CLS, registers) come first in token order
// and have no patch.

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** The patch token under (x, y) inside the image rect `r`, or -1 outside it. */
export function patchTokenAt(r: Rect, x: number, y: number, rows: number, cols: number, nPrefix: number): number {
  if (x < r.x || y < r.y || x >= r.x + r.w || y >= r.y + r.h) return -1;
  const c = Math.min(cols - 1, Math.floor(((x - r.x) / r.w) * cols));
  const row = Math.min(rows - 1, Math.floor(((y - r.y) / r.h) * rows));
  return nPrefix + row * cols + c;
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
