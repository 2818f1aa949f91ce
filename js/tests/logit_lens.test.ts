import { describe, expect, it } from "vitest";
import { encode } from "../src/shared/codec";
import {
  classProbs,
  layerPos,
  legendPos,
  modeRangeValues,
  modeValues,
  readLens,
  shortLabel,
  top1,
  top1Counts,
  topAt,
  trajectory,
} from "../src/logit_lens/data";
import { OTHER, PALETTE, chartPoint, classColor, mapSize, nextLayerPos, patchRect, patchTokenAt, textOn } from "../src/logit_lens/layout";

// 2 layers, 1 prefix + 2x2 patches = 5 tokens, K = 2, 3 classes
function fakeModel(offsetBytes = 0) {
  const L = 2, T = 5, K = 2;
  const topIdx = new Uint8Array(L * T * K);
  const topQ = new Uint8Array(L * T * K);
  const topScale = new Float32Array(L * T);
  for (let l = 0; l < L; l++)
    for (let t = 0; t < T; t++) {
      const o = (l * T + t) * K;
      topIdx[o] = (l + t) % 3;
      topIdx[o + 1] = (l + t + 1) % 3;
      topQ[o] = 255;
      topQ[o + 1] = 100;
      topScale[l * T + t] = 0.8 / 255;
    }
  const entropy = Float32Array.from({ length: L * T }, (_, i) => i / 10);
  const kl = Float32Array.from({ length: L * T }, (_, i) => (i < T ? 1 + i : 0));
  const rank = Uint16Array.from({ length: L * T }, (_, i) => (i < T ? i : 0));
  const classQ = new Uint8Array(L * 3 * T).map((_, i) => i % 256);
  const classScale = Float32Array.from({ length: L * 3 }, () => 0.01);
  const trackIdx = Uint8Array.from({ length: T * K }, (_, i) => i % 3);
  const trackQ = Uint8Array.from({ length: T * K * L }, (_, i) => i * 10);
  const trackScale = Float32Array.from({ length: T }, () => 0.5 / 255);
  // an unaligned, offset view for one array: the codec must honour byteOffset
  const shifted = new Uint8Array(offsetBytes + entropy.byteLength);
  shifted.set(new Uint8Array(entropy.buffer), offsetBytes);
  const state: Record<string, unknown> = {
    top_indices: encode(topIdx, [L, T, K], "uint8"),
    top_probs: encode(topQ, [L, T, K], "uint8"),
    top_scale: encode(topScale, [L, T], "float32"),
    entropy: { view: new DataView(shifted.buffer, offsetBytes, entropy.byteLength), dtype: "float32", shape: [L, T] },
    kl: encode(kl, [L, T], "float32"),
    final_rank: encode(rank, [L, T], "uint16"),
    class_probs: encode(classQ, [L, 3, T], "uint8"),
    class_scale: encode(classScale, [L, 3], "float32"),
    track_indices: encode(trackIdx, [T, K], "uint8"),
    track_probs: encode(trackQ, [T, K, L], "uint8"),
    track_scale: encode(trackScale, [T], "float32"),
    grid: [2, 2],
    n_prefix_tokens: 1,
    token_labels: ["CLS", "r0c0", "r0c1", "r1c0", "r1c1"],
    layer_indices: [3, 7],
    class_names: ["cat", "dog, puppy", "<b>x</b>"],
    class_ids: [2, 0, 1],
    max_entropy: Math.log(3),
    image_pixels: {},
  };
  return { get: (k: string) => state[k], state };
}

