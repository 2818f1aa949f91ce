import { describe, expect, it } from "vitest";
import { encode } from "../src/shared/codec";
import {
  cardShots,
  className,
  densityBin,
  formatFrequency,
  listOrder,
  mapTop,
  pageCount,
  pageOf,
  patchFeatures,
  readDetail,
  readIndex,
  topClasses,
} from "../src/feature_gallery/data";
import { frequencyLabel } from "../src/feature_gallery/draw";
import { stripRects, stripSize } from "../src/feature_gallery/layout";

// 5 features listed (ids 0, 2, 3, 7, 9), 3 classes, maps over T = 1 prefix + 2x2 patches
function fakeModel(extra: Record<string, unknown> = {}) {
  const T = 5;
  const state: Record<string, unknown> = {
    feature_ids: encode(Int32Array.from([0, 2, 3, 7, 9]), [5], "int32"),
    frequency: encode(Float32Array.from([0.1, 0, 0.3, 0.1, 0.02]), [5], "float32"),
    mean_activation: encode(Float32Array.from([1, 0, 0.5, 2, 4]), [5], "float32"),
    max_activation: encode(Float32Array.from([2, 0, 1, 3, 8]), [5], "float32"),
    top_class: encode(Int32Array.from([0, 1, 2, -1, -1, -1, 2, 0, 1, 1, 2, 0, 2, 1, 0]), [5, 3], "int32"),
    class_names: ["circle", "square", "<b>star</b>"],
    d_sae: 16,
    card_features: [3, 7],
    card_images: encode(Int32Array.from([0, 1, 2, -1]), [2, 2], "int32"),
    card_values: encode(Float32Array.from([1, 0.5, 3, 0]), [2, 2], "float32"),
    card_maps: encode(Uint8Array.from({ length: 2 * 2 * T }, (_, i) => i * 10), [2, 2, T], "uint8"),
    card_map_scale: encode(Float32Array.from([0.1, 0.01, 1, 0]), [2, 2], "float32"),
    detail_features: [7],
    detail_images: encode(Int32Array.from([2, 0]), [1, 2], "int32"),
    detail_values: encode(Float32Array.from([3, 1]), [1, 2], "float32"),
    detail_maps: encode(new Uint8Array(2 * T).fill(255), [1, 2, T], "uint8"),
    detail_map_scale: encode(Float32Array.from([3 / 255, 1 / 255]), [1, 2], "float32"),
    quantile_images: encode(Int32Array.from([1, -1, -1, -1, 0, 2]), [1, 3, 2], "int32"),
    quantile_values: encode(Float32Array.from([0.2, 0, 0, 0, 1, 3]), [1, 3, 2], "float32"),
    quantile_maps: encode(new Uint8Array(6 * T).fill(2), [1, 3, 2, T], "uint8"),
    quantile_map_scale: encode(new Float32Array(6).fill(0.5), [1, 3, 2], "float32"),
    effect_classes: encode(Int32Array.from([2, 0, 1, 0]), [1, 2, 2], "int32"),
    effect_values: encode(Float32Array.from([1.5, 0.2, -0.7, 0.1]), [1, 2, 2], "float32"),
    patch_table_images: [40, 41],
    patch_table_features: encode(Int32Array.from({ length: 2 * T * 2 }, (_, i) => (i % 2 ? -1 : i)), [2, T, 2], "int32"),
    patch_table_values: encode(Float32Array.from({ length: 2 * T * 2 }, (_, i) => i / 2), [2, T, 2], "float32"),
    patch_result: {},
    ...extra,
  };
  return { get: (k: string) => state[k] };
}

describe("index", () => {
  it("reads the listed features and their classes", () => {
    const ix = readIndex(fakeModel());
    expect(Array.from(ix.ids)).toEqual([0, 2, 3, 7, 9]);
    expect(ix.pos.get(7)).toBe(3);
    expect(topClasses(ix, 1)).toEqual([]);
    expect(topClasses(ix, 0).map((c) => className(ix, c))).toEqual(["circle", "square", "<b>star</b>"]);
    expect(className(ix, 5)).toBe("class 5");
    expect(ix.dSae).toBe(16);
  });

  it("refuses arrays that do not match the index", () => {
    const m = fakeModel({ frequency: encode(Float32Array.from([1, 2]), [2], "float32") });
    expect(() => readIndex(m)).toThrow(/frequency/);
  });

  it("sorts, filters by index or class name, hides dead features", () => {
    const ix = readIndex(fakeModel());
    const o = { sortBy: "frequency" as const, descending: true, query: "", hideDead: false };
    expect(listOrder(ix, o)).toEqual([3, 0, 7, 9, 2]); // ties by index
    expect(listOrder(ix, { ...o, descending: false })).toEqual([2, 9, 0, 7, 3]);
    expect(listOrder(ix, { ...o, hideDead: true })).toEqual([3, 0, 7, 9]);
    expect(listOrder(ix, { ...o, sortBy: "mean" })).toEqual([9, 7, 0, 3, 2]);
    expect(listOrder(ix, { ...o, sortBy: "max", descending: false })).toEqual([2, 3, 0, 7, 9]);
    expect(listOrder(ix, { ...o, sortBy: "index" })).toEqual([9, 7, 3, 2, 0]);
    expect(listOrder(ix, { ...o, query: "7" })).toEqual([7]);
    expect(listOrder(ix, { ...o, query: "#2", hideDead: true })).toEqual([2]); // an index search finds dead ones
    expect(listOrder(ix, { ...o, query: "STAR" })).toEqual([3, 0, 7, 9]);
    expect(listOrder(ix, { ...o, query: "circ" })).toEqual([3, 0, 7, 9]);
    expect(listOrder(ix, { ...o, query: "nothing" })).toEqual([]);
  });

  it("pages", () => {
    expect(pageCount(0, 12)).toBe(1);
    expect(pageCount(25, 12)).toBe(3);
    expect(pageOf([1, 2, 3, 4, 5], 1, 2)).toEqual({ ids: [3, 4], page: 1 });
    expect(pageOf([1, 2, 3, 4, 5], 9, 2)).toEqual({ ids: [5], page: 2 });
    expect(pageOf([], 3, 2)).toEqual({ ids: [], page: 0 });
  });
});

