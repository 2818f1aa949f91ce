import { describe, expect, it } from "vitest";
import { encode } from "../src/shared/codec";
import { SITE_BYS, cellOf, cellTitle, columnLabel, columnOf, gridColumns, hasMaps, readPatching, selectionOf, valueAt } from "../src/patching_heatmap/data";
import { columnsCaption, frameIndex, frameMajor, mapView, mapsByFrame } from "../src/patching_heatmap/frames";

// a clip: 2 layers, 1 prefix + 3 frames x 2x2 patches = 13 tokens, 2 heads
const L = 2, F = 3, R = 2, C = 2, P = 1, T = P + F * R * C, H = 2;

function clip(by: string): Record<string, unknown> {
  const cells = { position: [T], head_position: [T, H], frame: [F], tube: [R * C] }[by] as number[];
  const shape = [L, ...cells];
  const n = shape.reduce((a, b) => a * b, 1);
  const values = Float32Array.from({ length: n }, (_, i) => i / 100);
  const axes = { position: ["layer", "position"], head_position: ["layer", "position", "head"], frame: ["layer", "frame"], tube: ["layer", "tube"] }[by];
  const labels = ["CLS"];
  for (let f = 0; f < F; f++) for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) labels.push(`t${f} r${r}c${c}`);
  const frames = new Uint8Array(F * 4 * 4 * 3);
  for (let f = 0; f < F; f++) frames.fill(10 * (f + 1), f * 48, (f + 1) * 48);
  return {
    by,
    axes,
    values: encode(values, shape, "float32"),
    layer_indices: [0, 3],
    token_labels: labels,
    head_labels: ["H0", "H1"],
    grid: [R, C],
    n_prefix_tokens: P,
    frames: F,
    frame_pixels: encode(frames, [F, 4, 4, 3], "uint8"),
    image_pixels: encode(frames.slice(0, 48), [4, 4, 3], "uint8"),
    corrupted_pixels: {},
    cell_top_indices: {},
    cell_top_probs: {},
    class_names: [],
  };
}

const getter = (s: Record<string, unknown>) => ({ get: (k: string) => s[k] });

