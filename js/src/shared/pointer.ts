// Pointer -> the element's own CSS pixels, the units its layout (cells, thumbnails, patches) was computed
// in. The device pixel ratio never enters: canvases are sized in CSS pixels and drawn through a scaled
// context (shared/canvas.ts `sizeCanvas`). When CSS shows an element at another size than it was laid
// out at (a transform, a shrinking flex box), the offset is scaled back to layout pixels.

export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** A client-space point in layout pixels of an element shown at `box`, laid out at `layoutW` x `layoutH`. */
export function toLocal(clientX: number, clientY: number, box: Box, layoutW = box.width, layoutH = box.height): { x: number; y: number } {
  const sx = box.width > 0 && layoutW > 0 ? layoutW / box.width : 1;
  const sy = box.height > 0 && layoutH > 0 ? layoutH / box.height : 1;
  return { x: (clientX - box.left) * sx, y: (clientY - box.top) * sy };
}

/** The CSS pixel size an element was laid out at (its inline style, as `sizeCanvas` sets it), else as shown. */
export function layoutSize(el: HTMLElement, box: Box): { w: number; h: number } {
  const w = parseFloat(el.style.width);
  const h = parseFloat(el.style.height);
  return { w: Number.isFinite(w) && w > 0 ? w : box.width, h: Number.isFinite(h) && h > 0 ? h : box.height };
}

/** Where a pointer event is, in the layout pixels of `el`. */
export function localPoint(el: HTMLElement, ev: MouseEvent): { x: number; y: number } {
  const box = el.getBoundingClientRect();
  const { w, h } = layoutSize(el, box);
  return toLocal(ev.clientX, ev.clientY, box, w, h);
}
