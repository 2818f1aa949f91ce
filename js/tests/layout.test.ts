import { describe, expect, it } from "vitest";
import { computeGridLayout, hitTest, patchRect, patchTokenAt, prefixCellSize, thumbSize } from "../src/attention_grid/layout";
import { Stack } from "../src/attention_grid/data";
import { decode, encode } from "../src/shared/codec";

describe("grid layout", () => {
  const spec = { nLayers: 12, nHeads: 12, nRollout: 0, thumbW: 64, thumbH: 64, nPrefix: 1, gap: 6, labelW: 34, headerH: 16 };

  it("places layers x heads thumbnails without overlap", () => {
    const L = computeGridLayout(spec);
    expect(L.cells).toHaveLength(144);
    expect(L.width).toBe(34 + 12 * 70);
    const rects = L.cells.map((c) => c.thumb);
    for (let i = 0; i < rects.length; i++) {
      for (let j = i + 1; j < rects.length; j++) {
        const a = rects[i];
        const b = rects[j];
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(overlap).toBe(false);
      }
    }
    for (const r of rects) {
      expect(r.x + r.w).toBeLessThanOrEqual(L.width);
      expect(r.y + r.h).toBeLessThanOrEqual(L.height);
    }
  });

  it("adds a rollout row with its own cells", () => {
    const L = computeGridLayout({ ...spec, nLayers: 3, nHeads: 2, nRollout: 3 });
    const roll = L.cells.filter((c) => c.kind === "rollout");
    expect(roll).toHaveLength(3);
    expect(L.width).toBe(34 + 3 * 70); // widest row wins
    expect(Math.min(...roll.map((c) => c.thumb.y))).toBeGreaterThan(Math.max(...L.cells.filter((c) => c.kind === "head").map((c) => c.thumb.y)));
  });

  it("gives prefix tokens their own cells and no strip without them", () => {
    expect(prefixCellSize(64, 0)).toBe(0);
    expect(prefixCellSize(64, 1)).toBe(10);
    expect(prefixCellSize(64, 5)).toBe(10);
    expect(prefixCellSize(32, 8)).toBe(4);
    const none = computeGridLayout({ ...spec, nPrefix: 0 });
    expect(none.cells[0].thumb.y).toBe(16);
    const five = computeGridLayout({ ...spec, nPrefix: 5, nLayers: 1, nHeads: 1 });
    const c = five.cells[0];
    for (let i = 0; i < 5; i++) {
      const hit = hitTest(five, c.prefix.x + i * five.prefixSize + 1, c.prefix.y + 1, 14, 14);
      expect(hit?.token).toBe(i);
    }
  });

  it("maps pointer positions to tokens on non-square grids", () => {
    const r = { x: 10, y: 20, w: 120, h: 60 }; // 3 rows x 6 cols of 20 px patches
    expect(patchTokenAt(r, 10, 20, 3, 6, 2)).toBe(2);
    expect(patchTokenAt(r, 129.9, 79.9, 3, 6, 2)).toBe(2 + 17);
    expect(patchTokenAt(r, 50, 45, 3, 6, 2)).toBe(2 + 1 * 6 + 2);
    expect(patchTokenAt(r, 5, 45, 3, 6, 2)).toBe(-1);
    expect(patchRect(r, 2 + 8, 3, 6, 2)).toEqual({ x: 50, y: 40, w: 20, h: 20 });
    expect(patchRect(r, 1, 3, 6, 2)).toBeNull();
    const L = computeGridLayout({ ...spec, nLayers: 2, nHeads: 3, thumbW: 60, thumbH: 30 });
    const cell = L.cells[4]; // row 1, col 1
    const hit = hitTest(L, cell.thumb.x + 59, cell.thumb.y + 29, 3, 6);
    expect(hit?.cell.row).toBe(1);
    expect(hit?.cell.col).toBe(1);
    expect(hit?.token).toBe(1 + 17);
    expect(hitTest(L, 1, 1, 3, 6)).toBeNull();
  });

  it("keeps the image aspect ratio in thumbnails", () => {
    expect(thumbSize(64, 224, 224)).toEqual({ w: 64, h: 64 });
    expect(thumbSize(64, 112, 224)).toEqual({ w: 64, h: 32 });
  });
});

describe("pattern stack", () => {
  // B=1, M=2, T=3 uint8 with per-row scales
  const q = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
  const s = new Float32Array([0.5, 0.25, 1, 0.01, 0.01, 0.02]);
  const stack = new Stack(decode(encode(q, [1, 2, 3, 3], "uint8"))!, decode(encode(s, [1, 2, 3], "float32"))!);

  it("reads rows and columns with their row scales", () => {
    const out = new Float32Array(3);
    stack.fill(out, 0, 0, 1, "row");
    expect(Array.from(out)).toEqual([0, 63.75, 0]);
    stack.fill(out, 0, 1, 2, "column");
    expect(Array.from(out).map((v) => +v.toFixed(4))).toEqual([0.3, 0.6, 1.8]);
    expect(stack.value(0, 1, 2, 0)).toBeCloseTo(1.4);
    const m = stack.matrix(0, 1);
    expect(m[4]).toBeCloseTo(0.5);
  });

  it("rejects mismatched scales", () => {
    expect(() => new Stack(decode(encode(q, [1, 2, 3, 3], "uint8"))!, decode(encode(new Float32Array(2), [2], "float32")))).toThrow();
  });
});
