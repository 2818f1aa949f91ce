// AttentionGrid data: the traits decoded once (patterns [B, L, H, T, T], uint8 with one float32 scale per
// row or float32; rollout [B, L, T, T]), then the values and colour scales of every thumbnail for one
// query. Pure (no DOM), so vitest covers it. Python computes every number; this only reads and scales.
import { decode, type EncodedArray, type NDArray } from "../shared/codec";
import { type ColorScale, type ScaleKind, formatValue, makeScale } from "../shared/scale";
import type { TraitSource } from "../shared/traits";
import type { Cell, Hit } from "./layout";
import type { AttentionGridTraits, Direction, Normalization } from "./traits";

export type { Direction, Normalization } from "./traits";

export class Stack {
  readonly values: NDArray;
  readonly scale: Float32Array | null;
  readonly B: number;
  readonly M: number;
  readonly T: number;

  /** `values`: [B, M, T, T] where M = L * H (patterns) or L (rollout); `scale`: [B, M, T] or null. */
  constructor(values: NDArray, scale: NDArray | null) {
    const s = values.shape;
    const T = s[s.length - 1];
    if (s[s.length - 2] !== T) throw new Error(`attention must be square, got [${s.join(", ")}]`);
    this.values = values;
    this.B = s[0];
    this.T = T;
    this.M = s.slice(1, -2).reduce((a, b) => a * b, 1);
    this.scale = scale ? (scale.data as Float32Array) : null;
    if (this.scale && this.scale.length !== this.B * this.M * T) throw new Error("scale does not match the patterns");
  }

  /** out[k] = A[b, m, token, k] (row) or out[q] = A[b, m, q, token] (column). */
  fill(out: Float32Array, b: number, m: number, token: number, direction: Direction): void {
    const T = this.T;
    const data = this.values.data;
    const mat = (b * this.M + m) * T;
    const sc = this.scale;
    if (direction === "row") {
      const base = (mat + token) * T;
      const s = sc ? sc[mat + token] : 1;
      for (let k = 0; k < T; k++) out[k] = data[base + k] * s;
    } else {
      for (let q = 0; q < T; q++) out[q] = data[(mat + q) * T + token] * (sc ? sc[mat + q] : 1);
    }
  }

  /** The full T x T matrix of (b, m) as floats. */
  matrix(b: number, m: number, out?: Float32Array): Float32Array {
    const T = this.T;
    const res = out ?? new Float32Array(T * T);
    const data = this.values.data;
    const mat = (b * this.M + m) * T;
    const sc = this.scale;
    for (let q = 0; q < T; q++) {
      const s = sc ? sc[mat + q] : 1;
      const base = (mat + q) * T;
      for (let k = 0; k < T; k++) res[q * T + k] = data[base + k] * s;
    }
    return res;
  }

  value(b: number, m: number, q: number, k: number): number {
    const T = this.T;
    const mat = (b * this.M + m) * T;
    return this.values.data[(mat + q) * T + k] * (this.scale ? this.scale[mat + q] : 1);
  }

  static from(values: unknown, scale: unknown): Stack | null {
    const v = decode(values as EncodedArray);
    if (!v) return null;
    const s = decode(scale as EncodedArray);
    return new Stack(v, s);
  }
}

export interface Pixels {
  data: Uint8Array;
  B: number;
  H: number;
  W: number;
  C: number;
}

export interface AttentionData {
  patterns: Stack;
  rollout: Stack | null;
  rows: number;
  cols: number;
  nPrefix: number;
  T: number;
  labels: string[];
  layers: number[];
  heads: number[];
  images: string[];
  pixels: Pixels | null;
  /** per-head summaries over the images, [L, H] each (null when the widget has none) */
  distance: Float32Array | null;
  entropy: Float32Array | null;
}

export function readAttention(model: TraitSource<AttentionGridTraits>): AttentionData {
  const patterns = Stack.from(model.get("patterns"), model.get("pattern_scale"));
  if (!patterns) throw new Error("no attention patterns in this widget");
  const rollout = Stack.from(model.get("rollout_patterns"), model.get("rollout_scale"));
  const [rows, cols] = (model.get("grid") as number[]) ?? [1, 1];
  const nPrefix = Number(model.get("n_prefix_tokens") ?? 0);
  const T = patterns.T;
  if (nPrefix + rows * cols !== T) throw new Error(`${T} tokens do not fit ${nPrefix} prefix + ${rows}x${cols} grid`);
  const layers = (model.get("layer_indices") as number[]) ?? [];
  const heads = (model.get("head_indices") as number[]) ?? [];
  const labels = ((model.get("token_labels") as string[]) ?? []).map(String);
  const images = ((model.get("image_labels") as string[]) ?? []).map(String);
  const img = decode(model.get("image_pixels") as EncodedArray);
  let pixels: Pixels | null = null;
  if (img) {
    const [B, H, W, C] = img.shape;
    pixels = { data: img.data as Uint8Array, B, H, W, C: C ?? 1 };
  }
  const table = (key: "head_distance" | "head_entropy") => {
    const a = decode(model.get(key) as EncodedArray);
    return a && a.data.length === layers.length * heads.length ? Float32Array.from(a.data) : null;
  };
  return { patterns, rollout, rows, cols, nPrefix, T, labels, layers, heads, images, pixels, distance: table("head_distance"), entropy: table("head_entropy") };
}

