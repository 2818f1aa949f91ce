// FeatureGallery's per-feature histograms: its activations (over the tokens of a random sample of the images
// where it fires) and its direct effect on every class logit. Python bins them (act_hist_*, effect_hist_*,
// one row per detail feature); this reads a row and paints bars on a canvas (text as canvas text).
import { sizeCanvas } from "../shared/canvas";
import { decode, type EncodedArray } from "../shared/codec";
import { formatValue } from "../shared/scale";
import type { Theme } from "../shared/theme";
import type { TraitSource } from "../shared/traits";
import type { FeatureGalleryTraits } from "./traits";

export interface Histogram {
  counts: number[];
  edges: number[];
}

type Key = "act_hist_counts" | "act_hist_edges" | "effect_hist_counts" | "effect_hist_edges";

/** The histogram of detail feature `feature` from a counts / edges trait pair, or null (none sent, or empty). */
export function readHistogram(m: TraitSource<FeatureGalleryTraits>, feature: number, counts: Key, edges: Key): Histogram | null {
  const n = ((m.get("detail_features") as number[]) ?? []).indexOf(feature);
  const c = decode(m.get(counts) as EncodedArray);
  const e = decode(m.get(edges) as EncodedArray);
  if (n < 0 || !c || !e || c.shape.length !== 2 || e.shape[1] !== c.shape[1] + 1) return null;
  const B = c.shape[1];
  const out: Histogram = { counts: Array.from(c.data.subarray(n * B, (n + 1) * B), Number), edges: Array.from(e.data.subarray(n * (B + 1), (n + 1) * (B + 1)), Number) };
  return out.counts.some((x) => x > 0) ? out : null;
}

/** Bars of `h` (linear counts), the x range under them, `caption` below; a note when there is nothing. */
export function drawBars(canvas: HTMLCanvasElement, h: Histogram | null, caption: string, theme: Theme, empty: string, width = 260, height = 96): void {
  const { ctx } = sizeCanvas(canvas, width, height);
  ctx.fillStyle = theme.bg;
  ctx.fillRect(0, 0, width, height);
  ctx.font = `10px ${theme.font}`;
  ctx.textBaseline = "top";
  ctx.fillStyle = theme.muted;
  if (!h) {
    ctx.fillText(empty, 8, 8, width - 16);
    return;
  }
  const R = { x: 8, y: 6, w: width - 16, h: height - 36 };
  const top = Math.max(1, ...h.counts);
  const n = h.counts.length;
  const zero = h.edges[0] < 0 && h.edges[n] > 0 ? (-h.edges[0] / (h.edges[n] - h.edges[0])) * R.w : -1;
  h.counts.forEach((c, i) => {
    const bh = (c / top) * R.h;
    const mid = (h.edges[i] + h.edges[i + 1]) / 2;
    ctx.fillStyle = zero >= 0 ? (mid < 0 ? theme.accent2 : theme.accent) : theme.dark ? "#6b7785" : "#9aa7b5";
    ctx.fillRect(R.x + (i * R.w) / n, R.y + R.h - bh, Math.max(1, R.w / n - 1), bh);
  });
  ctx.strokeStyle = theme.grid;
  ctx.beginPath();
  ctx.moveTo(R.x, R.y + R.h + 0.5);
  ctx.lineTo(R.x + R.w, R.y + R.h + 0.5);
  if (zero >= 0) {
    ctx.moveTo(R.x + zero + 0.5, R.y);
    ctx.lineTo(R.x + zero + 0.5, R.y + R.h);
  }
  ctx.stroke();
  ctx.fillStyle = theme.muted;
  ctx.textAlign = "left";
  ctx.fillText(formatValue(h.edges[0]), R.x, R.y + R.h + 3);
  ctx.textAlign = "right";
  ctx.fillText(formatValue(h.edges[n]), R.x + R.w, R.y + R.h + 3);
  ctx.textAlign = "left";
  ctx.fillText(caption, R.x, R.y + R.h + 16, R.w);
}
