// AttentionGrid's detail view of the selected head: its query x key matrix beside the grid (in the side
// column, under the query image), with token ticks on both axes, a zoom (the window follows the selected
// token), the hovered cell's value, and its two patches outlined on the query image. Click a cell to make
// its query (key) the selected one.
import { sizeCanvas } from "../shared/canvas";
import { lut } from "../shared/colormap";
import { button, el, setText } from "../shared/dom";
import { type Rect, gridCellAt } from "../shared/patches";
import { localPoint } from "../shared/pointer";
import { type ColorScale, type ScaleKind, formatValue, makeScale } from "../shared/scale";
import type { Theme } from "../shared/theme";
import type { Listen } from "../shared/view";
import { type AttentionData, tokenLabel } from "./data";
import { drawMatrix, drawMatrixAxes, matrixCanvasHeight, matrixImage } from "./draw";
import { MATRIX_LEFT, MATRIX_PAD, MATRIX_TOP, ZOOMS, matrixWindow } from "./layout";

/** What the detail view shows, read from the traits at each paint. */
export interface DetailState {
  d: AttentionData;
  visible: boolean;
  /** image, layer position, head position */
  b: number;
  lp: number;
  hp: number;
  kind: ScaleKind;
  pct: number;
  colormap: string;
  /** the selected query (row), or key (column) */
  token: number;
  column: boolean;
  theme: Theme;
  /** the canvas' width (the side column's) */
  width: number;
}

export interface Cell {
  q: number;
  k: number;
}

export class HeadDetail {
  readonly root: HTMLDivElement;
  readonly title = el("div", { cls: "pw-ag-detail-title pw-export-text" });
  private readonly matrix = el("canvas", {
    cls: "pw-canvas pw-ag-matrix",
    attrs: { tabindex: "0", role: "img", "aria-label": "query x key matrix of the selected head: hover for values, + and - zoom, click selects the query" },
  });
  private readonly status = el("div", { cls: "pw-status pw-ag-detail-status" });
  private readonly leftAxis = el("canvas", { cls: "pw-ag-matrix-axis" });
  private readonly topAxis = el("canvas", { cls: "pw-ag-matrix-axis" });
  private readonly zoomLabel = el("span", { cls: "pw-ag-zoom-label", text: "1×" });
  private readonly zoomOut: HTMLButtonElement;
  private readonly zoomIn: HTMLButtonElement;
  private cache: { key: string; canvas: HTMLCanvasElement; scale: ColorScale; values: Float32Array } | null = null;
  private plot: Rect = { x: 0, y: 0, w: 1, h: 1 };
  private win = { q0: 0, k0: 0, n: 1 };
  private zoom = 0; // index into ZOOMS
  private hover: Cell | null = null;

  /** `state`: what to show now (null before the data); `pick`: a clicked cell; `hovered`: the hovered cell
   * changed (the view outlines its patches on the query image). */
  constructor(listen: Listen, private readonly state: () => DetailState | null, pick: (cell: Cell) => void, private readonly hovered: () => void) {
    this.zoomOut = button("−", "zoom out of the matrix (key -)", () => this.setZoom(this.zoom - 1), "pw-ag-zoom");
    this.zoomIn = button("+", "zoom into the matrix around the selected token (key +)", () => this.setZoom(this.zoom + 1), "pw-ag-zoom");
    const zoomBar = el("div", { cls: "pw-ag-zoom-bar pw-no-export" }, [el("span", { cls: "pw-field-label", text: "zoom" }), this.zoomOut, this.zoomLabel, this.zoomIn]);
    const head = el("div", { cls: "pw-ag-detail-head" }, [this.title, zoomBar]);
    // the matrix canvas holds only the plot (and its colour bar): its axes sit around it on their own
    const corner = el("div", { cls: "pw-ag-matrix-corner pw-export-text", text: "query ↓" });
    const frame = el("div", { cls: "pw-ag-matrix-frame" }, [corner, this.topAxis, this.leftAxis, this.matrix]);
    frame.style.gridTemplateColumns = `${MATRIX_LEFT}px auto`;
    this.root = el("div", { cls: "pw-ag-detail" }, [head, frame, this.status]);
    listen(this.matrix, "pointermove", (ev) => {
      const hm = this.cellAt(ev);
      const same = hm && this.hover && hm.q === this.hover.q && hm.k === this.hover.k;
      if (same || (!hm && !this.hover)) return;
      this.hover = hm;
      const s = this.state();
      if (hm && this.cache && s) {
        const v = this.cache.values[hm.q * s.d.T + hm.k];
        setText(this.status, `query ${tokenLabel(s.d, hm.q)} → key ${tokenLabel(s.d, hm.k)}: ${formatValue(v)}`);
      } else setText(this.status, "");
      this.hovered();
    });
    listen(this.matrix, "pointerleave", () => {
      this.hover = null;
      setText(this.status, "");
      this.hovered();
    });
    listen(this.matrix, "click", (ev) => {
      const hm = this.cellAt(ev);
      if (hm) pick(hm);
    });
    listen(this.matrix, "keydown", (ev) => {
      if (ev.key === "+" || ev.key === "=") this.setZoom(this.zoom + 1);
      else if (ev.key === "-" || ev.key === "_") this.setZoom(this.zoom - 1);
      else return;
      ev.preventDefault();
    });
  }

