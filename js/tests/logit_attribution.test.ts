import { describe, expect, it } from "vitest";
import { encode } from "../src/shared/codec";
import {
  attentionMap,
  cellValue,
  classOrder,
  componentsOf,
  parseLabels,
  positionMap,
  readAttribution,
  selectionLabel,
  signed,
  targetScore,
  targetText,
  targetValues,
  topComponents,
} from "../src/logit_attribution/data";
import { cellAt, cellOf, computeHeatmap } from "../src/logit_attribution/layout";
import { headOrder, summaryScale, summaryValues } from "../src/attention_grid/summary";

// 2 layers x 2 heads: embed, L0H0, L0H1, L0 MLP, L1H0, L1H1, L1 MLP, bias = 8 components; 3 classes;
// 1 prefix + 2x2 patches = 5 tokens
const LABELS = ["embed", "L0H0", "L0H1", "L0 MLP", "L1H0", "L1H1", "L1 MLP", "bias"];
function fakeModel(withPositions = true) {
  const C = 8, K = 3, T = 5;
  const values = Float32Array.from({ length: C * K }, (_, i) => (Math.floor(i / K) + 1) * (i % K === 0 ? 1 : i % K === 1 ? -0.5 : 0.25));
  const scores = Float32Array.from({ length: K }, (_, k) => Array.from({ length: C }, (_, c) => values[c * K + k]).reduce((a, b) => a + b, 0));
  const positions = Float32Array.from({ length: 2 * C * T }, (_, i) => i % 7);
  const pooled = Float32Array.from({ length: 2 * 2 * T }, (_, i) => i / 20);
  const state: Record<string, unknown> = {
    component_values: encode(values, [C, K], "float32"),
    class_scores: encode(scores, [K], "float32"),
    position_values: withPositions ? encode(positions, [2, C, T], "float32") : {},
    pooled_attention: encode(pooled, [2, 2, T], "float32"),
    image_pixels: {},
    labels: LABELS,
    n_layers: 2,
    n_heads: 2,
    class_names: ["circle", "square", "<b>x</b>"],
    position_class_ids: withPositions ? [0, 2] : [],
    grid: [2, 2],
    n_prefix_tokens: 1,
    token_labels: ["CLS", "r0c0", "r0c1", "r1c0", "r1c1"],
  };
  return { get: (k: string) => state[k] };
}

