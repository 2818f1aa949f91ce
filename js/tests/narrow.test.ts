// Issue 17's pure pieces: the grid fitted to a width, the detail matrix' zoom window and ticks, prompt
// colours by text, the words that tell prompts apart, dark diverging maps.
import { describe, expect, it } from "vitest";
import { computeGridLayout, fitThumbWidth, matrixTicks, matrixWindow, placeGrid } from "../src/attention_grid/layout";
import { OTHER, PALETTE, colourSlots, distinctNames, hashText } from "../src/logit_lens/layout";
import { lut, luminance } from "../src/shared/colormap";

describe("grid fitted to the widget's width", () => {
  it("keeps the requested thumbnail when it fits, shrinks it when not", () => {
    expect(fitThumbWidth(2000, 12, 64)).toBe(64);
    const w = fitThumbWidth(526, 12, 64);
    expect(w).toBeLessThan(64);
    // the layout at that width fits (labels 34 px, gaps 6 px)
    const L = computeGridLayout({ nLayers: 12, nHeads: 12, nRollout: 0, thumbW: w, thumbH: w, nPrefix: 1 });
    expect(L.width).toBeLessThanOrEqual(526);
    expect(fitThumbWidth(526, 13, 64)).toBeLessThan(w);
    expect(fitThumbWidth(50, 12, 64)).toBe(16); // never below the minimum
    expect(fitThumbWidth(0, 12, 64)).toBe(64); // not laid out yet: as asked
  });

  it("puts ViT-B/16's 12 heads beside the side column at 800 px, below it when too narrow", () => {
    const at800 = placeGrid(768, 224, 12, 64);
    expect(at800.beside).toBe(true);
    expect(at800.thumbW).toBeGreaterThanOrEqual(28);
    const L = computeGridLayout({ nLayers: 12, nHeads: 12, nRollout: 0, thumbW: at800.thumbW, thumbH: at800.thumbW, nPrefix: 1 });
    expect(L.width + 224 + 16).toBeLessThanOrEqual(768);
    expect(L.height).toBeLessThan(700); // 1000 px at thumb_size 64
    const narrow = placeGrid(500, 224, 12, 64);
    expect(narrow.beside).toBe(false);
    expect(computeGridLayout({ nLayers: 12, nHeads: 12, nRollout: 0, thumbW: narrow.thumbW, thumbH: narrow.thumbW, nPrefix: 1 }).width).toBeLessThanOrEqual(500);
  });
});

describe("detail matrix window and ticks", () => {
  it("zoom 1 is the whole matrix; zoomed windows follow the token and stay inside", () => {
    expect(matrixWindow(197, 1, 100, 100)).toEqual({ q0: 0, k0: 0, n: 197 });
    expect(matrixWindow(197, 4, 0, 0)).toEqual({ q0: 0, k0: 0, n: 50 });
    const mid = matrixWindow(197, 4, 100, 100);
    expect(mid.q0).toBeLessThanOrEqual(100);
    expect(mid.q0 + mid.n).toBeGreaterThan(100);
    expect(matrixWindow(197, 4, 196, 196)).toEqual({ q0: 147, k0: 147, n: 50 });
  });

  it("ticks start at the window and step by round numbers", () => {
    expect(matrixTicks(0, 197)).toEqual([0, 50, 100, 150]);
    expect(matrixTicks(147, 50)).toEqual([147, 160, 180]);
    const t = matrixTicks(147, 50);
    expect(t[0]).toBe(147);
    for (const x of t) expect(x).toBeLessThan(197);
    expect(new Set(t).size).toBe(t.length);
  });
});

describe("prompt colours by text", () => {
  const prompts = ["a photo of a cat", "a photo of a dog", "a photo of a car", "a photo of grass"];

  it("gives distinct colours that do not depend on order or on the other prompts", () => {
    const slots = colourSlots(prompts);
    expect(new Set(slots).size).toBe(4);
    const reversed = colourSlots([...prompts].reverse());
    expect(reversed).toEqual([...slots].reverse());
    // without the first prompt, the others keep theirs (no collision among these four)
    expect(colourSlots(prompts.slice(1))).toEqual(slots.slice(1));
  });

  it("remembers a prompt's slot across edits, and runs out into OTHER", () => {
    const memory = new Map<string, number>([["a photo of a dog", 7]]);
    expect(colourSlots(["a photo of a dog", "a photo of a cow"], memory)[0]).toBe(7);
    const many = Array.from({ length: PALETTE.length + 3 }, (_, i) => `prompt ${i}`);
    const s = colourSlots(many);
    expect(s.filter((x) => x >= 0).length).toBe(PALETTE.length);
    expect(s.filter((x) => x < 0).length).toBe(3);
    expect(OTHER).toHaveLength(3);
    expect(hashText("cat")).toBe(hashText("cat"));
    expect(hashText("cat")).not.toBe(hashText("dog"));
  });
});

describe("distinguishing words", () => {
  it("drops the shared prefix (and an article after it)", () => {
    expect(distinctNames(["a photo of a cat", "a photo of a dog", "a photo of a car", "a photo of grass"])).toEqual(["cat", "dog", "car", "grass"]);
    expect(distinctNames(["a cat on grass", "a dog on grass"])).toEqual(["cat", "dog"]);
    expect(distinctNames(["tabby cat", "tiger cat"])).toEqual(["tabby", "tiger"]);
    expect(distinctNames(["goldfish", "great white shark"])).toEqual(["goldfish", "great white shark"]);
    expect(distinctNames(["only one"])).toEqual(["only one"]);
    expect(distinctNames(["a photo of a cat", "a photo of a cat in snow"])).toEqual(["cat", "cat in snow"]);
  });
});

describe("dark diverging maps", () => {
  it("are dark at 0 and brightest at the ends; light maps unchanged", () => {
    for (const name of ["rdbu", "puor"]) {
      const t = lut(name, true);
      const at = (i: number) => luminance([t[i * 4], t[i * 4 + 1], t[i * 4 + 2]]);
      expect(at(128)).toBeLessThan(0.05);
      expect(at(0)).toBeGreaterThan(at(64));
      expect(at(255)).toBeGreaterThan(at(192));
      expect(luminance([lut(name)[128 * 4], lut(name)[128 * 4 + 1], lut(name)[128 * 4 + 2]])).toBeGreaterThan(0.8);
    }
    expect(lut("viridis", true)).toBe(lut("viridis"));
  });
});
