import { describe, expect, it } from "vitest";
import { encode } from "../src/shared/codec";
import {
  SITE_BYS,
  cellOf,
  cellTitle,
  centredScale,
  className,
  columnCell,
  columnOf,
  gridColumns,
  hasMaps,
  paintPatch,
  patchedTop,
  readPatching,
  selectionOf,
  tokenValues,
  topOf,
  valueAt,
} from "../src/patching_heatmap/data";
import { PREFIX_GAP, cellAtPoint, cellRect, colX, heatLayout, labelStep, mapLayout, prefixAt } from "../src/patching_heatmap/layout";

// 3 layers, 1 prefix + 2x2 patches = 5 tokens, 2 heads, 4 classes
const L = 3, T = 5, H = 2, K = 2;

function state(by: string, extra: Record<string, unknown> = {}, offsetBytes = 0): Record<string, unknown> {
  const shape = by === "position" ? [L, T] : by === "head" ? [L, H] : by === "head_position" ? [L, T, H] : [L];
  const n = shape.reduce((a, b) => a * b, 1);
  const values = Float32Array.from({ length: n }, (_, i) => (i % 2 ? -1 : 1) * (i / 10));
  // an unaligned, offset view: the codec must honour byteOffset
  const shifted = new Uint8Array(offsetBytes + values.byteLength);
  shifted.set(new Uint8Array(values.buffer), offsetBytes);
  const axes = { position: ["layer", "position"], head: ["layer", "head"], head_position: ["layer", "position", "head"], layer: ["layer"] }[by];
  return {
    by,
    axes,
    values: { view: new DataView(shifted.buffer, offsetBytes, values.byteLength), dtype: "float32", shape },
    layer_indices: [2, 5, 9],
    token_labels: ["CLS", "r0c0", "r0c1", "r1c0", "r1c1"],
    head_labels: ["H0", "H1"],
    grid: [2, 2],
    n_prefix_tokens: 1,
    class_names: ["circle", "<b>square</b>", "star", "ring"],
    clean_top: { indices: [0, 2], probs: [0.9, 0.05] },
    corrupted_top: { indices: [1, 0], probs: [0.7, 0.2] },
    image_pixels: encode(new Uint8Array(4 * 4 * 3).fill(7), [4, 4, 3], "uint8"),
    corrupted_pixels: {},
    cell_top_indices: {},
    cell_top_probs: {},
    ...extra,
  };
}

const getter = (s: Record<string, unknown>) => ({ get: (k: string) => s[k] });

describe("readPatching", () => {
  it("decodes values exactly (offset view) and the layout", () => {
    const d = readPatching(getter(state("position", {}, 3)));
    expect(d.L).toBe(3);
    expect(d.T).toBe(5);
    expect(d.nCells).toBe(5);
    expect(d.layers).toEqual([2, 5, 9]);
    expect(valueAt(d, 1, 2)).toBeCloseTo(-0.7, 6);
    expect(d.pixels?.H).toBe(4);
    expect(d.corrupted).toBeNull();
    expect(d.table).toBeNull();
    expect(d.cleanTop).toEqual([{ cls: 0, prob: 0.9 }, { cls: 2, prob: 0.05 }]);
    expect(className(d, 1)).toBe("<b>square</b>"); // text, drawn with textContent
    expect(className(d, 9)).toBe("class 9");
  });

  it("refuses a result that does not fit its axes or grid", () => {
    expect(() => readPatching(getter(state("position", { axes: ["layer", "head"] })))).toThrow(/axes/);
    expect(() => readPatching(getter(state("position", { grid: [3, 3] })))).toThrow(/tokens do not fit/);
    expect(() => readPatching(getter(state("position", { values: {} })))).toThrow(/no patching result/);
    expect(() => readPatching(getter(state("head", { layer_indices: [0] })))).toThrow(/layer indices/);
  });

  it("reads the precomputed predictions table when it matches", () => {
    const n = L * T * K;
    const idx = Uint8Array.from({ length: n }, (_, i) => i % 4);
    const p = Float32Array.from({ length: n }, (_, i) => i / 100);
    const s = state("position", {
      cell_top_indices: encode(idx, [L, T, K], "uint8"),
      cell_top_probs: encode(p, [L, T, K], "float32"),
    });
    const d = readPatching(getter(s));
    expect(d.table?.K).toBe(2);
    const top = patchedTop(d, 1, 3, {});
    const base = (1 * T + 3) * K;
    expect(top).toEqual([
      { cls: base % 4, prob: p[base] },
      { cls: (base + 1) % 4, prob: p[base + 1] },
    ]);
    // a table of the wrong shape is ignored
    const bad = readPatching(getter({ ...s, cell_top_indices: encode(idx.slice(0, 6), [1, 3, 2], "uint8") }));
    expect(bad.table).toBeNull();
  });
});

