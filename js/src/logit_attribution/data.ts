// LogitAttribution data: the traits decoded once, then a target's values, a cell's value, and position maps.
// Pure (no DOM), so vitest covers it. Python computes every number; a pair target is the difference of two
// columns and a layer's "attn" cell the sum of its heads, nothing more.
import { decode, type EncodedArray, type NDArray } from "../shared/codec";
import { formatValue } from "../shared/scale";
import type { TraitSource } from "../shared/traits";
import type { LogitAttributionTraits, Part } from "./traits";

export type { Part } from "./traits";

/** What is selected: a head (part "head"), a layer's heads together ("attn"), its MLP, the embedding, the biases. */
export interface Selection {
  part: Part;
  layer: number;
  head: number;
}

export interface AttributionData {
  /** components, classes, tokens */
  C: number;
  K: number;
  T: number;
  rows: number;
  cols: number;
  nPrefix: number;
  nLayers: number;
  nHeads: number;
  labels: string[];
  classNames: string[];
  tokenLabels: string[];
  /** [C, K]: every class's decomposition */
  values: ArrayLike<number>;
  /** [K]: the actual scores */
  scores: ArrayLike<number>;
  /** component index of each head [layer][head], of each layer's "attn" (-1: the sum of its heads) and MLP */
  heads: number[][];
  attn: number[];
  mlp: number[];
  embed: number;
  bias: number;
  /** [P, C, T] for the classes positionIds, or null */
  positions: ArrayLike<number> | null;
  positionIds: number[];
  /** [L, H, T]: attention from the pooled token, or null */
  pooled: ArrayLike<number> | null;
  pixels: { data: Uint8Array; H: number; W: number; C: number } | null;
}

function need(arr: NDArray | null, name: string, dims: number): NDArray {
  if (!arr) throw new Error(`the attribution has no ${name}`);
  if (arr.shape.length !== dims) throw new Error(`${name} must have ${dims} dimensions, got [${arr.shape.join(", ")}]`);
  return arr;
}

/** Where each label sits: "L{l}H{h}", "L{l} attn", "L{l} MLP", "embed", "bias". */
export function parseLabels(labels: string[], nLayers: number, nHeads: number): Pick<AttributionData, "heads" | "attn" | "mlp" | "embed" | "bias"> {
  const heads = Array.from({ length: nLayers }, () => new Array<number>(nHeads).fill(-1));
  const attn = new Array<number>(nLayers).fill(-1);
  const mlp = new Array<number>(nLayers).fill(-1);
  let embed = -1;
  let bias = -1;
  labels.forEach((label, i) => {
    const h = /^L(\d+)H(\d+)$/.exec(label);
    const m = /^L(\d+) (attn|MLP)$/.exec(label);
    if (h && +h[1] < nLayers && +h[2] < nHeads) heads[+h[1]][+h[2]] = i;
    else if (m && +m[1] < nLayers) (m[2] === "attn" ? attn : mlp)[+m[1]] = i;
    else if (label === "embed") embed = i;
    else if (label === "bias") bias = i;
  });
  return { heads, attn, mlp, embed, bias };
}

export function readAttribution(model: TraitSource<LogitAttributionTraits>): AttributionData {
  const get = (k: keyof LogitAttributionTraits) => model.get(k);
  const dec = (k: keyof LogitAttributionTraits) => decode(get(k) as EncodedArray);
  const values = need(dec("component_values"), "component_values", 2);
  const [C, K] = values.shape;
  const scores = need(dec("class_scores"), "class_scores", 1);
  const labels = ((get("labels") as string[]) ?? []).map(String);
  if (labels.length !== C) throw new Error(`${labels.length} labels for ${C} components`);
  const nLayers = Number(get("n_layers") ?? 0);
  const nHeads = Number(get("n_heads") ?? 0);
  const [rows, cols] = ((get("grid") as number[]) ?? [1, 1]).map(Number);
  const nPrefix = Number(get("n_prefix_tokens") ?? 0);
  const T = nPrefix + rows * cols;
  const pos = dec("position_values");
  const positionIds = ((get("position_class_ids") as number[]) ?? []).map(Number);
  if (pos && (pos.shape[0] !== positionIds.length || pos.shape[1] !== C || pos.shape[2] !== T)) {
    throw new Error(`position_values [${pos.shape.join(", ")}] do not fit ${positionIds.length} classes x ${C} components x ${T} tokens`);
  }
  const pooled = dec("pooled_attention");
  const img = decode(get("image_pixels") as EncodedArray);
  const pixels = img ? { data: img.data as Uint8Array, H: img.shape[0], W: img.shape[1], C: img.shape[2] ?? 1 } : null;
  return {
    C,
    K,
    T,
    rows,
    cols,
    nPrefix,
    nLayers,
    nHeads,
    labels,
    classNames: ((get("class_names") as string[]) ?? []).map(String),
    tokenLabels: ((get("token_labels") as string[]) ?? []).map(String),
    values: values.data,
    scores: scores.data,
    ...parseLabels(labels, nLayers, nHeads),
    positions: pos ? pos.data : null,
    positionIds: pos ? positionIds : [],
    pooled: pooled ? pooled.data : null,
    pixels,
  };
}

/** Each component's value for `target` minus `versus` (-1: none): [C]. */
export function targetValues(d: AttributionData, target: number, versus: number): Float32Array {
  const out = new Float32Array(d.C);
  for (let c = 0; c < d.C; c++) out[c] = d.values[c * d.K + target] - (versus >= 0 ? d.values[c * d.K + versus] : 0);
  return out;
}