describe("cards and details", () => {
  it("dequantises card maps and skips empty slots", () => {
    const m = fakeModel();
    const a = cardShots(m, 3)!;
    expect(a.map((s) => s.image)).toEqual([0, 1]);
    expect(a[0].map[1]).toBeCloseTo(10 * 0.1);
    expect(a[1].map[4]).toBeCloseTo(90 * 0.01);
    const b = cardShots(m, 7)!;
    expect(b.length).toBe(1);
    expect(b[0].value).toBe(3);
    expect(cardShots(m, 0)).toBeNull();
  });

  it("reads the detail: top images, non-empty quantile groups, class effects", () => {
    const d = readDetail(fakeModel(), 7)!;
    expect(d.top.map((s) => s.image)).toEqual([2, 0]);
    expect(d.top[0].map[0]).toBeCloseTo(3);
    expect(d.quantiles.length).toBe(2);
    expect(d.quantiles[0].shots.map((s) => s.image)).toEqual([1]);
    expect(d.quantiles[1]).toMatchObject({ low: 1, high: 3 });
    expect(d.quantiles[1].shots[0].map[2]).toBeCloseTo(1);
    expect(d.topEffects).toEqual([{ cls: 2, value: 1.5 }, { cls: 0, value: expect.closeTo(0.2, 6) }]);
    expect(d.bottomEffects[0]).toEqual({ cls: 1, value: expect.closeTo(-0.7, 6) });
    expect(readDetail(fakeModel(), 3)).toBeNull();
  });

  it("looks patches up in the saved table, or in the kernel's answer", () => {
    const m = fakeModel();
    expect(patchFeatures(m, 41, 2)).toEqual({ features: [14], values: [7] });
    expect(patchFeatures(m, 99, 2)).toBeNull();
    expect(patchFeatures(m, 40, 7)).toBeNull();
    const live = fakeModel({ patch_result: { image: 99, token: 2, features: [5, 1], values: [2, 1] } });
    expect(patchFeatures(live, 99, 2)).toEqual({ features: [5, 1], values: [2, 1] });
    expect(patchFeatures(live, 99, 3)).toBeNull();
  });
});

describe("helpers", () => {
  it("finds the density bin of a frequency", () => {
    const edges = [-3, -2, -1, 0];
    expect(densityBin(edges, 0.5)).toBe(2);
    expect(densityBin(edges, 0.001)).toBe(0);
    expect(densityBin(edges, 1)).toBe(2);
    expect(densityBin(edges, 0)).toBe(-1);
    expect(densityBin(edges, 1e-5)).toBe(-1);
  });

  it("chooses the colour range and formats frequencies", () => {
    expect(mapTop([1, 2, 3], 8, "feature")).toBe(8);
    expect(mapTop([1, 2, 3], 8, "image")).toBe(3);
    expect(mapTop([0, 0], 0, "feature")).toBe(1);
    expect(formatFrequency(0)).toBe("dead");
    expect(formatFrequency(0.123)).toBe("12%");
    expect(formatFrequency(0.0123)).toBe("1.2%");
    expect(formatFrequency(0.000123)).toBe("0.012%");
  });

  it("lays thumbnails out in rows", () => {
    const r = stripRects(5, 10, 2, 4, 14);
    expect(r[1]).toEqual({ x: 14, y: 0, w: 10, h: 10 });
    expect(r[2]).toEqual({ x: 0, y: 28, w: 10, h: 10 });
    expect(stripSize(5, 10, 2, 4, 14)).toEqual({ w: 24, h: 80 });
    expect(stripSize(1, 10, 4, 4, 14)).toEqual({ w: 10, h: 24 });
  });
});

describe("histogram axis", () => {
  it("labels log10 frequencies as percentages of rows", () => {
    expect(frequencyLabel(0)).toBe("100%");
    expect(frequencyLabel(-2)).toBe("1%");
    expect(frequencyLabel(-2.25)).toBe("0.56%");
  });
});
