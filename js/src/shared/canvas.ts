// Canvas helpers: crisp HiDPI canvases, and the PNG export that composes what is on screen.

export interface Sized {
  canvas: HTMLCanvasElement;
  ctx: CanvasRenderingContext2D;
  width: number;
  height: number;
  dpr: number;
}

function context(canvas: HTMLCanvasElement | OffscreenCanvasLike): CanvasRenderingContext2D {
  const ctx = (canvas as HTMLCanvasElement).getContext("2d");
  if (!ctx) throw new Error("2D canvas is not available");
  return ctx;
}

type OffscreenCanvasLike = { width: number; height: number; getContext(id: "2d"): unknown };

/** Resize a canvas to `width` x `height` CSS pixels at the device pixel ratio; returns a scaled ctx. */
export function sizeCanvas(canvas: HTMLCanvasElement, width: number, height: number, dpr = devicePixelRatio()): Sized {
  const w = Math.max(1, Math.round(width));
  const h = Math.max(1, Math.round(height));
  const pw = Math.round(w * dpr);
  const ph = Math.round(h * dpr);
  if (canvas.width !== pw) canvas.width = pw;
  if (canvas.height !== ph) canvas.height = ph;
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  const ctx = context(canvas);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { canvas, ctx, width: w, height: h, dpr };
}

export function devicePixelRatio(): number {
  const r = typeof window !== "undefined" ? window.devicePixelRatio : 1;
  return r && r > 0 ? Math.min(r, 3) : 1;
}

/** An off-screen canvas (a detached <canvas>; works everywhere, unlike OffscreenCanvas in old Safari). */
export function scratch(width: number, height: number): { canvas: HTMLCanvasElement; ctx: CanvasRenderingContext2D } {
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, width);
  canvas.height = Math.max(1, height);
  return { canvas, ctx: context(canvas) };
}

/** RGB(A) uint8 pixels [h, w, c] into a canvas of the same size. */
export function pixelsToCanvas(pixels: Uint8Array, h: number, w: number, channels: number, grey = false): HTMLCanvasElement {
  const { canvas, ctx } = scratch(w, h);
  const img = ctx.createImageData(w, h);
  const out = img.data;
  for (let i = 0, j = 0; i < w * h; i++, j += channels) {
    let r = pixels[j];
    let g = channels >= 3 ? pixels[j + 1] : r;
    let b = channels >= 3 ? pixels[j + 2] : r;
    if (grey) {
      const y = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
      r = g = b = y;
    }
    out[i * 4] = r;
    out[i * 4 + 1] = g;
    out[i * 4 + 2] = b;
    out[i * 4 + 3] = channels === 4 ? pixels[j + 3] : 255;
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

/** Controls are left out of an export: they are how you change the view, not what it shows. (Legend
 * entries and cards are buttons too, but they are content: only `.pw-button`s count as controls.) So are
 * status lines, hints and errors: they tell the user what to do next, not what the figure shows. A button
 * that is also content (a prefix token with its colour: CLS) is marked `pw-export-keep`. */
const NOT_EXPORTED =
  ".pw-button:not(.pw-export-keep), select, input[type=range], input[type=checkbox], .pw-toolbar, .pw-no-export, .pw-status, .pw-hint, .pw-error";

/** A caption for an export, drawn over the element it replaces (the toolbar). */
export interface ExportCaption {
  text: string;
  over: HTMLElement;
}

function visible(e: Element): boolean {
  const cs = getComputedStyle(e);
  return cs.display !== "none" && cs.visibility !== "hidden" && Number(cs.opacity || "1") > 0;
}

function opaque(color: string): boolean {
  return !!color && color !== "transparent" && !/^rgba\(.*,\s*0(\.0+)?\)$/.test(color);
}

/** Greedy word wrap of `text` into lines no wider than `widths[i]` (one width per line box on screen); a
 * word wider than its line is cut between characters, as the browser's `overflow-wrap: anywhere` does. */
function wrap(ctx: CanvasRenderingContext2D, text: string, widths: number[]): string[] {
  const words = text.split(/(\s+)/);
  const lines: string[] = [];
  const limit = () => widths[Math.min(lines.length, widths.length - 1)] + 1;
  let line = "";
  for (const w of words) {
    const next = line + w;
    if (line && ctx.measureText(next.trimEnd()).width > limit()) {
      lines.push(line.trimEnd());
      line = w.trimStart();
    } else line = next;
    while (line.length > 1 && ctx.measureText(line).width > limit()) {
      let cut = line.length - 1;
      while (cut > 1 && ctx.measureText(line.slice(0, cut)).width > limit()) cut--;
      lines.push(line.slice(0, cut));
      line = line.slice(cut);
    }
  }
  if (line.trim()) lines.push(line.trimEnd());
  return lines;
}

/**
 * Compose what the widget shows into one canvas at the device pixel ratio, as it sits on screen:
 * element backgrounds and borders (swatches, cells, panels), every canvas and image, every piece of
 * text (labels, legends, tables, prompt fields) in its own font and colour, clipped to its element.
 * Controls (buttons, selects, the toolbar) are left out.
 */
export function composeView(root: HTMLElement, background: string, foreground: string, caption?: ExportCaption): HTMLCanvasElement {
  const box = root.getBoundingClientRect();
  const dpr = devicePixelRatio();
  const { canvas, ctx } = scratch(Math.round(box.width * dpr), Math.round(box.height * dpr));
  ctx.scale(dpr, dpr);
  ctx.fillStyle = background;
  ctx.fillRect(0, 0, box.width, box.height);
  const x0 = box.left;
  const y0 = box.top;
  const elements = Array.from(root.querySelectorAll<HTMLElement>("*")).filter((e) => !e.closest(NOT_EXPORTED) && visible(e));
  for (const e of elements) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (e instanceof HTMLCanvasElement) {
      ctx.drawImage(e, r.left - x0, r.top - y0, r.width, r.height);
      continue;
    }
    if (e instanceof HTMLImageElement) {
      if (e.complete && e.naturalWidth > 0) ctx.drawImage(e, r.left - x0, r.top - y0, r.width, r.height);
      continue;
    }
    const cs = getComputedStyle(e);
    if (opaque(cs.backgroundColor)) {
      ctx.fillStyle = cs.backgroundColor;
      ctx.fillRect(r.left - x0, r.top - y0, r.width, r.height);
    }
    const bw = parseFloat(cs.borderTopWidth || "0");
    if (bw > 0 && cs.borderTopStyle !== "none" && opaque(cs.borderTopColor)) {
      ctx.strokeStyle = cs.borderTopColor;
      ctx.lineWidth = bw;
      ctx.strokeRect(r.left - x0 + bw / 2, r.top - y0 + bw / 2, r.width - bw, r.height - bw);
    }
    if (e instanceof HTMLInputElement && (e.type === "text" || e.type === "search") && e.value) {
      drawText(ctx, e.value, e, [r], cs, x0, y0, foreground, parseFloat(cs.paddingLeft || "0"));
    }
  }
  // text last, over the backgrounds
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    const text = node.textContent ?? "";
    if (!parent || !text.trim() || parent.closest(NOT_EXPORTED) || !visible(parent)) continue;
    range.selectNodeContents(node);
    const rects = Array.from(range.getClientRects()).filter((q) => q.width > 0 && q.height > 0);
    if (rects.length) drawText(ctx, text.trim(), parent, rects, getComputedStyle(parent), x0, y0, foreground, 0);
  }
  range.detach?.();
  if (caption?.text) drawCaption(ctx, caption, box, foreground, getComputedStyle(root).fontFamily);
  return canvas;
}