describe("PatchingHeatmap over a clip", () => {
  it("reads a clip's position result: every token of every frame", () => {
    const d = readPatching(getter(clip("position")));
    expect([d.T, d.frames, d.nCells]).toEqual([T, F, T]);
    expect(gridColumns(d)).toEqual({ nCols: T, nPrefixCols: P });
    expect(columnsCaption(d, P)).toContain("frame by frame (t0 … t2)");
    expect(mapsByFrame(d)).toBe(true);
  });

  it("by frame and by tube: one column per frame / per patch, labelled t{f} / r{r}c{c}, no prefix", () => {
    const f = readPatching(getter(clip("frame")));
    expect(gridColumns(f)).toEqual({ nCols: F, nPrefixCols: 0 });
    expect([0, 1, 2].map((i) => columnLabel(f, i))).toEqual(["t0", "t1", "t2"]);
    expect(hasMaps(f)).toBe(false);
    expect(selectionOf(f, 1, 2)).toEqual({ layer: 3, frame: 2 });
    expect(cellOf(f, { layer: 3, frame: 2 })).toEqual({ lp: 1, cell: 2 });
    expect(columnOf(f, { layer: 3, frame: 2 }).col).toBe(2);
    expect(cellTitle(f, { layer: 3, frame: 2 })).toBe("layer 3 · frame t2");
    const t = readPatching(getter(clip("tube")));
    expect(gridColumns(t)).toEqual({ nCols: R * C, nPrefixCols: 0 });
    expect([0, 1, 2, 3].map((i) => columnLabel(t, i))).toEqual(["r0c0", "r0c1", "r1c0", "r1c1"]);
    expect(hasMaps(t)).toBe(true);
    expect(selectionOf(t, 0, 3)).toEqual({ layer: 0, tube: 3 });
    expect(SITE_BYS.resid_pre).toContain("tube");
  });

  it("rejects a tube result that does not fit the grid", () => {
    const s = clip("tube");
    s.grid = [3, 3];
    expect(() => readPatching(getter(s))).toThrow(/tubes do not fit/);
  });

  it("maps one frame: its tokens' values, its image, and clicks back to clip tokens", () => {
    const d = readPatching(getter(clip("position")));
    const v = mapView(d, 2, null);
    expect(v.data.T).toBe(P + R * C);
    // frame 2's first patch is clip token P + 2 * 4 = 9; the prefix stays token 0
    for (let lp = 0; lp < L; lp++) {
      expect(valueAt(v.data, lp, 0)).toBeCloseTo(valueAt(d, lp, 0), 6);
      for (let p = 0; p < R * C; p++) expect(valueAt(v.data, lp, P + p)).toBeCloseTo(valueAt(d, lp, P + 2 * R * C + p), 6);
    }
    expect(v.data.tokenLabels[1]).toBe("t2 r0c0");
    expect(v.global(1, 2, 0)).toEqual({ layer: 3, position: P + 2 * R * C + 1 });
    expect(v.local({ layer: 3, position: P + 2 * R * C + 3 })).toEqual({ layer: 3, position: P + 3 });
    expect(v.local({ layer: 3, position: P + 3 })).toEqual({ layer: 3 }); // a token of frame 0: not in this map
    expect(v.local({ layer: 3, position: 0 })).toEqual({ layer: 3, position: 0 });
  });

  it("maps head x position per frame (the selected head's values) and tubes over the grid", () => {
    const d = readPatching(getter(clip("head_position")));
    const v = mapView(d, 1, null);
    expect(v.data.cellShape).toEqual([P + R * C, H]);
    expect(valueAt(v.data, 1, (P + 1) * H + 1)).toBeCloseTo(valueAt(d, 1, (P + R * C + 1) * H + 1), 6);
    expect(v.global(0, P + 1, 1)).toEqual({ layer: 0, position: P + R * C + 1, head: 1 });
    const t = readPatching(getter(clip("tube")));
    const tv = mapView(t, 0, null);
    expect([tv.data.by, tv.data.T, tv.data.nPrefix]).toEqual(["position", R * C, 0]);
    expect(valueAt(tv.data, 1, 3)).toBe(valueAt(t, 1, 3));
    expect(tv.local({ layer: 0, tube: 2 })).toEqual({ layer: 0, position: 2 });
    expect(tv.global(1, 2, 0)).toEqual({ layer: 3, tube: 2 });
  });

  it("reads a clip whose tokens are not frame-major (TimeSformer: all frames of a patch together) from its labels", () => {
    const s = clip("position");
    const labels = ["CLS"];
    for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) for (let f = 0; f < F; f++) labels.push(`t${f} r${r}c${c}`);
    s.token_labels = labels;
    const d = readPatching(getter(s));
    expect(frameMajor(d)).toBe(false);
    expect(frameMajor(readPatching(getter(clip("position"))))).toBe(true);
    // frame 1: CLS, then patch (r, c) at token 1 + (r * C + c) * F + 1
    expect(Array.from(frameIndex(d, 1))).toEqual([0, 2, 5, 8, 11]);
    const v = mapView(d, 1, null);
    expect(v.data.tokenLabels).toEqual(["CLS", "t1 r0c0", "t1 r0c1", "t1 r1c0", "t1 r1c1"]);
    expect(valueAt(v.data, 1, 3)).toBeCloseTo(valueAt(d, 1, 8), 6);
    expect(v.global(0, 3, 0)).toEqual({ layer: 0, position: 8 });
    expect(v.local({ layer: 0, position: 11 })).toEqual({ layer: 0, position: 4 });
    expect(columnsCaption(d, P)).toContain("model's token order");
  });
});
