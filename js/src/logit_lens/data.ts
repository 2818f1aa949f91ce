// LogitLens data: decode the traits once, then read values for drawing. Pure (no DOM), so vitest
// covers it. Python computes every number (probabilities, entropy, KL, ranks); this only looks up.
import { decode, type EncodedArray, type NDArray } from "../shared/codec";
import type { TraitSource } from "../shared/traits";
import { OTHER, classColor, colourSlots, distinctNames, PALETTE } from "./layout";
import type { LogitLensTraits, Mode } from "./traits";

export type RGB = [number, number, number];

export type { Mode } from "./traits";
export const MODES: { value: Mode; label: string }[] = [
  { value: "top1", label: "top-1 class" },
  { value: "class_prob", label: "probability of class" },
  { value: "entropy", label: "entropy" },
  { value: "kl", label: "KL to last layer" },
  { value: "rank", label: "rank of final class" },
];

export interface LensData {
  L: number;
  T: number;
  K: number;
  rows: number;
  cols: number;
  nPrefix: number;
  layers: number[];
  tokenLabels: string[];
  classNames: string[];
  /** the words that tell the class names apart ("a photo of a cat" -> "cat"), for labels on patches */
  shortNames: string[];
  /** classes with a full probability map, in legend order */
  classIds: number[];
  /** the colour of each legend class: by position (classifier classes, most frequent first), or by the
   * class' text when the lens reads out against prompts (a prompt keeps its colour when others go) */
  colours: RGB[];
  maxEntropy: number;
  topIdx: ArrayLike<number>; // [L, T, K]
  topQ: ArrayLike<number>; // [L, T, K] uint8
  topScale: ArrayLike<number>; // [L, T]
  entropy: ArrayLike<number>; // [L, T]
  kl: ArrayLike<number>; // [L, T]
  rank: ArrayLike<number>; // [L, T]
  classQ: ArrayLike<number>; // [L, n, T]
  classScale: ArrayLike<number>; // [L, n]
  trackIdx: ArrayLike<number>; // [T, K]
  trackQ: ArrayLike<number>; // [T, K, L]
  trackScale: ArrayLike<number>; // [T]
  pixels: { data: Uint8Array; H: number; W: number; C: number } | null;
}

function need(arr: NDArray | null, name: string, dims: number): NDArray {
  if (!arr) throw new Error(`the lens has no ${name}`);
  if (arr.shape.length !== dims) throw new Error(`${name} must have ${dims} dimensions, got [${arr.shape.join(", ")}]`);
  return arr;
}

/** Decode the traits. `memory`: the palette slot of every prompt seen so far (kept by the view across
 * prompt edits, updated here), so that a prompt keeps its colour while it stays. */
export function readLens(model: TraitSource<LogitLensTraits>, memory?: Map<string, number>): LensData {
  const get = (k: keyof LogitLensTraits) => model.get(k);
  const dec = (k: keyof LogitLensTraits) => decode(get(k) as EncodedArray);
  const top = need(dec("top_indices"), "top_indices", 3);
  const [L, T, K] = top.shape;
  const topQ = need(dec("top_probs"), "top_probs", 3);
  const topScale = need(dec("top_scale"), "top_scale", 2);
  const entropy = need(dec("entropy"), "entropy", 2);
  const kl = need(dec("kl"), "kl", 2);
  const rank = need(dec("final_rank"), "final_rank", 2);
  const classQ = need(dec("class_probs"), "class_probs", 3);
  const classScale = need(dec("class_scale"), "class_scale", 2);
  const trackIdx = need(dec("track_indices"), "track_indices", 2);
  const trackQ = need(dec("track_probs"), "track_probs", 3);
  const trackScale = need(dec("track_scale"), "track_scale", 1);
  const [rows, cols] = ((get("grid") as number[]) ?? [1, 1]).map(Number);
  const nPrefix = Number(get("n_prefix_tokens") ?? 0);
  const frames = Math.max(1, Number(get("frames") ?? 1)); // a clip: token frames of rows x cols (./frames.ts)
  if (nPrefix + frames * rows * cols !== T) throw new Error(`${T} tokens do not fit ${nPrefix} prefix + ${frames}x${rows}x${cols} grid`);
  const img = decode(get("image_pixels") as EncodedArray);
  let pixels: LensData["pixels"] = null;
  if (img) {
    const [H, W, C] = img.shape;
    pixels = { data: img.data as Uint8Array, H, W, C: C ?? 1 };
  }
  const classIds = ((get("class_ids") as number[]) ?? []).map(Number);
  if (classQ.shape[1] !== classIds.length) throw new Error(`class_probs has ${classQ.shape[1]} classes for ${classIds.length} class ids`);
  const classNames = ((get("class_names") as string[]) ?? []).map(String);
  const byText = (((get("prompts") as string[]) ?? []).length ?? 0) > 0;
  let colours: RGB[];
  if (byText) {
    const names = classIds.map((c) => classNames[c] ?? `class ${c}`);
    const slots = colourSlots(names, memory);
    names.forEach((n, i) => memory?.set(n, slots[i]));
    colours = slots.map((s) => (s >= 0 ? PALETTE[s] : OTHER));
  } else colours = classIds.map((_, i) => classColor(i));
  return {
    L,
    T,
    K,
    rows,
    cols,
    nPrefix,
    layers: ((get("layer_indices") as number[]) ?? []).map(Number),
    tokenLabels: ((get("token_labels") as string[]) ?? []).map(String),
    classNames,
    shortNames: distinctNames(classNames),
    classIds,
    colours,
    maxEntropy: Number(get("max_entropy") ?? 0),
    topIdx: top.data,
    topQ: topQ.data,
    topScale: topScale.data,
    entropy: entropy.data,
    kl: kl.data,
    rank: rank.data,
    classQ: classQ.data,
    classScale: classScale.data,
    trackIdx: trackIdx.data,
    trackQ: trackQ.data,
    trackScale: trackScale.data,
    pixels,
  };
}