/** The actual score of `target` minus `versus`. */
export function targetScore(d: AttributionData, target: number, versus: number): number {
  return d.scores[target] - (versus >= 0 ? d.scores[versus] : 0);
}

/** The components a selection stands for (a layer's heads for a derived "attn" cell). */
export function componentsOf(d: AttributionData, s: Selection): number[] {
  const layerOk = s.layer >= 0 && s.layer < d.nLayers;
  switch (s.part) {
    case "head":
      return layerOk && s.head >= 0 && s.head < d.nHeads && d.heads[s.layer][s.head] >= 0 ? [d.heads[s.layer][s.head]] : [];
    case "attn":
      if (!layerOk) return [];
      return d.attn[s.layer] >= 0 ? [d.attn[s.layer]] : d.heads[s.layer].filter((i) => i >= 0);
    case "mlp":
      return layerOk && d.mlp[s.layer] >= 0 ? [d.mlp[s.layer]] : [];
    case "embed":
      return d.embed >= 0 ? [d.embed] : [];
    default:
      return d.bias >= 0 ? [d.bias] : [];
  }
}

/** A selection's value (the sum of its components) in `vals` ([C]). */
export function cellValue(d: AttributionData, vals: ArrayLike<number>, s: Selection): number {
  return componentsOf(d, s).reduce((acc, c) => acc + vals[c], 0);
}

/** "L3H2", "L3 attn", "L3 MLP", "embed", "bias". */
export function selectionLabel(s: Selection): string {
  if (s.part === "head") return `L${s.layer}H${s.head}`;
  if (s.part === "attn") return `L${s.layer} attn`;
  if (s.part === "mlp") return `L${s.layer} MLP`;
  return s.part;
}

/** The position map [T] of a selection for target minus versus, or null when a class has no maps here. */
export function positionMap(d: AttributionData, s: Selection, target: number, versus: number): Float32Array | null {
  if (!d.positions) return null;
  const a = d.positionIds.indexOf(target);
  const b = versus >= 0 ? d.positionIds.indexOf(versus) : -1;
  if (a < 0 || (versus >= 0 && b < 0)) return null;
  const out = new Float32Array(d.T);
  const P = d.positions;
  for (const c of componentsOf(d, s)) {
    const oa = (a * d.C + c) * d.T;
    const ob = (b * d.C + c) * d.T;
    for (let t = 0; t < d.T; t++) out[t] += P[oa + t] - (b >= 0 ? P[ob + t] : 0);
  }
  return out;
}

/** Head (layer, head)'s attention from the pooled token [T], or null. */
export function attentionMap(d: AttributionData, layer: number, head: number): Float32Array | null {
  if (!d.pooled || layer < 0 || layer >= d.nLayers || head < 0 || head >= d.nHeads) return null;
  const o = (layer * d.nHeads + head) * d.T;
  return Float32Array.from({ length: d.T }, (_, t) => d.pooled![o + t]);
}

/** Class indices by score, best first (the target picker's order). */
export function classOrder(d: AttributionData): number[] {
  return Array.from({ length: d.K }, (_, i) => i).sort((a, b) => d.scores[b] - d.scores[a] || a - b);
}

export function className(d: AttributionData, c: number): string {
  return d.classNames[c] ?? `class ${c}`;
}

/** The target as text: "circle", or "circle − square". */
export function targetText(d: AttributionData, target: number, versus: number): string {
  return versus >= 0 ? `${className(d, target)} − ${className(d, versus)}` : className(d, target);
}

/** The largest contributions by absolute value (heads, layers' MLPs, embed, bias; no derived attn cells). */
export function topComponents(d: AttributionData, vals: ArrayLike<number>, k: number): { sel: Selection; value: number }[] {
  const all: { sel: Selection; value: number }[] = [];
  for (let l = 0; l < d.nLayers; l++) {
    for (let h = 0; h < d.nHeads; h++) if (d.heads[l][h] >= 0) all.push({ sel: { part: "head", layer: l, head: h }, value: vals[d.heads[l][h]] });
    if (d.attn[l] >= 0) all.push({ sel: { part: "attn", layer: l, head: 0 }, value: vals[d.attn[l]] });
    if (d.mlp[l] >= 0) all.push({ sel: { part: "mlp", layer: l, head: 0 }, value: vals[d.mlp[l]] });
  }
  if (d.embed >= 0) all.push({ sel: { part: "embed", layer: 0, head: 0 }, value: vals[d.embed] });
  if (d.bias >= 0) all.push({ sel: { part: "bias", layer: 0, head: 0 }, value: vals[d.bias] });
  return all.sort((a, b) => Math.abs(b.value) - Math.abs(a.value)).slice(0, k);
}

/** A value in logits with its sign: "+1.23", "−0.5". */
export function signed(v: number): string {
  const s = formatValue(Math.abs(v));
  return v > 0 ? `+${s}` : v < 0 ? `−${s}` : "0";
}

/** The status line for a cell under the pointer. */
export function hoverText(d: AttributionData, s: Selection, value: number, total: number, target: number, versus: number): string {
  const share = total !== 0 ? ` (${Math.round((100 * value) / total)}% of ${signed(total)})` : "";
  const what = s.part === "attn" && d.attn[s.layer] < 0 ? " (its heads together; the output bias is in bias)" : "";
  return `${selectionLabel(s)} → ${targetText(d, target, versus)}: ${signed(value)} logits${share}${what}`;
}