export function clampInt(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.round(v)));
}

/** The image drawn under the maps: its pixel size, or 16 px a patch when the widget has no image. */
export function imageShape(d: AttentionData): { imgH: number; imgW: number } {
  return { imgH: d.pixels?.H ?? d.rows * 16, imgW: d.pixels?.W ?? d.cols * 16 };
}

/** The pixels of image `b` ([H, W, C] bytes), or null without images. */
export function imagePixels(d: AttentionData, b: number): Uint8Array | null {
  if (!d.pixels) return null;
  const { data, H, W, C } = d.pixels;
  return data.subarray(b * H * W * C, (b + 1) * H * W * C);
}

/** Fill `out` ([cells, T]) with every cell's attention for `token` in direction `dir`, image `b`. */
export function fillCellValues(d: AttentionData, cells: readonly Cell[], out: Float32Array, b: number, token: number, dir: Direction): void {
  const T = d.T;
  const H = d.patterns.M / Math.max(1, d.layers.length);
  cells.forEach((cell, i) => {
    const row = out.subarray(i * T, (i + 1) * T);
    if (cell.kind === "head") d.patterns.fill(row, b, cell.row * H + cell.col, token, dir);
    else d.rollout!.fill(row, b, cell.col, token, dir);
  });
}

/**
 * One colour scale per cell: each cell its own ("head"), one per layer row ("layer"; the rollout row is
 * its own group), or one over everything ("global"; heads and rollout apart).
 */
export function cellScales(cells: readonly Cell[], values: Float32Array, T: number, kind: ScaleKind, pct: number, norm: Normalization): ColorScale[] {
  const n = cells.length;
  const scales = new Array<ColorScale>(n);
  const cellValues = (i: number) => values.subarray(i * T, (i + 1) * T);
  if (norm === "head") {
    for (let i = 0; i < n; i++) scales[i] = makeScale(kind, cellValues(i), pct);
    return scales;
  }
  const groups = new Map<string, number[]>();
  cells.forEach((cell, i) => {
    const key = norm === "global" ? cell.kind : `${cell.kind}:${cell.row}`;
    const g = groups.get(key) ?? [];
    g.push(i);
    groups.set(key, g);
  });
  for (const idx of groups.values()) {
    const all = new Float32Array(idx.length * T);
    idx.forEach((i, j) => all.set(cellValues(i), j * T));
    const s = makeScale(kind, all, pct);
    for (const i of idx) scales[i] = s;
  }
  return scales;
}

/** The colour bar's caption: which cells share the range, the scale (and its clip), the maximum. */
export function scaleLabel(scale: ColorScale, norm: Normalization, kind: ScaleKind, pct: number, layer: number, head: number): string {
  const scopeText = norm === "head" ? `L${layer} H${head}` : norm === "layer" ? `layer ${layer}` : "all heads";
  const scaleText = kind === "percentile" ? (scale.clipped ? `clipped at p${pct} = ${formatValue(scale.hi)}` : `p${pct} (no clip)`) : kind;
  return `${scopeText} · ${scaleText} · max ${formatValue(scale.max)}`;
}

export function tokenLabel(d: AttentionData | null, token: number): string {
  return d?.labels[token] ?? `token ${token}`;
}

/** The status line for a thumbnail under the pointer: the head (or rollout), its maximum, the hovered value. */
export function hoverText(d: AttentionData, hit: Hit, scale: ColorScale | undefined, value: number, query: number, column: boolean): string {
  const c = hit.cell;
  const name = c.kind === "head" ? `L${d.layers[c.row]} H${d.heads[c.col]}` : `rollout ≤L${d.layers[c.col]}`;
  let text = `${name}   max ${formatValue(scale?.max ?? 0)}`;
  if (hit.token >= 0) {
    const t = tokenLabel(d, hit.token);
    const q = tokenLabel(d, query);
    text += `   ${column ? `${t} → ${q}` : `${q} → ${t}`}: ${formatValue(value)}`;
  }
  return text;
}