describe("logit attribution data", () => {
  const d = readAttribution(fakeModel());

  it("parses the labels into heads, MLPs, embed and bias", () => {
    expect(d.heads).toEqual([[1, 2], [4, 5]]);
    expect(d.mlp).toEqual([3, 6]);
    expect(d.attn).toEqual([-1, -1]);
    expect([d.embed, d.bias]).toEqual([0, 7]);
    const noHeads = parseLabels(["embed", "L0 attn", "L0 MLP", "bias"], 1, 0);
    expect(noHeads.attn).toEqual([1]);
    expect(componentsOf({ ...d, ...noHeads, nHeads: 0 }, { part: "attn", layer: 0, head: 0 })).toEqual([1]);
  });

  it("a pair is a difference of columns, and the cells sum to the score", () => {
    const v = targetValues(d, 0, 1);
    for (let c = 0; c < d.C; c++) expect(v[c]).toBeCloseTo(d.values[c * 3] - d.values[c * 3 + 1]);
    expect(v.reduce((a, b) => a + b, 0)).toBeCloseTo(targetScore(d, 0, 1), 5);
    // the attn cell is the sum of its layer's heads
    expect(cellValue(d, v, { part: "attn", layer: 1, head: 0 })).toBeCloseTo(v[4] + v[5]);
    expect(cellValue(d, v, { part: "head", layer: 9, head: 0 })).toBe(0);
  });

  it("position maps: per class, pairs only when both classes have maps", () => {
    const head = positionMap(d, { part: "head", layer: 0, head: 1 }, 2, -1)!;
    expect(Array.from(head)).toEqual(Array.from({ length: 5 }, (_, t) => (1 * 8 * 5 + 2 * 5 + t) % 7));
    const diff = positionMap(d, { part: "mlp", layer: 1, head: 0 }, 0, 2)!;
    for (let t = 0; t < 5; t++) expect(diff[t]).toBe(((6 * 5 + t) % 7) - ((8 * 5 + 6 * 5 + t) % 7));
    expect(positionMap(d, { part: "embed", layer: 0, head: 0 }, 1, -1)).toBeNull();
    expect(positionMap(d, { part: "embed", layer: 0, head: 0 }, 0, 1)).toBeNull();
    expect(positionMap(readAttribution(fakeModel(false)), { part: "embed", layer: 0, head: 0 }, 0, -1)).toBeNull();
    expect(Array.from(attentionMap(d, 1, 0)!)).toEqual([10, 11, 12, 13, 14].map((i) => i / 20).map((x) => Math.fround(x)));
    expect(attentionMap(d, 2, 0)).toBeNull();
  });

  it("names, order, text", () => {
    expect(classOrder(d)[0]).toBe(0);
    expect(targetText(d, 0, 2)).toBe("circle − <b>x</b>");
    expect(selectionLabel({ part: "mlp", layer: 1, head: 0 })).toBe("L1 MLP");
    expect(signed(1.234)).toBe("+1.23");
    expect(signed(-0.5)).toBe("−0.5");
    const top = topComponents(d, targetValues(d, 0, -1), 3);
    expect(top.map((e) => selectionLabel(e.sel))).toEqual(["bias", "L1 MLP", "L1H1"]);
  });

  it("refuses labels that do not match the values", () => {
    const m = fakeModel();
    const bad = { get: (k: string) => (k === "labels" ? ["embed"] : m.get(k)) };
    expect(() => readAttribution(bad)).toThrow(/labels for 8 components/);
  });
});

describe("logit attribution heatmap layout", () => {
  const L = computeHeatmap({ nLayers: 2, nHeads: 3, cell: 20 });

  it("places heads, attn and MLP columns and the bottom row", () => {
    expect(L.cells.length).toBe(2 * (3 + 2) + 2);
    const h = cellOf(L, { part: "head", layer: 1, head: 2 })!;
    expect(cellAt(L, h.rect.x + 1, h.rect.y + 1)!.sel).toEqual({ part: "head", layer: 1, head: 2 });
    const mlp = cellOf(L, { part: "mlp", layer: 0, head: 0 })!;
    const attn = cellOf(L, { part: "attn", layer: 0, head: 0 })!;
    expect(mlp.rect.x).toBeGreaterThan(attn.rect.x);
    expect(attn.rect.x).toBeGreaterThan(h.rect.x + h.rect.w);
    const bias = cellOf(L, { part: "bias", layer: 5, head: 9 })!;
    expect(bias.rect.y).toBeGreaterThan(mlp.rect.y + 20);
    expect(cellAt(L, 0, 0)).toBeNull();
    expect(L.headers.map((x) => x.text)).toEqual(["H0", "H1", "H2", "attn", "MLP"]);
  });
});

describe("attention grid head summaries", () => {
  const d = { layers: [0, 1], heads: [0, 1, 2], distance: Float32Array.from([3, 1, 2, 0.5, 0.5, 0.1]), entropy: null };

  it("orders each layer's heads by the summary, ties in head order", () => {
    expect(headOrder(d, d.distance)).toEqual([[1, 2, 0], [2, 0, 1]]);
    expect(summaryValues(d, "none")).toBeNull();
    expect(summaryValues(d, "entropy")).toBeNull();
  });

  it("scales from the smallest to the largest value", () => {
    const s = summaryScale(d.distance);
    expect(s.map(0.1)).toBe(0);
    expect(s.map(3)).toBe(1);
    expect(s.map(1.55)).toBeCloseTo(0.5);
  });
});
