import { describe, expect, it } from "vitest";
import { lut } from "../src/shared/colormap";
import { drawImageIn, drawImageOrGrey, drawImageOverGrey, insetRect, outlinePatch, placeholderGrey } from "../src/shared/marks";
import { cssRgb, lutRgb, paintBlock, paintRgbBlock, rgbOfValues } from "../src/shared/raster";

const id = (v: number) => v;
const greys = lut("greys"); // t -> 255 - round(255 t): white at 0, black at 1

/** A canvas context that records what is drawn, with the stroke/fill state at each call. */
function recorder() {
  const calls: { op: string; args: unknown[]; strokeStyle: string; fillStyle: string; lineWidth: number; smoothing: boolean }[] = [];
  const ctx = {
    strokeStyle: "",
    fillStyle: "",
    lineWidth: 1,
    imageSmoothingEnabled: false,
  };
  const record = (op: string) => (...args: unknown[]) =>
    calls.push({ op, args, strokeStyle: ctx.strokeStyle, fillStyle: ctx.fillStyle, lineWidth: ctx.lineWidth, smoothing: ctx.imageSmoothingEnabled });
  Object.assign(ctx, { strokeRect: record("strokeRect"), fillRect: record("fillRect"), drawImage: record("drawImage") });
  return { ctx: ctx as unknown as CanvasRenderingContext2D, calls };
}

describe("paintBlock", () => {
  it("writes the exact RGBA of the colour table, clamping and NaN at the ends", () => {
    const target = { data: new Uint8ClampedArray(6 * 4), width: 6 };
    paintBlock(target, [0, 0.5, 1, -1, 2, NaN], { rows: 1, cols: 6 }, id, greys);
    expect(Array.from(target.data)).toEqual([
      255, 255, 255, 255, // t = 0: white
      127, 127, 127, 255, // t = 0.5: index round(127.5) = 128 -> 255 - 128
      0, 0, 0, 255, // t = 1: black
      255, 255, 255, 255, // below the range: index 0
      0, 0, 0, 255, // above: index 255
      255, 255, 255, 255, // NaN: index 0
    ]);
  });

  it("uses the published end colours of viridis", () => {
    const target = { data: new Uint8ClampedArray(8), width: 2 };
    paintBlock(target, [0, 1], { rows: 1, cols: 2 }, id, lut("viridis"));
    expect(Array.from(target.data)).toEqual([0x44, 0x01, 0x54, 255, 0xfd, 0xe7, 0x25, 255]);
  });

  it("places a block from `start` at (x, y) of a wider image and touches nothing else", () => {
    // a 4 x 3 image; values 0..9, the block takes values 4..9 as 2 rows x 3 cols into the bottom-right corner
    const target = { data: new Uint8ClampedArray(4 * 3 * 4), width: 4 };
    const values = Array.from({ length: 10 }, (_, i) => i);
    paintBlock(target, values, { rows: 2, cols: 3, start: 4, x: 1, y: 1 }, (v) => v / 9, greys);
    const at = (x: number, y: number) => Array.from(target.data.slice((y * 4 + x) * 4, (y * 4 + x) * 4 + 4));
    for (const [x, y] of [[0, 0], [1, 0], [2, 0], [3, 0], [0, 1], [0, 2]]) expect(at(x, y)).toEqual([0, 0, 0, 0]);
    for (let r = 0; r < 2; r++) {
      for (let c = 0; c < 3; c++) {
        const g = 255 - Math.round((255 * (4 + r * 3 + c)) / 9);
        expect(at(1 + c, 1 + r)).toEqual([g, g, g, 255]);
      }
    }
    expect(at(3, 2)).toEqual([0, 0, 0, 255]); // the last pixel of the image: value 9, t = 1
  });

  it("takes the alpha from the value and its colour position", () => {
    const target = { data: new Uint8ClampedArray(8), width: 2 };
    paintBlock(target, [0, 0.5], { rows: 1, cols: 2 }, id, greys, (v, t) => (v > 0 ? Math.round(200 * t) : 0));
    expect(Array.from(target.data)).toEqual([255, 255, 255, 0, 127, 127, 127, 100]);
  });
});