export function className(d: LensData, c: number): string {
  return d.classNames[c] ?? `class ${c}`;
}

/** The class' colour (legend, map, table, chart): OTHER for a class without one. */
export function colourOf(d: LensData, c: number): RGB {
  const pos = legendPos(d, c);
  return pos >= 0 ? d.colours[pos] ?? OTHER : OTHER;
}

/** The top-k (class, probability) of one token at one layer position. */
export function topAt(d: LensData, lp: number, token: number): { cls: number; prob: number }[] {
  const out: { cls: number; prob: number }[] = [];
  const base = (lp * d.T + token) * d.K;
  const s = d.topScale[lp * d.T + token];
  for (let k = 0; k < d.K; k++) out.push({ cls: d.topIdx[base + k], prob: d.topQ[base + k] * s });
  return out;
}

/** Top-1 class of every token at a layer position. */
export function top1(d: LensData, lp: number): Int32Array {
  const out = new Int32Array(d.T);
  for (let t = 0; t < d.T; t++) out[t] = d.topIdx[(lp * d.T + t) * d.K];
  return out;
}

/** Position of a class in the legend (class_ids), -1 if it has none. */
export function legendPos(d: LensData, cls: number): number {
  return d.classIds.indexOf(cls);
}

/** Probability of class_ids[pos] at every token of a layer position (dequantised). */
export function classProbs(d: LensData, lp: number, pos: number): Float32Array {
  const n = d.classIds.length;
  const out = new Float32Array(d.T);
  if (pos < 0 || pos >= n) return out;
  const s = d.classScale[lp * n + pos];
  const base = (lp * n + pos) * d.T;
  for (let t = 0; t < d.T; t++) out[t] = d.classQ[base + t] * s;
  return out;
}

/** The scalar of `mode` at every token of one layer position (top1: the top-1 probability). */
export function modeValues(d: LensData, mode: Mode, lp: number, targetPos: number): Float32Array {
  const out = new Float32Array(d.T);
  const o = lp * d.T;
  switch (mode) {
    case "class_prob":
      return classProbs(d, lp, targetPos);
    case "entropy":
      for (let t = 0; t < d.T; t++) out[t] = d.entropy[o + t];
      return out;
    case "kl":
      for (let t = 0; t < d.T; t++) out[t] = d.kl[o + t];
      return out;
    case "rank":
      for (let t = 0; t < d.T; t++) out[t] = d.rank[o + t];
      return out;
    default:
      for (let t = 0; t < d.T; t++) out[t] = d.topQ[(o + t) * d.K] * d.topScale[o + t];
      return out;
  }
}

/** Everything a mode's colour range must cover: one layer, or all layers ("global"). */
export function modeRangeValues(d: LensData, mode: Mode, lp: number, targetPos: number, global: boolean): Float32Array {
  if (!global) return modeValues(d, mode, lp, targetPos);
  const out = new Float32Array(d.L * d.T);
  for (let l = 0; l < d.L; l++) out.set(modeValues(d, mode, l, targetPos), l * d.T);
  return out;
}

/** How often each class is top-1 among the patch tokens at a layer position (for the legend). */
export function top1Counts(d: LensData, lp: number): Map<number, number> {
  const counts = new Map<number, number>();
  for (let t = d.nPrefix; t < d.T; t++) {
    const c = d.topIdx[(lp * d.T + t) * d.K];
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  return counts;
}

export interface Series {
  cls: number;
  values: Float32Array; // one per layer position
}

/** The token's final top-k classes through every layer (the line chart). */
export function trajectory(d: LensData, token: number): Series[] {
  const out: Series[] = [];
  const s = d.trackScale[token];
  for (let k = 0; k < d.K; k++) {
    const values = new Float32Array(d.L);
    const base = (token * d.K + k) * d.L;
    for (let l = 0; l < d.L; l++) values[l] = d.trackQ[base + l] * s;
    out.push({ cls: d.trackIdx[token * d.K + k], values });
  }
  return out;
}

/** Nearest shown layer position for a model layer index. */
export function layerPos(d: LensData, layer: number): number {
  const i = d.layers.indexOf(layer);
  if (i >= 0) return i;
  let best = 0;
  for (let j = 1; j < d.layers.length; j++) if (Math.abs(d.layers[j] - layer) < Math.abs(d.layers[best] - layer)) best = j;
  return best;
}

/** A short label for a patch: the class name cut to `max` characters, with an ellipsis. */
export function shortLabel(name: string, max = 6): string {
  const first = name.split(",")[0].trim();
  return first.length <= max ? first : `${first.slice(0, Math.max(1, max - 1))}…`;
}
