import { describe, expect, it } from "vitest";
import { sizeCanvas } from "../src/shared/canvas";
import { arrowCell, arrowStep, gridCellAt, inRect, patchRect, patchTokenAt } from "../src/shared/patches";
import { layoutSize, localPoint, toLocal } from "../src/shared/pointer";

/** Enough of a <canvas> for sizeCanvas and localPoint: a backing store, an inline style, a screen box. */
function fakeCanvas(screen: { left: number; top: number; scale: number }) {
  const transforms: number[][] = [];
  const canvas = {
    width: 0,
    height: 0,
    style: { width: "", height: "" } as CSSStyleDeclaration,
    getContext: () => ({ setTransform: (...m: number[]) => transforms.push(m) }),
    getBoundingClientRect() {
      // shown at `scale` x its CSS size (a transform, a zoomed ancestor)
      const w = parseFloat(this.style.width) * screen.scale;
      const h = parseFloat(this.style.height) * screen.scale;
      return { left: screen.left, top: screen.top, width: w, height: h } as DOMRect;
    },
  };
  return { canvas: canvas as unknown as HTMLCanvasElement, transforms };
}

const pointer = (clientX: number, clientY: number) => ({ clientX, clientY }) as MouseEvent;

describe("toLocal", () => {
  it("is the offset from the box at scale 1", () => {
    expect(toLocal(130, 85, { left: 100, top: 50, width: 200, height: 100 }, 200, 100)).toEqual({ x: 30, y: 35 });
    expect(toLocal(130, 85, { left: 100, top: 50, width: 200, height: 100 })).toEqual({ x: 30, y: 35 });
  });

  it("scales back to layout pixels when the element is shown at another size", () => {
    // laid out at 200 x 100, shown at half size, then at 1.25x
    expect(toLocal(110, 55, { left: 100, top: 50, width: 100, height: 50 }, 200, 100)).toEqual({ x: 20, y: 10 });
    expect(toLocal(125, 75, { left: 100, top: 50, width: 250, height: 125 }, 200, 100)).toEqual({ x: 20, y: 20 });
  });

  it("does not divide by a zero-size box (a hidden element)", () => {
    expect(toLocal(110, 60, { left: 100, top: 50, width: 0, height: 0 }, 200, 100)).toEqual({ x: 10, y: 10 });
  });

  it("reads the layout size from the inline style that sizeCanvas sets, else the box", () => {
    const box = { left: 0, top: 0, width: 50, height: 40 };
    expect(layoutSize({ style: { width: "200px", height: "100px" } } as HTMLElement, box)).toEqual({ w: 200, h: 100 });
    expect(layoutSize({ style: { width: "", height: "" } } as HTMLElement, box)).toEqual({ w: 50, h: 40 });
  });
});

describe("pointer -> patch at device pixel ratios and CSS scales", () => {
  // a 7 x 7 patch grid after one prefix token, drawn over a 224 x 224 CSS-pixel image
  const rows = 7;
  const cols = 7;
  const nPrefix = 1;
  const R = { x: 0, y: 0, w: 224, h: 224 };
  const side = 224 / 7;

  for (const dpr of [1, 1.5, 2, 3]) {
    for (const scale of [1, 0.5, 1.25]) {
      it(`finds the patch under the pointer at dpr ${dpr}, CSS scale ${scale}`, () => {
        const { canvas, transforms } = fakeCanvas({ left: 40, top: 70, scale });
        const sized = sizeCanvas(canvas, 224, 224, dpr);
        expect([canvas.width, canvas.height]).toEqual([Math.round(224 * dpr), Math.round(224 * dpr)]);
        expect(transforms).toEqual([[dpr, 0, 0, dpr, 0, 0]]);
        expect(sized.width).toBe(224);
        for (const [r, c] of [[0, 0], [3, 4], [6, 6], [6, 0]]) {
          // the centre of patch (r, c), as the screen shows it
          const clientX = 40 + (c + 0.5) * side * scale;
          const clientY = 70 + (r + 0.5) * side * scale;
          const p = localPoint(canvas, pointer(clientX, clientY));
          expect(patchTokenAt(R, p.x, p.y, rows, cols, nPrefix)).toBe(nPrefix + r * cols + c);
        }
        // the last CSS pixel shown is the last patch; one past it is outside
        const last = localPoint(canvas, pointer(40 + 224 * scale - 0.5, 70 + 224 * scale - 0.5));
        expect(patchTokenAt(R, last.x, last.y, rows, cols, nPrefix)).toBe(nPrefix + rows * cols - 1);
        const past = localPoint(canvas, pointer(40 + 224 * scale, 70 + 10));
        expect(patchTokenAt(R, past.x, past.y, rows, cols, nPrefix)).toBe(-1);
      });
    }
  }
});