describe("selection and cells", () => {
  it("maps selections to flat cells and back for every by", () => {
    for (const by of ["position", "head", "head_position", "layer"]) {
      const d = readPatching(getter(state(by)));
      for (let lp = 0; lp < d.L; lp++)
        for (let cell = 0; cell < d.nCells; cell++) {
          const sel = selectionOf(d, lp, cell);
          expect(cellOf(d, sel)).toEqual({ lp, cell });
        }
    }
    const hp = readPatching(getter(state("head_position")));
    expect(selectionOf(hp, 2, 7)).toEqual({ layer: 9, position: 3, head: 1 });
    expect(cellOf(hp, { layer: 9, position: 3, head: 1 })).toEqual({ lp: 2, cell: 7 });
    expect(cellOf(hp, { layer: 9, position: 3 })).toBeNull();
    expect(cellOf(hp, { layer: 4, position: 0, head: 0 })).toBeNull();
    expect(cellOf(hp, { layer: 2, position: 5, head: 0 })).toBeNull();
  });

  it("lays out heatmap columns per by and finds the column of a selection", () => {
    const pos = readPatching(getter(state("position")));
    expect(gridColumns(pos)).toEqual({ nCols: 5, nPrefixCols: 1 });
    expect(hasMaps(pos)).toBe(true);
    const head = readPatching(getter(state("head")));
    expect(gridColumns(head)).toEqual({ nCols: 2, nPrefixCols: 0 });
    expect(hasMaps(head)).toBe(false);
    expect(columnOf(head, { layer: 2, head: 1 })).toEqual({ col: 1, head: 1 });
    const hp = readPatching(getter(state("head_position")));
    expect(columnCell(hp, 3, 1)).toBe(7);
    expect(columnOf(hp, { layer: 2, position: 3, head: 1 })).toEqual({ col: 3, head: 1 });
    const tv = tokenValues(hp, 1, 1);
    for (let t = 0; t < T; t++) expect(tv[t]).toBeCloseTo(valueAt(hp, 1, t * H + 1), 6);
    const layer = readPatching(getter(state("layer")));
    expect(gridColumns(layer)).toEqual({ nCols: 1, nPrefixCols: 0 });
    expect(columnCell(layer, 0, 0)).toBe(0);
  });

  it("titles a cell with its labels", () => {
    const hp = readPatching(getter(state("head_position")));
    expect(cellTitle(hp, { layer: 5, position: 0, head: 1 })).toBe("layer 5 · CLS · H1");
    expect(cellTitle(hp, { layer: 9 })).toBe("layer 9");
  });

  it("uses selected_top only for the cell it was computed for", () => {
    const d = readPatching(getter(state("head")));
    const st = { layer: 1, cell: 0, indices: [3, 1], probs: [0.6, 0.3] };
    expect(patchedTop(d, 1, 0, st)).toEqual([{ cls: 3, prob: 0.6 }, { cls: 1, prob: 0.3 }]);
    expect(patchedTop(d, 1, 1, st)).toBeNull();
    expect(patchedTop(d, 0, 0, {})).toBeNull();
    expect(topOf(null)).toEqual([]);
  });
});

describe("centred colour scale", () => {
  it("is symmetric around 0 with true values", () => {
    const s = centredScale([0.5, -2, 1], "global");
    expect([s.lo, s.hi, s.max, s.clipped]).toEqual([-2, 2, 2, false]);
    expect(s.map(0)).toBe(0.5);
    expect(s.map(-2)).toBe(0);
    expect(s.map(1)).toBe(0.75);
  });
  it("fixes the range to ±1 in unit mode and says when it clips", () => {
    const s = centredScale([0.5, -2, 1], "unit");
    expect([s.lo, s.hi, s.clipped]).toEqual([-1, 1, true]);
    expect(s.map(-2)).toBe(0);
    expect(s.map(0.5)).toBe(0.75);
    expect(centredScale([0, 0], "global").map(0)).toBe(0.5);
  });
});

