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

/**
 * Compose what the widget shows into one canvas, at the device pixel ratio: every visible canvas
 * inside `root` where it sits on screen, and the text of elements marked `.pw-export-text` (title,
 * read-outs), on the widget's background colour. Controls (buttons, selects) are left out.
 */
export function composeView(root: HTMLElement, background: string, foreground: string): HTMLCanvasElement {
  const box = root.getBoundingClientRect();
  const dpr = devicePixelRatio();
  const { canvas, ctx } = scratch(Math.round(box.width * dpr), Math.round(box.height * dpr));
  ctx.scale(dpr, dpr);
  ctx.fillStyle = background;
  ctx.fillRect(0, 0, box.width, box.height);
  root.querySelectorAll("canvas").forEach((c) => {
    const r = c.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || c.closest(".pw-no-export")) return;
    ctx.drawImage(c, r.left - box.left, r.top - box.top, r.width, r.height);
  });
  root.querySelectorAll<HTMLElement>(".pw-export-text").forEach((t) => {
    const r = t.getBoundingClientRect();
    if (r.width === 0 || !t.textContent) return;
    const cs = getComputedStyle(t);
    ctx.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    ctx.fillStyle = cs.color || foreground;
    ctx.textBaseline = "middle";
    ctx.save();
    ctx.beginPath();
    ctx.rect(r.left - box.left, r.top - box.top, r.width, r.height); // as on screen: clipped to its box
    ctx.clip();
    ctx.fillText(t.textContent, r.left - box.left + parseFloat(cs.paddingLeft || "0"), r.top - box.top + r.height / 2);
    ctx.restore();
  });
  return canvas;
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
