import { describe, expect, it } from "vitest";
import { COLORMAPS, COLORMAP_NAMES, colorAt, lut, lutIndex, luminance, parseHex } from "../src/shared/colormap";

describe("colour maps", () => {
  it("has sequential, diverging and colour-blind safe maps", () => {
    const kinds = new Set(COLORMAP_NAMES.map((n) => COLORMAPS[n].kind));
    expect(kinds).toEqual(new Set(["sequential", "diverging"]));
    expect(COLORMAPS.viridis.colorblindSafe).toBe(true);
    expect(COLORMAPS.puor.kind).toBe("diverging");
  });

  it("builds 256-entry opaque LUTs whose ends are the first and last stops", () => {
    for (const name of COLORMAP_NAMES) {
      const t = lut(name);
      expect(t.length).toBe(1024);
      expect(Array.from(t.subarray(0, 3))).toEqual(parseHex(COLORMAPS[name].stops[0]));
      expect(Array.from(t.subarray(1020, 1023))).toEqual(parseHex(COLORMAPS[name].stops[COLORMAPS[name].stops.length - 1]));
      for (let i = 3; i < 1024; i += 4) expect(t[i]).toBe(255);
    }
  });

  it("sequential maps are monotone in luminance", () => {
    for (const name of ["viridis", "magma", "cividis"]) {
      let prev = -1;
      for (let i = 0; i <= 255; i += 5) {
        const y = luminance(colorAt(name, i / 255));
        expect(y).toBeGreaterThanOrEqual(prev - 1e-3);
        prev = y;
      }
    }
    // greys goes from white to black
    expect(luminance(colorAt("greys", 0))).toBeGreaterThan(luminance(colorAt("greys", 1)));
  });

  it("diverging maps are light in the middle and dark at both ends", () => {
    for (const name of ["puor", "rdbu"]) {
      const mid = luminance(colorAt(name, 0.5));
      expect(mid).toBeGreaterThan(0.8);
      expect(luminance(colorAt(name, 0))).toBeLessThan(0.2);
      expect(luminance(colorAt(name, 1))).toBeLessThan(0.2);
    }
  });

  it("clamps t and maps NaN to the bottom", () => {
    expect(lutIndex(-1)).toBe(0);
    expect(lutIndex(NaN)).toBe(0);
    expect(lutIndex(2)).toBe(255);
    expect(lutIndex(0.5)).toBe(128);
    expect(colorAt("unknown-name", 0)).toEqual(colorAt("viridis", 0));
  });
});
