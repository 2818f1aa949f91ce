// PatchingHeatmap data: decode the traits once, then look values up for drawing. Pure (no DOM), so
// vitest covers it. Python computes every number (effects, predictions); this only indexes and scales.
import { decode, type EncodedArray, type NDArray } from "../shared/codec";
import type { ColorScale } from "../shared/scale";
import type { TraitSource } from "../shared/traits";
import type { By, PatchingHeatmapTraits, Selection } from "./traits";

export type { By, Selection } from "./traits";
export const BYS: By[] = ["position", "head", "head_position", "layer", "frame", "tube"];

/** Cell axes after the layer axis, as the engine orders them. */
export const CELL_AXES: Record<By, ("position" | "head" | "frame" | "tube")[]> = {
  position: ["position"],
  head: ["head"],
  head_position: ["position", "head"],
  layer: [],
  frame: ["frame"],
  tube: ["tube"],
};

/** Which `by` applies to which site (head needs a per-head site; frame and tube, a clip's position sets, any site). */
export const SITE_BYS: Record<string, By[]> = {
  resid_pre: ["position", "layer", "frame", "tube"],
  resid_mid: ["position", "layer", "frame", "tube"],
  attn_out: ["position", "layer", "frame", "tube"],
  mlp_out: ["position", "layer", "frame", "tube"],
  z: ["position", "head", "head_position", "layer", "frame", "tube"],
  pattern: ["position", "head", "head_position", "layer", "frame", "tube"],
};

export interface Pixels {
  data: Uint8Array;
  H: number;
  W: number;
  C: number;
}

export interface Top {
  cls: number;
  prob: number;
}

export interface PatchData {
  by: By;
  /** layers shown (model indices) */
  layers: number[];
  L: number;
  /** cell axes' sizes after the layer axis, and their product */
  cellShape: number[];
  nCells: number;
  values: ArrayLike<number>; // [L, nCells]
  T: number;
  H: number;
  rows: number;
  cols: number;
  nPrefix: number;
  /** token frames of a clip (1: an image); tokens are nPrefix + frames x rows x cols, frame-major */
  frames: number;
  tokenLabels: string[];
  headLabels: string[];
  classNames: string[];
  pixels: Pixels | null;
  corrupted: Pixels | null;
  /** every cell's patched top-k, when Python precomputed them */
  table: { indices: ArrayLike<number>; probs: ArrayLike<number>; K: number } | null;
  cleanTop: Top[];
  corruptedTop: Top[];
}

function pixelsOf(arr: NDArray | null): Pixels | null {
  if (!arr) return null;
  const [H, W, C] = arr.shape;
  return { data: arr.data as Uint8Array, H, W, C: C ?? 1 };
}

/** `{indices: [...], probs: [...]}` (JSON) as a list. */
export function topOf(obj: unknown): Top[] {
  const o = (obj ?? {}) as { indices?: unknown[]; probs?: unknown[] };
  const idx = Array.isArray(o.indices) ? o.indices : [];
  const p = Array.isArray(o.probs) ? o.probs : [];
  return idx.map((c, i) => ({ cls: Number(c), prob: Number(p[i] ?? 0) }));
}

