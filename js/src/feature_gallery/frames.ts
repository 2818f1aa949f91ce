// FeatureGallery over clips (prisma_widgets/widgets/gallery_frames.py): the cards and top images already show
// each clip at the token frame where the feature peaks (Python sliced those maps). The detail adds, under the
// top clips, one strip per clip: every token frame's image with a bar of the feature's largest activation in
// that frame, the peak frame outlined. Data first (pure: vitest covers it), then the canvas.
import { decode, type EncodedArray } from "../shared/codec";
import { sizeCanvas } from "../shared/canvas";
import { drawImageOverGrey, outlinePatch, placeholderGrey } from "../shared/marks";
import { clipToken } from "../shared/frames";
import { formatValue } from "../shared/scale";
import type { Theme } from "../shared/theme";
import type { TraitSource } from "../shared/traits";
import type { ImagePool } from "./draw";
import type { FeatureGalleryTraits } from "./traits";

/** One top clip's frames: their images (positions in the image pool, -1: none) and the feature's maxima. */
export interface FrameStripData {
  images: number[];
  values: number[];
  /** the frame with the largest activation */
  peak: number;
}

/** The frame strips of `feature`'s top clips (empty for images, or when the view does not hold the feature). */
export function readFrameStrips(m: TraitSource<FeatureGalleryTraits>, feature: number): FrameStripData[] {
  if (Number(m.get("frames") ?? 1) <= 1) return [];
  const n = ((m.get("detail_features") as number[]) ?? []).indexOf(feature);
  const vals = decode(m.get("detail_frame_values") as EncodedArray);
  const imgs = decode(m.get("detail_frame_images") as EncodedArray);
  if (n < 0 || !vals || !imgs || vals.shape.length !== 3 || vals.shape.join() !== imgs.shape.join()) return [];
  const [, K, F] = vals.shape;
  const out: FrameStripData[] = [];
  for (let k = 0; k < K; k++) {
    const base = (n * K + k) * F;
    const images = Array.from(imgs.data.subarray(base, base + F), Number);
    if (images.every((p) => p < 0)) continue; // fewer top clips than top_k
    const values = Array.from(vals.data.subarray(base, base + F), Number);
    let peak = 0;
    for (let f = 1; f < F; f++) if (values[f] > values[peak]) peak = f;
    out.push({ images, values, peak });
  }
  return out;
}

/**
 * The clip token of a token `local` in the frame an image of the pool shows (an image's token is itself):
 * what the patch look-up asks for, since a clip's look-up tables hold every token of every frame.
 */
export function clipTokenOf(m: TraitSource<FeatureGalleryTraits>, pool: number, local: number): number {
  const frame = ((m.get("image_frames") as number[]) ?? [])[pool];
  if (Number(m.get("frames") ?? 1) <= 1 || frame === undefined) return local;
  const [rows, cols] = ((m.get("grid") as number[]) ?? [1, 1]).map(Number);
  return clipToken(local, Number(m.get("n_prefix_tokens") ?? 0), rows, cols, frame);
}

const BAR = 22;
const LABEL = 12;

/** Draw the strips, one row per clip: each frame's image, its bar (height: activation / the largest shown). */
export function drawFrameStrips(canvas: HTMLCanvasElement, strips: FrameStripData[], pool: ImagePool, labels: string[], size: number, theme: Theme): void {
  const F = strips[0]?.images.length ?? 0;
  const rowH = LABEL + size + BAR + 18;
  const w = Math.max(1, F * (size + 4) + 4);
  const { ctx } = sizeCanvas(canvas, w, Math.max(1, strips.length * rowH));
  ctx.fillStyle = theme.bg;
  ctx.fillRect(0, 0, w, strips.length * rowH);
  let top = 0;
  for (const s of strips) for (const v of s.values) top = Math.max(top, v);
  ctx.font = `10px ${theme.font}`;
  ctx.textBaseline = "top";
  strips.forEach((s, row) => {
    const y0 = row * rowH;
    ctx.fillStyle = theme.fg;
    ctx.textAlign = "left";
    const name = (labels[s.images[s.peak]] ?? "").replace(/ · t\d+$/, "");
    ctx.fillText(`${name}${name ? " · " : ""}peak t${s.peak} (${formatValue(s.values[s.peak])})`, 2, y0);
    for (let f = 0; f < F; f++) {
      const r = { x: 2 + f * (size + 4), y: y0 + LABEL, w: size, h: size };
      drawImageOverGrey(ctx, pool.get(s.images[f]), r, placeholderGrey(theme));
      const h = top > 0 ? Math.max(0, (s.values[f] / top) * BAR) : 0;
      ctx.fillStyle = f === s.peak ? theme.accent : theme.muted;
      ctx.fillRect(r.x, r.y + size + 2 + (BAR - h), r.w, h);
      if (f === s.peak) outlinePatch(ctx, r, theme.accent, 0.5);
      ctx.fillStyle = theme.fg;
      ctx.textAlign = "center";
      ctx.fillText(`t${f}`, r.x + r.w / 2, r.y + size + BAR + 4);
    }
  });
}
