import { describe, expect, it } from "vitest";
import { encode } from "../src/shared/codec";
import { clipToken, framePixels, frameTokens, gatherTokens, localToken, nextFrame, tokenFrame } from "../src/shared/frames";
import type { LensData } from "../src/logit_lens/data";
import { sliceLens } from "../src/logit_lens/frames";

// a clip: 1 prefix token + 3 frames of 2x2 patches = 13 tokens
const P = 1, R = 2, C = 2, F = 3, T = P + F * R * C;

describe("clip token mapping", () => {
  it("lists a frame's tokens, prefix first", () => {
    expect(Array.from(frameTokens(P, R, C, 0))).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(frameTokens(P, R, C, 2))).toEqual([0, 9, 10, 11, 12]);
    expect(Array.from(frameTokens(0, R, C, 1))).toEqual([4, 5, 6, 7]);
  });

  it("maps clip tokens to positions in their frame and back", () => {
    for (let t = 0; t < T; t++) {
      const f = tokenFrame(t, P, R, C);
      const local = localToken(t, P, R, C);
      expect(clipToken(local, P, R, C, Math.max(f, 0))).toBe(t);
    }
    expect(tokenFrame(0, P, R, C)).toBe(-1);
    expect(tokenFrame(12, P, R, C)).toBe(2);
    expect(localToken(10, P, R, C)).toBe(2); // t2 r0c1 is r0c1 of its frame
    expect(clipToken(2, P, R, C, 1)).toBe(6); // ... and r0c1 of frame 1 is token 6
    expect([nextFrame(0, 3), nextFrame(2, 3), nextFrame(0, 0)]).toEqual([1, 0, 0]);
  });

  it("gathers tokens out of [outer, T, inner] arrays, keeping the type", () => {
    const a = Uint16Array.from({ length: 2 * T * 2 }, (_, i) => i);
    const g = gatherTokens(a, 2, T, 2, Int32Array.from([0, 9]));
    expect(g).toBeInstanceOf(Uint16Array);
    expect(Array.from(g)).toEqual([0, 1, 18, 19, 26, 27, 44, 45]);
  });

  it("reads one frame's image out of frame_pixels", () => {
    const px = Uint8Array.from({ length: F * 2 * 2 * 3 }, (_, i) => i);
    const f1 = framePixels(encode(px, [F, 2, 2, 3], "uint8"), 1)!;
    expect([f1.H, f1.W, f1.C]).toEqual([2, 2, 3]);
    expect(Array.from(f1.data)).toEqual(Array.from({ length: 12 }, (_, i) => 12 + i));
    expect(framePixels({}, 0)).toBeNull();
    expect(framePixels(encode(px, [F * 4, 3], "uint8"), 0)).toBeNull();
  });
});

describe("a clip's lens, one frame at a time", () => {
  const L = 2, K = 2, n = 1;
  // every value names its layer and token, so the slice shows which tokens it took
  const tok = (len: number, per: number, f: (l: number, t: number, k: number) => number) =>
    Float32Array.from({ length: len }, (_, i) => f(Math.floor(i / (T * per)), Math.floor(i / per) % T, i % per));
  const d: LensData = {
    L, T, K, rows: R, cols: C, nPrefix: P, layers: [0, 1],
    tokenLabels: ["CLS", ...Array.from({ length: F * R * C }, (_, i) => `t${Math.floor(i / 4)} r${Math.floor((i % 4) / 2)}c${i % 2}`)],
    classNames: ["a", "b"], shortNames: ["a", "b"], classIds: [0], colours: [[0, 0, 0]], maxEntropy: Math.log(2),
    topIdx: tok(L * T * K, K, (_l, t, k) => (t + k) % 2),
    topQ: tok(L * T * K, K, (l, t, k) => 100 * l + t + k),
    topScale: tok(L * T, 1, (l, t) => 100 * l + t),
    entropy: tok(L * T, 1, (l, t) => 100 * l + t),
    kl: tok(L * T, 1, (l, t) => 100 * l + t),
    rank: tok(L * T, 1, (l, t) => 100 * l + t),
    classQ: tok(L * n * T, 1, (l, t) => 100 * l + t),
    classScale: Float32Array.from([1, 1]),
    trackIdx: Float32Array.from({ length: T * K }, (_, i) => Math.floor(i / K)),
    trackQ: Float32Array.from({ length: T * K * L }, (_, i) => Math.floor(i / (K * L))),
    trackScale: Float32Array.from({ length: T }, (_, t) => t),
    pixels: null,
  };

  it("keeps the prefix tokens and the frame's patches, in order", () => {
    const s = sliceLens(d, 2, { data: new Uint8Array(12), H: 2, W: 2, C: 3 });
    expect(s.T).toBe(5);
    expect(s.tokenLabels).toEqual(["CLS", "t2 r0c0", "t2 r0c1", "t2 r1c0", "t2 r1c1"]);
    expect(Array.from(s.entropy)).toEqual([0, 9, 10, 11, 12, 100, 109, 110, 111, 112]);
    expect(Array.from(s.classQ)).toEqual([0, 9, 10, 11, 12, 100, 109, 110, 111, 112]);
    expect(Array.from(s.topQ).slice(0, 4)).toEqual([0, 1, 9, 10]);
    expect(Array.from(s.trackScale)).toEqual([0, 9, 10, 11, 12]);
    expect(Array.from(s.trackQ).slice(4, 8)).toEqual([9, 9, 9, 9]);
    expect(s.pixels?.H).toBe(2);
    expect(sliceLens(d, 0, null).pixels).toBeNull();
  });
});