describe("layout", () => {
  it("puts the prefix columns apart from the patch columns", () => {
    const g = heatLayout(3, 5, 1, 300);
    expect(g.gap).toBe(PREFIX_GAP);
    expect(colX(g, 1) - colX(g, 0)).toBe(g.cellW + PREFIX_GAP);
    for (let row = 0; row < 3; row++)
      for (let col = 0; col < 5; col++) {
        const r = cellRect(g, row, col);
        expect(cellAtPoint(g, r.x + r.w / 2, r.y + r.h / 2)).toEqual({ row, col });
      }
    const gapX = colX(g, 0) + g.cellW + PREFIX_GAP / 2;
    expect(cellAtPoint(g, gapX, g.y0 + 1)).toBeNull();
    expect(cellAtPoint(g, 1, g.y0 + 1)).toBeNull();
    expect(cellAtPoint(g, colX(g, 2), g.y0 + 3 * g.cellH + 1)).toBeNull();
    expect(heatLayout(2, 4, 0, 300).gap).toBe(0);
  });
  it("keeps cells within bounds for many columns and thins labels", () => {
    const g = heatLayout(12, 197, 1, 700);
    expect(g.cellW).toBeGreaterThanOrEqual(3);
    expect(g.width).toBeLessThanOrEqual(Math.max(700, 52 + 197 * 3 + 16));
    expect(labelStep(g.cellW, 28) * g.cellW).toBeGreaterThanOrEqual(32);
    expect(labelStep(40, 28)).toBe(1);
  });
  it("stacks prefix cells right of each map", () => {
    const m = mapLayout(100, 100, 2);
    expect(m.prefix[0].x).toBeGreaterThan(100);
    expect(prefixAt(m, m.prefix[1].x + 1, m.prefix[1].y + 1)).toBe(1);
    expect(prefixAt(m, 50, 50)).toBe(-1);
    expect(mapLayout(80, 60, 0).width).toBe(80);
  });
});

describe("painting", () => {
  it("adds and removes patches, sorted and unique", () => {
    expect(paintPatch([3, 1], 2, true)).toEqual([1, 2, 3]);
    expect(paintPatch([1, 2, 3], 2, false)).toEqual([1, 3]);
    expect(paintPatch([1], 1, true)).toEqual([1]);
  });
  it("knows which by applies to which site", () => {
    expect(SITE_BYS.resid_pre).not.toContain("head");
    expect(SITE_BYS.z).toContain("head_position");
  });
});

describe("method help", () => {
  it("never calls attribution fast where it measured no faster (few cells)", async () => {
    const { methodHelp } = await import("../src/patching_heatmap/toolbar");
    expect(methodHelp("attribution", 4)).toContain("no faster than exact");
    expect(methodHelp("attribution", 16)).toContain("no faster than exact");
    expect(methodHelp("attribution", 260)).toContain("faster than exact");
    expect(methodHelp("attribution", 260)).not.toContain("no faster");
    for (const n of [0, 4, 260]) expect(methodHelp("attribution", n)).not.toContain("preview");
    expect(methodHelp("exact", 260)).toContain("260 cells");
  });
});

describe("heat target width", () => {
  it("grows with the token count, fits the room, and keeps the panel beside it when there is room", async () => {
    const { heatTarget, heatLayout, COMFORTABLE_CELL, PANEL_ROOM } = await import("../src/patching_heatmap/layout");
    expect(heatTarget(65, 560, 0)).toBeGreaterThan(560); // 65 tokens want comfortable cells
    const wide = heatLayout(4, 65, 1, heatTarget(65, 560, 1376));
    expect(wide.cellW).toBeGreaterThanOrEqual(COMFORTABLE_CELL);
    expect(wide.width + PANEL_ROOM).toBeLessThanOrEqual(1376);
    expect(wide.cellH).toBeGreaterThanOrEqual(24); // four layers get tall rows
    const narrow = heatLayout(4, 65, 1, heatTarget(65, 560, 700));
    expect(narrow.width).toBeLessThanOrEqual(700);
    const vitB = heatLayout(12, 197, 1, heatTarget(197, 560, 760));
    expect(vitB.width).toBeLessThanOrEqual(760);
    expect(vitB.cellW).toBeGreaterThanOrEqual(3);
  });
});

describe("effect words", () => {
  it("say what 0 and 1 mean, and what values outside them mean", async () => {
    const { effectWords } = await import("../src/patching_heatmap/panel");
    expect(effectWords(0)).toContain("none");
    expect(effectWords(1)).toContain("all");
    expect(effectWords(0.63)).toBe("63% of the metric's way from the corrupted run to the clean run");
    expect(effectWords(1.69)).toContain("more than the clean run");
    expect(effectWords(-0.4)).toContain("further from the clean run");
  });
});
