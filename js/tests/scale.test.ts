import { describe, expect, it } from "vitest";
import { formatValue, linearTicks, logTicks, makeScale, makeSymmetricScale, percentile } from "../src/shared/scale";

describe("scales", () => {
  it("linear maps 0..max to 0..1", () => {
    const s = makeScale("linear", [0, 0.1, 0.4]);
    expect(s.lo).toBe(0);
    expect(s.hi).toBeCloseTo(0.4);
    expect(s.map(0.2)).toBeCloseTo(0.5);
    expect(s.map(1)).toBe(1);
    expect(s.clipped).toBe(false);
  });

  it("percentile clips at the percentile and says so", () => {
    const values = Array.from({ length: 101 }, (_, i) => i / 100); // 0..1
    const s = makeScale("percentile", values, 90);
    expect(s.hi).toBeCloseTo(0.9);
    expect(s.clipped).toBe(true);
    expect(s.map(0.95)).toBe(1);
    expect(percentile([3, 1, 2], 50)).toBe(2);
    expect(percentile([0, 10], 25)).toBeCloseTo(2.5);
    expect(percentile([], 50)).toBe(0);
  });

  it("log spans at most LOG_DECADES and puts zero at the bottom", () => {
    const s = makeScale("log", [0, 1e-9, 1e-2, 1]);
    expect(s.hi).toBe(1);
    expect(s.lo).toBeCloseTo(1e-4);
    expect(s.map(0)).toBe(0);
    expect(s.map(1e-2)).toBeCloseTo(0.5);
    const narrow = makeScale("log", [0.01, 0.02, 0.04]);
    expect(narrow.lo).toBeCloseTo(0.004); // at least one decade
    expect(narrow.map(0.04)).toBe(1);
  });

  it("symmetric scale centres zero", () => {
    const s = makeSymmetricScale([-2, 1]);
    expect(s.map(0)).toBe(0.5);
    expect(s.map(-2)).toBe(0);
    expect(s.map(2)).toBe(1);
  });

  it("ticks are nice numbers inside the range", () => {
    expect(linearTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(linearTicks(0, 0.07)).toEqual([0, 0.02, 0.04, 0.06]);
    expect(logTicks(1e-4, 1)).toEqual([1e-4, 1e-3, 1e-2, 1e-1, 1]);
    expect(logTicks(0.004, 0.04)).toEqual([0.005, 0.01, 0.02]);
  });

  it("formats values compactly", () => {
    expect(formatValue(0)).toBe("0");
    expect(formatValue(0.5)).toBe("0.5");
    expect(formatValue(0.123456)).toBe("0.12");
    expect(formatValue(1e-4)).toBe("1e-4");
    expect(formatValue(2.5e-5)).toBe("2.5e-5");
    expect(formatValue(12.34)).toBe("12.3");
  });
});
