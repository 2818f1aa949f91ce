// Values -> colour map -> pixels: the one loop behind every heat map, overlay and attention matrix. Pure
// (arrays in, arrays out), so vitest checks the exact RGBA; the caller puts the pixels on a canvas.
import { lutIndex } from "./colormap";

/** Where pixels go: an ImageData, or anything with its `data` (RGBA) and `width`. */
export interface PixelTarget {
  data: Uint8ClampedArray;
  width: number;
}

/** Value -> position in the colour map, 0..1 (e.g. a ColorScale's `map`). */
export type ToUnit = (v: number) => number;

/** A pixel's alpha from its value and its colour-map position (default: opaque). */
export type AlphaOf = (v: number, t: number) => number;

export type RGB = [number, number, number];

/** A rows x cols block of values, row-major from `start`, painted with its top-left pixel at (x, y). */
export interface Block {
  rows: number;
  cols: number;
  start?: number;
  x?: number;
  y?: number;
}

/** Paint a block of `values` into `target` through the colour table `table` (a 256-entry RGBA LUT). */
export function paintBlock(
  target: PixelTarget,
  values: ArrayLike<number>,
  block: Block,
  toUnit: ToUnit,
  table: Uint8ClampedArray,
  alpha?: AlphaOf,
): void {
  const { rows, cols } = block;
  const start = block.start ?? 0;
  const x0 = block.x ?? 0;
  const y0 = block.y ?? 0;
  const px = target.data;
  const w = target.width;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = values[start + r * cols + c];
      const t = toUnit(v);
      const k = lutIndex(t) * 4;
      const o = ((y0 + r) * w + x0 + c) * 4;
      px[o] = table[k];
      px[o + 1] = table[k + 1];
      px[o + 2] = table[k + 2];
      px[o + 3] = alpha ? alpha(v, t) : 255;
    }
  }
}

/** Copy RGB triples (`rgb[3 i ..]`, from index `block.start`) into `target` as opaque pixels. */
export function paintRgbBlock(target: PixelTarget, rgb: ArrayLike<number>, block: Block): void {
  const { rows, cols } = block;
  const start = block.start ?? 0;
  const x0 = block.x ?? 0;
  const y0 = block.y ?? 0;
  const px = target.data;
  const w = target.width;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = (start + r * cols + c) * 3;
      const o = ((y0 + r) * w + x0 + c) * 4;
      px[o] = rgb[i];
      px[o + 1] = rgb[i + 1];
      px[o + 2] = rgb[i + 2];
      px[o + 3] = 255;
    }
  }
}

/** Every value's colour as RGB triples (3 bytes a value). */
export function rgbOfValues(values: ArrayLike<number>, toUnit: ToUnit, table: Uint8ClampedArray): Uint8ClampedArray {
  const out = new Uint8ClampedArray(values.length * 3);
  for (let i = 0; i < values.length; i++) {
    const k = lutIndex(toUnit(values[i])) * 4;
    out[i * 3] = table[k];
    out[i * 3 + 1] = table[k + 1];
    out[i * 3 + 2] = table[k + 2];
  }
  return out;
}

/** The colour at `t` (0..1) of a colour table. */
export function lutRgb(table: Uint8ClampedArray, t: number): RGB {
  const k = lutIndex(t) * 4;
  return [table[k], table[k + 1], table[k + 2]];
}

/** A colour as CSS text for a canvas fill or an element's background. */
export function cssRgb(c: ArrayLike<number>): string {
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}