export function readPatching(model: TraitSource<PatchingHeatmapTraits>): PatchData {
  const get = (k: keyof PatchingHeatmapTraits) => model.get(k);
  const dec = (k: keyof PatchingHeatmapTraits) => decode(get(k) as EncodedArray);
  const by = String(get("by") ?? "position") as By;
  if (!BYS.includes(by)) throw new Error(`unknown by=${by}`);
  const vals = dec("values");
  if (!vals) throw new Error("the widget holds no patching result");
  const axes = ((get("axes") as string[]) ?? []).map(String);
  const want = ["layer", ...CELL_AXES[by]];
  if (axes.join(",") !== want.join(",") || vals.shape.length !== want.length) {
    throw new Error(`by=${by} needs axes [${want.join(", ")}], got [${axes.join(", ")}] with shape [${vals.shape.join(", ")}]`);
  }
  const L = vals.shape[0];
  const cellShape = vals.shape.slice(1);
  const nCells = cellShape.reduce((a, b) => a * b, 1);
  const [rows, cols] = ((get("grid") as number[]) ?? [1, 1]).map(Number);
  const nPrefix = Number(get("n_prefix_tokens") ?? 0);
  const frames = Math.max(1, Number(get("frames") ?? 1));
  const tokenLabels = ((get("token_labels") as string[]) ?? []).map(String);
  const headLabels = ((get("head_labels") as string[]) ?? []).map(String);
  const posAxis = CELL_AXES[by].indexOf("position");
  const headAxis = CELL_AXES[by].indexOf("head");
  const T = posAxis >= 0 ? cellShape[posAxis] : nPrefix + frames * rows * cols;
  const H = headAxis >= 0 ? cellShape[headAxis] : headLabels.length;
  if (posAxis >= 0 && nPrefix + frames * rows * cols !== T) {
    throw new Error(`${T} tokens do not fit ${nPrefix} prefix + ${frames > 1 ? `${frames}x` : ""}${rows}x${cols} grid`);
  }
  if (by === "tube" && cellShape[0] !== rows * cols) throw new Error(`${cellShape[0]} tubes do not fit a ${rows}x${cols} grid`);
  const layers = ((get("layer_indices") as number[]) ?? []).map(Number);
  if (layers.length !== L) throw new Error(`${layers.length} layer indices for ${L} layers of values`);
  let table: PatchData["table"] = null;
  const ti = dec("cell_top_indices");
  const tp = dec("cell_top_probs");
  if (ti && tp && ti.shape[0] === L && ti.shape[1] === nCells && tp.shape.join() === ti.shape.join()) {
    table = { indices: ti.data, probs: tp.data, K: ti.shape[2] };
  }
  return {
    by,
    layers,
    L,
    cellShape,
    nCells,
    values: vals.data,
    T,
    H,
    rows,
    cols,
    nPrefix,
    frames,
    tokenLabels,
    headLabels,
    classNames: ((get("class_names") as string[]) ?? []).map(String),
    pixels: pixelsOf(dec("image_pixels")),
    corrupted: pixelsOf(dec("corrupted_pixels")),
    table,
    cleanTop: topOf(get("clean_top")),
    corruptedTop: topOf(get("corrupted_top")),
  };
}

export function className(d: PatchData, c: number): string {
  return d.classNames[c] ?? `class ${c}`;
}

export function tokenLabel(d: PatchData, t: number): string {
  return d.tokenLabels[t] ?? `token ${t}`;
}

export function headLabel(d: PatchData, h: number): string {
  return d.headLabels[h] ?? `H${h}`;
}

/** The name of a frame ("t2") or of a tube (its patch, "r1c3"). */
export function groupLabel(d: PatchData, by: By, i: number): string {
  return by === "frame" ? `t${i}` : `r${Math.floor(i / Math.max(1, d.cols))}c${i % Math.max(1, d.cols)}`;
}

/** The label of heatmap column `col`: a token, a head, a frame, a tube or the whole layer. */
export function columnLabel(d: PatchData, col: number): string {
  if (d.by === "head") return headLabel(d, col);
  if (d.by === "layer") return "layer";
  if (d.by === "frame" || d.by === "tube") return groupLabel(d, d.by, col);
  return tokenLabel(d, col);
}

/** Position of a model layer among the shown layers (-1: not shown). */
export function layerPos(d: PatchData, layer: number): number {
  return d.layers.indexOf(Number(layer));
}

/** (layer position, flat cell) of a selection, or null when it does not fit this result. */
export function cellOf(d: PatchData, sel: Selection | null | undefined): { lp: number; cell: number } | null {
  if (!sel) return null;
  const lp = layerPos(d, sel.layer);
  if (lp < 0) return null;
  let cell = 0;
  const axes = CELL_AXES[d.by];
  for (let i = 0; i < axes.length; i++) {
    const v = sel[axes[i]];
    if (v === undefined || !Number.isInteger(v) || v < 0 || v >= d.cellShape[i]) return null;
    cell = cell * d.cellShape[i] + v;
  }
  return { lp, cell };
}

/** The selection dict (what `selected` holds) of a layer position and flat cell. */
export function selectionOf(d: PatchData, lp: number, cell: number): Selection {
  const sel: Selection = { layer: d.layers[lp] };
  const axes = CELL_AXES[d.by];
  let rest = cell;
  for (let i = axes.length - 1; i >= 0; i--) {
    sel[axes[i]] = rest % d.cellShape[i];
    rest = Math.floor(rest / d.cellShape[i]);
  }
  return sel;
}

