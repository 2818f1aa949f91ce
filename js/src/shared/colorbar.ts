// A horizontal colour bar with the scale's true values as ticks, drawn on a canvas (so the PNG
// export includes it exactly).
import { lut } from "./colormap";

const strips = new Map<string, HTMLCanvasElement>();

/** A 256 x 1 canvas of the colour map (t = 0 .. 1 left to right). */
export function gradientStrip(colormap: string): HTMLCanvasElement {
  const hit = strips.get(colormap);
  if (hit) return hit;
  const canvas = document.createElement("canvas");
  canvas.width = 256;
  canvas.height = 1;
  const ctx = canvas.getContext("2d");
  if (ctx) {
    const img = ctx.createImageData(256, 1);
    img.data.set(lut(colormap));
    ctx.putImageData(img, 0, 0);
  }
  strips.set(colormap, canvas);
  return canvas;
}
import { type ColorScale, formatValue, ticksFor } from "./scale";
import type { Theme } from "./theme";

export interface ColorbarOptions {
  x: number;
  y: number;
  width: number;
  height: number;
  colormap: string;
  scale: ColorScale;
  theme: Theme;
  label?: string;
}

/** Draws the bar, ticks and labels; returns the total height used (bar + labels). */
export function drawColorbar(ctx: CanvasRenderingContext2D, o: ColorbarOptions): number {
  // the bar is uniform in t: one 256 x 1 strip per colour map, stretched (cached)
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(gradientStrip(o.colormap), 0, 0, 256, 1, o.x, o.y, o.width, o.height);
  ctx.strokeStyle = o.theme.grid;
  ctx.lineWidth = 1;
  ctx.strokeRect(o.x + 0.5, o.y + 0.5, o.width - 1, o.height - 1);

  ctx.fillStyle = o.theme.fg;
  ctx.strokeStyle = o.theme.fg;
  ctx.font = `10px ${o.theme.font}`;
  ctx.textBaseline = "top";
  const ticks = ticksFor(o.scale);
  const ty = o.y + o.height;
  let lastRight = -Infinity;
  const placed: { x: number; text: string }[] = [];
  for (const v of ticks) {
    const t = o.scale.map(v);
    const x = o.x + t * (o.width - 1) + 0.5;
    ctx.beginPath();
    ctx.moveTo(x, ty);
    ctx.lineTo(x, ty + 4);
    ctx.stroke();
    const text = formatValue(v) + (o.scale.clipped && v >= o.scale.hi ? "+" : "");
    const w = ctx.measureText(text).width;
    const left = Math.min(Math.max(x - w / 2, o.x - 4), o.x + o.width - w + 4);
    if (left > lastRight + 4) {
      placed.push({ x: left, text });
      lastRight = left + w;
    }
  }
  for (const p of placed) ctx.fillText(p.text, p.x, ty + 5);
  let used = o.height + 17;
  if (o.label) {
    ctx.fillStyle = o.theme.muted;
    ctx.fillText(o.label, o.x, ty + 18);
    used += 13;
  }
  return used;
}
