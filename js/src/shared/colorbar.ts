// A horizontal colour bar with the scale's true values as ticks, drawn on a canvas (so the PNG
// export includes it exactly).
import { lut } from "./colormap";

const strips = new Map<string, HTMLCanvasElement>();

/** A 256 x 1 canvas of the colour map (t = 0 .. 1 left to right). */
export function gradientStrip(colormap: string, dark = false): HTMLCanvasElement {
  const key = `${colormap}|${dark}`;
  const hit = strips.get(key);
  if (hit) return hit;
  const canvas = document.createElement("canvas");
  canvas.width = 256;
  canvas.height = 1;
  const ctx = canvas.getContext("2d");
  if (ctx) {
    const img = ctx.createImageData(256, 1);
    img.data.set(lut(colormap, dark));
    ctx.putImageData(img, 0, 0);
  }
  strips.set(key, canvas);
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
  /** Wrap the label onto up to this many lines (default 1: one line, as wide as it is). Size the canvas
   * with `colorbarHeight` so that every line shows. */
  labelLines?: number;
  /** The dark-theme variant of a diverging map (pass what the map itself was drawn with). */
  dark?: boolean;
}

const LABEL_FONT = "10px";
const LINE_H = 13;
let measurer: CanvasRenderingContext2D | null = null;

/** The label cut into lines no wider than `width` at spaces, a trailing " ·" dropped (at most `max` lines;
 * the last one takes the rest). */
export function labelLines(label: string, width: number, font: string, max: number): string[] {
  if (max <= 1 || !label) return label ? [label] : [];
  measurer ??= document.createElement("canvas").getContext("2d");
  const m = measurer;
  if (!m) return [label];
  m.font = `${LABEL_FONT} ${font}`;
  const fits = (t: string) => m.measureText(t).width <= width;
  const lines: string[] = [];
  let rest = label;
  while (rest && !fits(rest) && lines.length < max - 1) {
    const words = rest.split(/(?<= )/);
    let line = "";
    let i = 0;
    while (i < words.length && fits((line + words[i]).trimEnd())) line += words[i++];
    if (!line) line = words[i++] ?? rest; // one word wider than the bar: on a line of its own
    lines.push(line.replace(/ ·\s*$/, "").trimEnd());
    rest = words.slice(i).join("").replace(/^·\s*/, "");
  }
  if (rest) lines.push(rest);
  return lines;
}

/** Height of a colour bar drawn at `y` with a bar `height` tall and its (wrapped) label. */
export function colorbarHeight(o: Pick<ColorbarOptions, "y" | "height" | "width" | "label" | "labelLines" | "theme">): number {
  const n = o.label ? labelLines(o.label, o.width, o.theme.font, o.labelLines ?? 1).length : 0;
  return o.y + o.height + 17 + n * LINE_H + 2;
}

/** Draws the bar, ticks and labels; returns the total height used (bar + labels). */
export function drawColorbar(ctx: CanvasRenderingContext2D, o: ColorbarOptions): number {
  // the bar is uniform in t: one 256 x 1 strip per colour map, stretched (cached)
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(gradientStrip(o.colormap, o.dark), 0, 0, 256, 1, o.x, o.y, o.width, o.height);
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
    const lines = labelLines(o.label, o.width, o.theme.font, o.labelLines ?? 1);
    ctx.canvas.dataset.label = JSON.stringify(lines); // the label as drawn, line by line (tests read it)
    for (const line of lines) {
      ctx.fillText(line, o.x, ty + 1 + used - o.height);
      used += LINE_H;
    }
  }
  return used;
}