export function valueAt(d: PatchData, lp: number, cell: number): number {
  return d.values[lp * d.nCells + cell];
}

/** Columns of the main heatmap: tokens (prefix first), heads, or one column for whole layers. */
export function gridColumns(d: PatchData): { nCols: number; nPrefixCols: number } {
  if (d.by === "head") return { nCols: d.H, nPrefixCols: 0 };
  if (d.by === "layer") return { nCols: 1, nPrefixCols: 0 };
  if (d.by === "frame" || d.by === "tube") return { nCols: d.cellShape[0], nPrefixCols: 0 };
  return { nCols: d.T, nPrefixCols: d.nPrefix };
}

/** The flat cell of heatmap column `col` (for head_position: of head `head`). */
export function columnCell(d: PatchData, col: number, head: number): number {
  if (d.by === "head_position") return col * d.H + head;
  if (d.by === "layer") return 0;
  return col;
}

/** The heatmap column of a selection (and the head it shows for head_position). */
export function columnOf(d: PatchData, sel: Selection): { col: number; head: number } {
  if (d.by === "head") return { col: sel.head ?? 0, head: sel.head ?? 0 };
  if (d.by === "layer") return { col: 0, head: 0 };
  if (d.by === "frame") return { col: sel.frame ?? 0, head: 0 };
  if (d.by === "tube") return { col: sel.tube ?? 0, head: 0 };
  return { col: sel.position ?? 0, head: sel.head ?? 0 };
}

/** Whether this result has image-shaped maps (it is indexed by position, or by tube: one value per patch). */
export function hasMaps(d: PatchData): boolean {
  return d.by === "position" || d.by === "head_position" || d.by === "tube";
}

/** Effects of every token at one layer position (for head_position: of one head): [T]. */
export function tokenValues(d: PatchData, lp: number, head: number): Float32Array {
  const out = new Float32Array(d.T);
  for (let t = 0; t < d.T; t++) out[t] = valueAt(d, lp, columnCell(d, t, head));
  return out;
}

/** A colour scale centred at 0: symmetric over |values| ("global") or fixed to [-1, 1] ("unit"). */
export function centredScale(values: ArrayLike<number>, normalization: string): ColorScale {
  let top = 0;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]);
    if (a > top) top = a;
  }
  const m = normalization === "unit" ? 1 : top > 0 ? top : 1;
  return {
    kind: "linear",
    lo: -m,
    hi: m,
    max: top,
    clipped: top > m,
    map: (v: number) => (Number.isNaN(v) ? 0.5 : Math.min(1, Math.max(0, 0.5 + v / (2 * m)))),
  };
}

/**
 * The patched run's top-k for a cell: from the precomputed table, else from `selected_top` (computed in
 * the kernel for the selected cell) when it is for this cell, else null.
 */
export function patchedTop(d: PatchData, lp: number, cell: number, selectedTop: unknown): Top[] | null {
  if (d.table) {
    const { indices, probs, K } = d.table;
    const base = (lp * d.nCells + cell) * K;
    const out: Top[] = [];
    for (let k = 0; k < K; k++) out.push({ cls: indices[base + k], prob: probs[base + k] });
    return out;
  }
  const st = (selectedTop ?? {}) as { layer?: number; cell?: number };
  if (st.layer === lp && st.cell === cell) return topOf(selectedTop);
  return null;
}

/** A short description of a cell: "layer 2 · r3c4", "layer 1 · H3", "layer 0 · CLS · H2", "layer 3". */
export function cellTitle(d: PatchData, sel: Selection): string {
  const parts = [`layer ${sel.layer}`];
  if (sel.position !== undefined) parts.push(tokenLabel(d, sel.position));
  if (sel.head !== undefined) parts.push(headLabel(d, sel.head));
  if (sel.frame !== undefined) parts.push(`frame ${groupLabel(d, "frame", sel.frame)}`);
  if (sel.tube !== undefined) parts.push(`tube ${groupLabel(d, "tube", sel.tube)}`);
  return parts.join(" · ");
}

/** Add or remove a patch from a painted set; returns a sorted copy. */
export function paintPatch(painted: readonly number[], patch: number, on: boolean): number[] {
  const set = new Set(painted);
  if (on) set.add(patch);
  else set.delete(patch);
  return [...set].sort((a, b) => a - b);
}
