// Marks drawn with and over images: the grey placeholder where an image is missing, and the outline of
// a selected patch (black under the accent, so it reads on any image).
import type { Rect } from "./patches";
import type { Theme } from "./theme";

/** The placeholder grey: #bbb on light themes, `dark` on dark ones. */
export function placeholderGrey(theme: Pick<Theme, "dark">, dark = "#444"): string {
  return theme.dark ? dark : "#bbb";
}

/** An image stretched over `r`, smoothed (it is a photograph, not data). */
export function drawImageIn(ctx: CanvasRenderingContext2D, image: CanvasImageSource, r: Rect): void {
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(image, r.x, r.y, r.w, r.h);
}

/** The image over `r`, or the grey placeholder where there is none. */
export function drawImageOrGrey(ctx: CanvasRenderingContext2D, image: CanvasImageSource | null, r: Rect, grey: string): void {
  if (image) drawImageIn(ctx, image, r);
  else {
    ctx.fillStyle = grey;
    ctx.fillRect(r.x, r.y, r.w, r.h);
  }
}

/** The grey placeholder, then the image over it (grey shows where the image is transparent). */
export function drawImageOverGrey(ctx: CanvasRenderingContext2D, image: CanvasImageSource | null, r: Rect, grey: string): void {
  ctx.fillStyle = grey;
  ctx.fillRect(r.x, r.y, r.w, r.h);
  if (image) drawImageIn(ctx, image, r);
}

/** `r` pulled in by `d` on every side. */
export function insetRect(r: Rect, d: number): Rect {
  return { x: r.x + d, y: r.y + d, w: r.w - 2 * d, h: r.h - 2 * d };
}

/** The selected patch: a 3 px black line under a 2 px `color` line, around `r` pulled in by `inset`. */
export function outlinePatch(ctx: CanvasRenderingContext2D, r: Rect, color: string, inset = 0): void {
  const q = insetRect(r, inset);
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 3;
  ctx.strokeRect(q.x, q.y, q.w, q.h);
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.strokeRect(q.x, q.y, q.w, q.h);
}
