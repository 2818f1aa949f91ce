// FeatureGallery geometry: strips of square thumbnails with a caption line under each, and where each
// shot went (for hit tests). Pure: vitest covers it.
import type { Rect } from "../shared/patches";
import type { Shot } from "./data";

export type { Rect } from "../shared/patches";

/** A shot as drawn: its thumbnail's rect in the canvas. */
export interface Placed {
  rect: Rect;
  shot: Shot;
}

/** Where `n` square thumbnails of side `size` go, `perRow` to a row, with a caption line under each. */
export function stripRects(n: number, size: number, perRow: number, gap = 4, caption = 14): Rect[] {
  const out: Rect[] = [];
  const k = Math.max(1, perRow);
  for (let i = 0; i < n; i++) {
    const r = Math.floor(i / k);
    const c = i % k;
    out.push({ x: c * (size + gap), y: r * (size + gap + caption), w: size, h: size });
  }
  return out;
}

export function stripSize(n: number, size: number, perRow: number, gap = 4, caption = 14): { w: number; h: number } {
  const k = Math.max(1, Math.min(perRow, n));
  const rows = Math.max(1, Math.ceil(n / Math.max(1, perRow)));
  return { w: k * (size + gap) - gap, h: rows * (size + gap + caption) - gap };
}
