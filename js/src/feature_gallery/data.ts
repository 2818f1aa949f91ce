// FeatureGallery data: decode the traits, order and filter the feature list, look values up. Pure (no
// DOM), so vitest covers it. Python computes every statistic; this only sorts, filters and reads.
import { decode, type EncodedArray, type NDArray } from "../shared/codec";
import type { TraitSource } from "../shared/traits";
import type { FeatureGalleryTraits, PatchResult, SortBy } from "./traits";

export type { SortBy } from "./traits";

type Source = TraitSource<FeatureGalleryTraits>;
type Key = keyof FeatureGalleryTraits;
export const SORTS: { value: SortBy; label: string }[] = [
  { value: "push", label: "push (largest class effect)" },
  { value: "frequency", label: "firing frequency" },
  { value: "mean", label: "mean activation" },
  { value: "max", label: "max activation" },
  { value: "index", label: "feature index" },
];

export interface GalleryIndex {
  ids: Int32Array | number[];
  /** position in the index of a feature id */
  pos: Map<number, number>;
  frequency: ArrayLike<number>;
  mean: ArrayLike<number>;
  max: ArrayLike<number>;
  /** the largest direct effect on a class logit (zeros when the page has none) */
  push: ArrayLike<number>;
  topClass: ArrayLike<number>; // [n, 3]
  classNames: string[];
  dSae: number;
}

/** One image shown with a feature's activation map over it. */
export interface Shot {
  image: number; // position in the image pool
  value: number; // the feature's largest activation in the image
  map: Float32Array; // activation at every token of the image
}

export interface Detail {
  top: Shot[];
  quantiles: { shots: Shot[]; low: number; high: number }[];
  topEffects: { cls: number; value: number }[];
  bottomEffects: { cls: number; value: number }[];
}

const dec = (m: Source, k: Key): NDArray | null => decode(m.get(k) as EncodedArray);

export function readIndex(m: Source): GalleryIndex {
  const ids = dec(m, "feature_ids");
  const n = ids ? ids.shape[0] : 0;
  const arr = (k: Key, width = 1): ArrayLike<number> => {
    const a = dec(m, k);
    if (!a && n === 0) return new Float32Array(0);
    if (!a || a.data.length !== n * width) throw new Error(`${k} does not have one entry per listed feature`);
    return a.data;
  };
  const idList = ids ? (ids.data as Int32Array) : new Int32Array(0);
  const pos = new Map<number, number>();
  idList.forEach((f, i) => pos.set(f, i));
  return {
    ids: idList,
    pos,
    frequency: arr("frequency"),
    mean: arr("mean_activation"),
    max: arr("max_activation"),
    push: m.get("effect_strength") ? arr("effect_strength") : new Float32Array(n),
    topClass: arr("top_class", 3),
    classNames: ((m.get("class_names") as string[]) ?? []).map(String),
    dSae: Number(m.get("d_sae") ?? n),
  };
}

export function className(ix: GalleryIndex, c: number): string {
  return c >= 0 && c < ix.classNames.length ? ix.classNames[c] : c >= 0 ? `class ${c}` : "";
}

/** The (up to 3) classes with the largest effect of the feature at index position `i`. */
export function topClasses(ix: GalleryIndex, i: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < 3; k++) {
    const c = ix.topClass[i * 3 + k];
    if (c >= 0) out.push(c);
  }
  return out;
}

export interface ListOptions {
  sortBy: SortBy;
  descending: boolean;
  query: string;
  hideDead: boolean;
}

/**
 * Feature ids in list order: filtered (a number matches that feature index; text matches the names of
 * a feature's top classes, case-insensitively; dead features hidden on request), then sorted, ties by
 * feature index.
 */
export function listOrder(ix: GalleryIndex, o: ListOptions): number[] {
  const q = o.query.trim().toLowerCase();
  const asIndex = /^#?\d+$/.test(q) ? Number(q.replace("#", "")) : null;
  const keep: number[] = [];
  for (let i = 0; i < ix.ids.length; i++) {
    const f = ix.ids[i];
    if (asIndex !== null) {
      if (f === asIndex) keep.push(i);
      continue;
    }
    if (o.hideDead && !(ix.frequency[i] > 0)) continue;
    if (q && !topClasses(ix, i).some((c) => className(ix, c).toLowerCase().includes(q))) continue;
    keep.push(i);
  }
  const keys: Record<SortBy, ArrayLike<number>> = { push: ix.push, frequency: ix.frequency, mean: ix.mean, max: ix.max, index: ix.ids };
  const key = keys[o.sortBy] ?? ix.frequency;
  const sign = o.descending ? -1 : 1;
  keep.sort((a, b) => sign * (key[a] - key[b]) || ix.ids[a] - ix.ids[b]);
  return keep.map((i) => ix.ids[i]);
}

export function pageCount(n: number, size: number): number {
  return Math.max(1, Math.ceil(n / Math.max(1, size)));
}

/** The ids on page `page` (clamped to the pages there are). */
export function pageOf(order: number[], page: number, size: number): { ids: number[]; page: number } {
  const s = Math.max(1, size);
  const p = Math.min(Math.max(0, page), pageCount(order.length, s) - 1);
  return { ids: order.slice(p * s, p * s + s), page: p };
}