  /** The matrix cell under the pointer (while hovering), for the query image's outlines. */
  hoveredCell(): Cell | null {
    return this.hover;
  }

  /** New data: the matrix is computed again at the next paint. */
  invalidate(): void {
    this.cache = null;
  }

  private setZoom(i: number): void {
    const s = this.state();
    // no zoom beyond one token per 4 pixels... of what is there to see: at most T tokens per side
    const max = s ? ZOOMS.findIndex((z) => Math.ceil(s.d.T / z) <= 8) : ZOOMS.length - 1;
    this.zoom = Math.max(0, Math.min(max < 0 ? ZOOMS.length - 1 : max, i));
    this.draw();
  }

  private cellAt(ev: MouseEvent): Cell | null {
    const s = this.state();
    if (!s) return null;
    const p = localPoint(this.matrix, ev);
    const cell = gridCellAt(this.plot, p.x, p.y, this.win.n, this.win.n);
    return cell && { q: this.win.q0 + cell.row, k: this.win.k0 + cell.col };
  }

  draw(): void {
    const s = this.state();
    if (!s) return;
    const { d } = s;
    this.root.style.display = s.visible ? "" : "none";
    if (!s.visible) return;
    const key = [s.b, s.lp, s.hp, s.kind, s.pct, s.colormap, s.theme.dark].join("|");
    if (!this.cache || this.cache.key !== key) {
      const values = d.patterns.matrix(s.b, s.lp * d.heads.length + s.hp);
      const scale = makeScale(s.kind, values, s.pct);
      this.cache = { key, canvas: matrixImage(values, d.T, scale, lut(s.colormap, s.theme.dark)), scale, values };
    }
    const zoom = ZOOMS[this.zoom];
    this.win = matrixWindow(d.T, zoom, s.token, s.token); // around the selected token, on the diagonal
    const side = Math.max(64, s.width - MATRIX_LEFT - 2 * MATRIX_PAD);
    const width = side + 2 * MATRIX_PAD;
    this.plot = { x: MATRIX_PAD, y: MATRIX_PAD, w: side, h: side };
    const height = matrixCanvasHeight(side);
    const { ctx } = sizeCanvas(this.matrix, width, height);
    this.matrix.dataset.window = JSON.stringify([this.win.q0, this.win.k0, this.win.n, this.plot.x, this.plot.y, side]);
    setText(this.zoomLabel, `${zoom}×`);
    this.zoomOut.disabled = this.zoom === 0;
    this.zoomIn.disabled = this.win.n <= 8;
    drawMatrix(ctx, d, {
      image: this.cache.canvas,
      scale: this.cache.scale,
      colormap: s.colormap,
      dark: s.theme.dark,
      plot: this.plot,
      win: this.win,
      token: s.token,
      column: s.column,
      hover: this.hover,
      theme: s.theme,
      width,
      height,
      label: (t) => tokenLabel(d, t),
    });
    const axes = { plot: this.plot, win: this.win, theme: s.theme, label: (t: number) => tokenLabel(d, t), width, height };
    drawMatrixAxes(sizeCanvas(this.leftAxis, MATRIX_LEFT, height).ctx, sizeCanvas(this.topAxis, width, MATRIX_TOP).ctx, axes, MATRIX_LEFT, MATRIX_TOP);
  }
}
