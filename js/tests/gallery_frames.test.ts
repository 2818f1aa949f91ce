import { describe, expect, it } from "vitest";
import { encode } from "../src/shared/codec";
import { clipTokenOf, readFrameStrips } from "../src/feature_gallery/frames";

// 2 detail features, 3 top clips, 4 frames; the second feature's third clip is missing (-1)
function state(frames = 4): Record<string, unknown> {
  const values = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => (i * 7) % 5);
  const images = Int32Array.from({ length: 2 * 3 * 4 }, (_, i) => (i >= 20 ? -1 : i));
  return {
    frames,
    detail_features: [5, 9],
    detail_frame_values: encode(values, [2, 3, 4], "float32"),
    detail_frame_images: encode(images, [2, 3, 4], "int32"),
  };
}

const getter = (s: Record<string, unknown>) => ({ get: (k: string) => s[k] });

describe("readFrameStrips", () => {
  it("reads each top clip's frames, their maxima and the peak frame", () => {
    const strips = readFrameStrips(getter(state()), 9);
    expect(strips.length).toBe(2); // the missing clip is left out
    expect(strips[0].images).toEqual([12, 13, 14, 15]);
    expect(strips[0].values).toEqual([12, 13, 14, 15].map((i) => (i * 7) % 5));
    const v = strips[0].values;
    expect(strips[0].peak).toBe(v.indexOf(Math.max(...v)));
  });

  it("is empty for images, an unknown feature or mismatched arrays", () => {
    expect(readFrameStrips(getter(state(1)), 5)).toEqual([]);
    expect(readFrameStrips(getter(state()), 7)).toEqual([]);
    const s = state();
    s.detail_frame_images = encode(new Int32Array(8), [2, 1, 4], "int32");
    expect(readFrameStrips(getter(s), 5)).toEqual([]);
  });
});

describe("clipTokenOf", () => {
  it("names the clip token of a patch shown at an image's frame (prefix tokens and images unchanged)", () => {
    const s = { frames: 4, image_frames: [0, 2], grid: [2, 3], n_prefix_tokens: 1 };
    expect(clipTokenOf(getter(s), 1, 1 + 4)).toBe(1 + 2 * 6 + 4);
    expect(clipTokenOf(getter(s), 0, 3)).toBe(3);
    expect(clipTokenOf(getter(s), 1, 0)).toBe(0);
    expect(clipTokenOf(getter({ ...s, frames: 1 }), 1, 5)).toBe(5);
  });
});