describe("RGB helpers", () => {
  it("copies RGB triples from `start` into opaque pixels", () => {
    const rgb = [1, 2, 3, 10, 20, 30, 40, 50, 60, 70, 80, 90];
    const target = { data: new Uint8ClampedArray(3 * 4), width: 3 };
    paintRgbBlock(target, rgb, { rows: 1, cols: 3, start: 1 });
    expect(Array.from(target.data)).toEqual([10, 20, 30, 255, 40, 50, 60, 255, 70, 80, 90, 255]);
  });

  it("maps values to RGB triples, one per value", () => {
    expect(Array.from(rgbOfValues([0, 1], id, greys))).toEqual([255, 255, 255, 0, 0, 0]);
    expect(Array.from(rgbOfValues(new Float32Array([2, 3]), (v) => v - 2, greys))).toEqual([255, 255, 255, 0, 0, 0]);
  });

  it("reads one colour and writes it as CSS", () => {
    expect(lutRgb(greys, 0.5)).toEqual([127, 127, 127]);
    expect(lutRgb(lut("viridis"), 1)).toEqual([0xfd, 0xe7, 0x25]);
    expect(cssRgb([1, 2, 3])).toBe("rgb(1, 2, 3)");
    expect(cssRgb(new Uint8ClampedArray([4, 5, 6]))).toBe("rgb(4, 5, 6)");
  });
});

describe("marks", () => {
  it("picks the placeholder grey by theme", () => {
    expect(placeholderGrey({ dark: false })).toBe("#bbb");
    expect(placeholderGrey({ dark: true })).toBe("#444");
    expect(placeholderGrey({ dark: true }, "#555")).toBe("#555");
    expect(placeholderGrey({ dark: false }, "#555")).toBe("#bbb");
  });

  it("fills the grey placeholder where there is no image, else draws the image smoothed", () => {
    const r = { x: 2, y: 3, w: 40, h: 30 };
    const a = recorder();
    drawImageOrGrey(a.ctx, null, r, "#bbb");
    expect(a.calls).toEqual([expect.objectContaining({ op: "fillRect", args: [2, 3, 40, 30], fillStyle: "#bbb" })]);
    const b = recorder();
    const image = {} as HTMLCanvasElement;
    drawImageOrGrey(b.ctx, image, r, "#bbb");
    expect(b.calls).toEqual([expect.objectContaining({ op: "drawImage", args: [image, 2, 3, 40, 30], smoothing: true })]);
  });

  it("draws the image over the grey when asked (the grey shows through transparency)", () => {
    const r = { x: 0, y: 0, w: 8, h: 8 };
    const image = {} as HTMLCanvasElement;
    const a = recorder();
    drawImageOverGrey(a.ctx, image, r, "#444");
    expect(a.calls.map((c) => c.op)).toEqual(["fillRect", "drawImage"]);
    expect(a.calls[0].fillStyle).toBe("#444");
    const b = recorder();
    drawImageOverGrey(b.ctx, null, r, "#444");
    expect(b.calls.map((c) => c.op)).toEqual(["fillRect"]);
    const c = recorder();
    drawImageIn(c.ctx, image, r);
    expect(c.calls).toEqual([expect.objectContaining({ op: "drawImage", smoothing: true })]);
  });

  it("outlines a patch black (3 px) under the colour (2 px), pulled in by the inset", () => {
    const r = { x: 10, y: 20, w: 16, h: 12 };
    for (const inset of [0, 0.5, 1]) {
      const { ctx, calls } = recorder();
      outlinePatch(ctx, r, "#e8590c", inset);
      const rect = [10 + inset, 20 + inset, 16 - 2 * inset, 12 - 2 * inset];
      expect(calls).toEqual([
        expect.objectContaining({ op: "strokeRect", args: rect, strokeStyle: "#000", lineWidth: 3 }),
        expect.objectContaining({ op: "strokeRect", args: rect, strokeStyle: "#e8590c", lineWidth: 2 }),
      ]);
    }
    expect(insetRect(r, 2)).toEqual({ x: 12, y: 22, w: 12, h: 8 });
  });
});