function shots(images: NDArray | null, values: NDArray | null, maps: NDArray | null, scale: NDArray | null, row: number[]): Shot[] {
  // row: the leading indices of one group of shots, e.g. [n] for [n, K] arrays, [n, g] for [n, Q, S]
  if (!images || !values || !maps || !scale) return [];
  const nShots = images.shape[images.shape.length - 1];
  const T = maps.shape[maps.shape.length - 1];
  let base = 0;
  for (let d = 0; d < row.length; d++) base = base * images.shape[d] + row[d];
  const out: Shot[] = [];
  for (let j = 0; j < nShots; j++) {
    const at = base * nShots + j;
    const img = images.data[at];
    if (img < 0) continue;
    const s = scale.data[at];
    const map = new Float32Array(T);
    for (let t = 0; t < T; t++) map[t] = maps.data[at * T + t] * s;
    out.push({ image: img, value: values.data[at], map });
  }
  return out;
}

/** The card of a feature (its top images), or null when the view does not hold it (yet). */
export function cardShots(m: Source, feature: number): Shot[] | null {
  const n = ((m.get("card_features") as number[]) ?? []).indexOf(feature);
  if (n < 0) return null;
  return shots(dec(m, "card_images"), dec(m, "card_values"), dec(m, "card_maps"), dec(m, "card_map_scale"), [n]);
}

/** The detail of a feature, or null when the view does not hold it (yet). */
export function readDetail(m: Source, feature: number): Detail | null {
  const n = ((m.get("detail_features") as number[]) ?? []).indexOf(feature);
  if (n < 0) return null;
  const top = shots(dec(m, "detail_images"), dec(m, "detail_values"), dec(m, "detail_maps"), dec(m, "detail_map_scale"), [n]);
  const qi = dec(m, "quantile_images");
  const qv = dec(m, "quantile_values");
  const qm = dec(m, "quantile_maps");
  const qs = dec(m, "quantile_map_scale");
  const quantiles: Detail["quantiles"] = [];
  for (let g = 0; g < (qi ? qi.shape[1] : 0); g++) {
    const s = shots(qi, qv, qm, qs, [n, g]);
    if (!s.length) continue;
    let low = Infinity;
    let high = -Infinity;
    for (const x of s) {
      low = Math.min(low, x.value);
      high = Math.max(high, x.value);
    }
    quantiles.push({ shots: s, low, high });
  }
  const ec = dec(m, "effect_classes");
  const ev = dec(m, "effect_values");
  const effects = (side: number) => {
    const out: { cls: number; value: number }[] = [];
    if (!ec || !ev) return out;
    const E = ec.shape[2];
    for (let e = 0; e < E; e++) {
      const at = (n * 2 + side) * E + e;
      if (ec.data[at] >= 0) out.push({ cls: ec.data[at], value: ev.data[at] });
    }
    return out;
  };
  return { top, quantiles, topEffects: effects(0), bottomEffects: effects(1) };
}

export interface PatchFeatures {
  features: number[];
  values: number[];
}

/** Active features of a token of an image (by image id), from the saved table or the kernel's answer. */
export function patchFeatures(m: Source, imageId: number, token: number): PatchFeatures | null {
  const r = (m.get("patch_result") as PatchResult) ?? {};
  if (r.image === imageId && r.token === token && r.features && r.values) return { features: r.features.map(Number), values: r.values.map(Number) };
  const n = ((m.get("patch_table_images") as number[]) ?? []).indexOf(imageId);
  const f = dec(m, "patch_table_features");
  const v = dec(m, "patch_table_values");
  if (n < 0 || !f || !v) return null;
  const [, T, P] = f.shape;
  if (token < 0 || token >= T) return null;
  const out: PatchFeatures = { features: [], values: [] };
  for (let p = 0; p < P; p++) {
    const at = (n * T + token) * P + p;
    if (f.data[at] < 0) continue;
    out.features.push(f.data[at]);
    out.values.push(v.data[at]);
  }
  return out;
}

/** The histogram bar (0-based) holding log10(frequency), or -1 for a dead feature / outside. */
export function densityBin(edges: number[], frequency: number): number {
  if (!(frequency > 0) || edges.length < 2) return -1;
  const x = Math.log10(frequency);
  if (x < edges[0] || x > edges[edges.length - 1]) return -1;
  for (let i = 0; i < edges.length - 1; i++) if (x < edges[i + 1]) return i;
  return edges.length - 2;
}

/** Colour range of a map: the feature's largest activation, or the image's own maximum. */
export function mapTop(map: ArrayLike<number>, featureMax: number, normalization: string): number {
  if (normalization === "feature" && featureMax > 0) return featureMax;
  let top = 0;
  for (let i = 0; i < map.length; i++) top = Math.max(top, map[i]);
  return top > 0 ? top : 1;
}

/** Short, readable frequency: "3.1%", "0.02%", "dead". */
export function formatFrequency(f: number): string {
  if (!(f > 0)) return "dead";
  const p = f * 100;
  return `${p >= 10 ? p.toFixed(0) : p >= 1 ? p.toFixed(1) : p.toPrecision(2)}%`;
}

/** The patch grid of every image: rows x cols patches after `nPrefix` prefix tokens. */
export interface Grid {
  rows: number;
  cols: number;
  nPrefix: number;
}

export function readGrid(m: Source): Grid {
  const [rows, cols] = ((m.get("grid") as number[]) ?? [1, 1]).map(Number);
  return { rows, cols, nPrefix: Number(m.get("n_prefix_tokens") ?? 0) };
}