describe("lens data", () => {
  const d = readLens(fakeModel(3));

  it("decodes shapes, names and an offset view", () => {
    expect([d.L, d.T, d.K, d.rows, d.cols, d.nPrefix]).toEqual([2, 5, 2, 2, 2, 1]);
    expect(d.pixels).toBeNull();
    expect(Array.from(modeValues(d, "entropy", 1, 0))).toEqual(Array.from({ length: 5 }, (_, i) => Math.fround((5 + i) / 10)));
  });

  it("reads top-k with its scale", () => {
    const top = topAt(d, 1, 2);
    expect(top.map((e) => e.cls)).toEqual([0, 1]);
    expect(top[0].prob).toBeCloseTo(0.8, 6);
    expect(top[1].prob).toBeCloseTo((100 * 0.8) / 255, 6);
    expect(Array.from(top1(d, 0))).toEqual([0, 1, 2, 0, 1]);
  });

  it("gives every mode one value per token", () => {
    expect(Array.from(modeValues(d, "kl", 0, 0))).toEqual([1, 2, 3, 4, 5]);
    expect(Array.from(modeValues(d, "rank", 1, 0))).toEqual([0, 0, 0, 0, 0]);
    expect(modeValues(d, "top1", 0, 0)[0]).toBeCloseTo(0.8, 6);
    const cp = modeValues(d, "class_prob", 1, 2);
    const base = (1 * 3 + 2) * 5;
    expect(cp[0]).toBeCloseTo(base * 0.01, 5);
    expect(Array.from(classProbs(d, 0, 9))).toEqual([0, 0, 0, 0, 0]); // no such legend position
    expect(modeRangeValues(d, "kl", 0, 0, true)).toHaveLength(10);
    expect(modeRangeValues(d, "kl", 0, 0, false)).toHaveLength(5);
  });

  it("counts top-1 classes over patches only, and maps classes to legend positions", () => {
    expect([...top1Counts(d, 0).entries()].sort()).toEqual([[0, 1], [1, 2], [2, 1]]);
    expect(legendPos(d, 2)).toBe(0);
    expect(legendPos(d, 1)).toBe(2);
    expect(legendPos(d, 5)).toBe(-1);
  });

  it("builds the trajectory of the final top classes", () => {
    const s = trajectory(d, 1);
    expect(s.map((x) => x.cls)).toEqual([2, 0]);
    expect(s[0].values[0]).toBeCloseTo((4 * 10 * 0.5) / 255, 6);
    expect(s[1].values).toHaveLength(2);
  });

  it("finds layer positions and shortens labels", () => {
    expect(layerPos(d, 7)).toBe(1);
    expect(layerPos(d, 4)).toBe(0);
    expect(shortLabel("dog, puppy")).toBe("dog");
    expect(shortLabel("chambered nautilus", 6)).toBe("chamb…");
  });

  it("rejects inconsistent layouts", () => {
    const m = fakeModel();
    m.state.grid = [3, 3];
    expect(() => readLens(m)).toThrow(/do not fit/);
    const m2 = fakeModel();
    m2.state.class_ids = [0];
    expect(() => readLens(m2)).toThrow(/class ids/);
  });
});

describe("lens layout", () => {
  const R = { x: 0, y: 0, w: 200, h: 100 };
  it("maps points to patch tokens and back", () => {
    expect(patchTokenAt(R, 10, 10, 2, 4, 1)).toBe(1);
    expect(patchTokenAt(R, 199, 99, 2, 4, 1)).toBe(8);
    expect(patchTokenAt(R, 200, 10, 2, 4, 1)).toBe(-1);
    expect(patchRect(R, 8, 2, 4, 1)).toEqual({ x: 150, y: 50, w: 50, h: 50 });
    expect(patchRect(R, 0, 2, 4, 1)).toBeNull();
  });
  it("keeps the aspect ratio and wraps the play button", () => {
    expect(mapSize(320, 300, 451)).toEqual({ w: 320, h: 213 });
    expect(mapSize(320, 400, 200)).toEqual({ w: 160, h: 320 });
    expect(nextLayerPos(2, 3)).toBe(0);
    expect(nextLayerPos(0, 3)).toBe(1);
  });
  it("colours legend positions, grey for the rest, readable text", () => {
    expect(classColor(0)).toEqual(PALETTE[0]);
    expect(classColor(-1)).toEqual(OTHER);
    expect(classColor(PALETTE.length)).toEqual(OTHER);
    expect(new Set(PALETTE.map((c) => c.join())).size).toBe(PALETTE.length);
    expect(textOn([255, 255, 255])).toBe("#000");
    expect(textOn([0, 0, 0])).toBe("#fff");
  });
  it("places chart points", () => {
    const C = { x: 10, y: 0, w: 100, h: 50 };
    expect(chartPoint(0, 3, 0, 1, C)).toEqual({ x: 10, y: 50 });
    expect(chartPoint(2, 3, 1, 1, C)).toEqual({ x: 110, y: 0 });
    expect(chartPoint(0, 1, 0.5, 1, C)).toEqual({ x: 60, y: 25 });
  });
});
