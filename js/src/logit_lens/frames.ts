// LogitLens over a clip: the lens of one token frame at a time. The clip's data (prefix + frames x rows x
// cols tokens) is sliced to the shown frame's tokens, so the map, legend, table and chart draw exactly as for
// an image; the `patch` trait stays a clip token (see ../shared/frames.ts for the mapping).
import { type FramePixels, frameTokens, gatherTokens } from "../shared/frames";
import type { LensData } from "./data";

/** The lens of token frame `frame` (prefix tokens kept), drawn over `pixels` (that frame's image). */
export function sliceLens(d: LensData, frame: number, pixels: FramePixels | null): LensData {
  const idx = frameTokens(d.nPrefix, d.rows, d.cols, frame);
  const n = d.classIds.length;
  return {
    ...d,
    T: idx.length,
    tokenLabels: Array.from(idx, (t) => d.tokenLabels[t] ?? `token ${t}`),
    topIdx: gatherTokens(d.topIdx, d.L, d.T, d.K, idx),
    topQ: gatherTokens(d.topQ, d.L, d.T, d.K, idx),
    topScale: gatherTokens(d.topScale, d.L, d.T, 1, idx),
    entropy: gatherTokens(d.entropy, d.L, d.T, 1, idx),
    kl: gatherTokens(d.kl, d.L, d.T, 1, idx),
    rank: gatherTokens(d.rank, d.L, d.T, 1, idx),
    classQ: gatherTokens(d.classQ, d.L * n, d.T, 1, idx),
    trackIdx: gatherTokens(d.trackIdx, 1, d.T, d.K, idx),
    trackQ: gatherTokens(d.trackQ, 1, d.T, d.K * d.L, idx),
    trackScale: gatherTokens(d.trackScale, 1, d.T, 1, idx),
    pixels: pixels ?? d.pixels,
  };
}
