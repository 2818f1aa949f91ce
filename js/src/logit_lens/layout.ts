// Geometry and colours of the LogitLens map. Pure: vitest covers it.
import type { Rect } from "../shared/patches";

export { type Rect, mapSize, patchRect, patchTokenAt } from "../shared/patches";

/** Categorical palette for the legend: the 20 colours of Tableau / matplotlib "tab20", strong ones first. */
export const PALETTE: [number, number, number][] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [188, 189, 34],
  [23, 190, 207],
  [127, 127, 127],
  [174, 199, 232],
  [255, 187, 120],
  [152, 223, 138],
  [255, 152, 150],
  [197, 176, 213],
  [196, 156, 148],
  [247, 182, 210],
  [219, 219, 141],
  [158, 218, 229],
  [57, 59, 121],
];
/** Colour of classes outside the palette ("other"). */
export const OTHER: [number, number, number] = [200, 200, 200];

/** Colour of the class at legend position `pos` (-1 or beyond the palette: OTHER). */
export function classColor(pos: number): [number, number, number] {
  return pos >= 0 && pos < PALETTE.length ? PALETTE[pos] : OTHER;
}

/** Text colour (black or white) that reads on a background colour. */
export function textOn(c: [number, number, number]): string {
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] > 140 ? "#000" : "#fff";
}

/** Next layer position for the play button (wraps around). */
export function nextLayerPos(pos: number, n: number): number {
  return n <= 0 ? 0 : (pos + 1) % n;
}

/** Line chart geometry: x of layer position i of n, y of value v in [0, top]. */
export function chartPoint(i: number, n: number, v: number, top: number, R: Rect): { x: number; y: number } {
  const x = n <= 1 ? R.x + R.w / 2 : R.x + (i * R.w) / (n - 1);
  const t = top > 0 ? Math.min(1, Math.max(0, v / top)) : 0;
  return { x, y: R.y + R.h - t * R.h };
}
