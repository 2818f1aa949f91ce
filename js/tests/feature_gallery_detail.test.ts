import { describe, expect, it } from "vitest";
import { encode } from "../src/shared/codec";
import { listOrder, readIndex, topClasses } from "../src/feature_gallery/data";
import { readHistogram } from "../src/feature_gallery/histograms";
import { describeEdit, percentPoints } from "../src/feature_gallery/steer";

function model(extra: Record<string, unknown> = {}) {
  const state: Record<string, unknown> = {
    feature_ids: encode(Int32Array.from([0, 1, 2, 3]), [4], "int32"),
    frequency: encode(Float32Array.from([0.5, 0.2, 0, 0.1]), [4], "float32"),
    mean_activation: encode(Float32Array.from([1, 1, 0, 1]), [4], "float32"),
    max_activation: encode(Float32Array.from([2, 2, 0, 2]), [4], "float32"),
    effect_strength: encode(Float32Array.from([0.1, 3, 9, 1]), [4], "float32"),
    top_class: encode(Int32Array.from([0, 1, 2, 1, 0, 2, -1, -1, -1, 2, 1, 0]), [4, 3], "int32"),
    class_names: ["a", "b", "c"],
    d_sae: 4,
    detail_features: [3, 1],
    act_hist_counts: encode(Int32Array.from([0, 0, 0, 2, 5, 1]), [2, 3], "int32"),
    act_hist_edges: encode(Float32Array.from([0, 0, 0, 0, 0, 1, 2, 3]), [2, 4], "float32"),
    ...extra,
  };
  return { get: (k: string) => state[k] };
}

describe("push order and classes", () => {
  it("sorts by the largest class effect; a dead feature (no class) is hidden by default", () => {
    const ix = readIndex(model());
    const o = { sortBy: "push" as const, descending: true, query: "", hideDead: true };
    expect(listOrder(ix, o)).toEqual([1, 3, 0]);
    expect(listOrder(ix, { ...o, hideDead: false })).toEqual([2, 1, 3, 0]);
    expect(topClasses(ix, 2)).toEqual([]);
  });
  it("reads an index without effect strengths as all zeros", () => {
    const ix = readIndex(model({ effect_strength: undefined }));
    expect(Array.from(ix.push)).toEqual([0, 0, 0, 0]);
  });
});

describe("histograms", () => {
  it("reads the row of a detail feature, and nothing for an empty one or a feature not sent", () => {
    expect(readHistogram(model(), 1, "act_hist_counts", "act_hist_edges")).toEqual({ counts: [2, 5, 1], edges: [0, 1, 2, 3] });
    expect(readHistogram(model(), 3, "act_hist_counts", "act_hist_edges")).toBeNull();
    expect(readHistogram(model(), 0, "act_hist_counts", "act_hist_edges")).toBeNull();
  });
});

describe("steering text", () => {
  it("says the change in percentage points and the edit in words", () => {
    expect(percentPoints(0.123)).toBe("+12.3 pp");
    expect(percentPoints(-0.0001)).toBe("−0.01 pp");
    expect(describeEdit("zero", 0)).toBe("zeroed");
    expect(describeEdit("scale", 2)).toBe("×2");
    expect(describeEdit("clamp", 10)).toBe("clamped to 10");
  });
});