/** The caption in the band the toolbar leaves empty (or along the top when there is none): wrapped to
 * the band's width, smaller type when it would not fit its height, never cut. */
function drawCaption(ctx: CanvasRenderingContext2D, caption: ExportCaption, box: DOMRect, color: string, family: string): void {
  const r = caption.over.getBoundingClientRect();
  const band = r.width > 0 && r.height > 0 ? { x: r.left - box.left, y: r.top - box.top, w: r.width, h: r.height } : { x: 4, y: 4, w: box.width - 8, h: 18 };
  ctx.save();
  ctx.fillStyle = color;
  ctx.textBaseline = "top";
  let size = 12;
  let lines: string[] = [];
  for (;;) {
    ctx.font = `600 ${size}px ${family}`;
    lines = wrap(ctx, caption.text, [band.w]);
    if (lines.length * (size + 3) <= band.h || size <= 9) break;
    size -= 1;
  }
  lines.forEach((line, i) => ctx.fillText(line, band.x, band.y + 2 + i * (size + 3)));
  ctx.restore();
}

function drawText(
  ctx: CanvasRenderingContext2D,
  text: string,
  owner: HTMLElement,
  rects: DOMRect[],
  cs: CSSStyleDeclaration,
  x0: number,
  y0: number,
  foreground: string,
  indent: number,
): void {
  const clip = owner.getBoundingClientRect();
  ctx.save();
  ctx.beginPath();
  ctx.rect(clip.left - x0, clip.top - y0, clip.width, clip.height); // as on screen: clipped to its element
  ctx.clip();
  ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
  ctx.fillStyle = cs.color || foreground;
  ctx.textBaseline = "middle";
  const lines = rects.length > 1 ? wrap(ctx, text, rects.map((q) => q.width)) : [text];
  lines.forEach((line, i) => {
    const q = rects[Math.min(i, rects.length - 1)];
    ctx.fillText(line, q.left - x0 + indent, q.top - y0 + q.height / 2);
  });
  ctx.restore();
}

/** Save a canvas as a PNG download. */
export function downloadCanvas(canvas: HTMLCanvasElement, filename: string): Promise<void> {
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => {
      if (!blob) {
        reject(new Error("could not encode PNG"));
        return;
      }
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = filename;
      a.rel = "noopener";
      a.style.display = "none";
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      resolve();
    }, "image/png");
  });
}

/** Thin lines between the patches of a rows x cols grid drawn over a w x h image. */
export function strokePatchGrid(ctx: CanvasRenderingContext2D, w: number, h: number, rows: number, cols: number, color: string): void {
  ctx.strokeStyle = color;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let c = 1; c < cols; c++) {
    const x = Math.round((c * w) / cols) + 0.5;
    ctx.moveTo(x, 0);
    ctx.lineTo(x, h);
  }
  for (let r = 1; r < rows; r++) {
    const y = Math.round((r * h) / rows) + 0.5;
    ctx.moveTo(0, y);
    ctx.lineTo(w, y);
  }
  ctx.stroke();
}