describe("grid cells", () => {
  const r = { x: 10, y: 20, w: 100, h: 50 };

  it("counts the left and top edges in, the right and bottom edges out", () => {
    expect(inRect(r, 10, 20)).toBe(true);
    expect(inRect(r, 109.999, 69.999)).toBe(true);
    expect(inRect(r, 110, 30)).toBe(false);
    expect(inRect(r, 30, 70)).toBe(false);
    expect(inRect(r, 9.999, 30)).toBe(false);
    expect(gridCellAt(r, 10, 20, 5, 10)).toEqual({ row: 0, col: 0 });
    expect(gridCellAt(r, 109.999, 69.999, 5, 10)).toEqual({ row: 4, col: 9 });
    expect(gridCellAt(r, 110, 20, 5, 10)).toBeNull();
    expect(gridCellAt(r, 9, 20, 5, 10)).toBeNull();
  });

  it("puts a pointer on a cell boundary in the cell to its right and below", () => {
    expect(gridCellAt(r, 20, 30, 5, 10)).toEqual({ row: 1, col: 1 });
    expect(gridCellAt(r, 19.99, 29.99, 5, 10)).toEqual({ row: 0, col: 0 });
  });

  it("maps a token to its patch and back", () => {
    for (let t = 1; t < 1 + 5 * 10; t++) {
      const p = patchRect(r, t, 5, 10, 1)!;
      expect(patchTokenAt(r, p.x + p.w / 2, p.y + p.h / 2, 5, 10, 1)).toBe(t);
      expect(patchTokenAt(r, p.x, p.y, 5, 10, 1)).toBe(t);
    }
    expect(patchRect(r, 0, 5, 10, 1)).toBeNull();
    expect(patchRect(r, 51, 5, 10, 1)).toBeNull();
  });
});

describe("arrow keys", () => {
  it("move one cell and stop at the edges", () => {
    expect(arrowCell(2, 3, "ArrowLeft", 5, 6)).toEqual({ row: 2, col: 2 });
    expect(arrowCell(2, 3, "ArrowRight", 5, 6)).toEqual({ row: 2, col: 4 });
    expect(arrowCell(2, 3, "ArrowUp", 5, 6)).toEqual({ row: 1, col: 3 });
    expect(arrowCell(2, 3, "ArrowDown", 5, 6)).toEqual({ row: 3, col: 3 });
    expect(arrowCell(0, 0, "ArrowLeft", 5, 6)).toEqual({ row: 0, col: 0 });
    expect(arrowCell(0, 0, "ArrowUp", 5, 6)).toEqual({ row: 0, col: 0 });
    expect(arrowCell(4, 5, "ArrowRight", 5, 6)).toEqual({ row: 4, col: 5 });
    expect(arrowCell(4, 5, "ArrowDown", 5, 6)).toEqual({ row: 4, col: 5 });
    expect(arrowCell(2, 3, "Enter", 5, 6)).toBeNull();
  });

  it("step a patch token, starting at the centre patch from a prefix token", () => {
    // 4 x 4 grid after 2 prefix tokens: patch (r, c) is token 2 + 4 r + c
    expect(arrowStep(2 + 5, "ArrowRight", 4, 4, 2)).toBe(2 + 6);
    expect(arrowStep(2 + 5, "ArrowDown", 4, 4, 2)).toBe(2 + 9);
    expect(arrowStep(2 + 15, "ArrowDown", 4, 4, 2)).toBe(2 + 15);
    expect(arrowStep(0, "ArrowLeft", 4, 4, 2)).toBe(2 + 2 * 4 + 1); // from the centre (2, 2)
    expect(arrowStep(1, "ArrowUp", 4, 4, 2)).toBe(2 + 1 * 4 + 2);
    expect(arrowStep(5, "PageUp", 4, 4, 2)).toBeNull();
  });
});
