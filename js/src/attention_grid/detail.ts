// AttentionGrid's detail view of the selected head: its query x key matrix (hover a cell for its value and
// its two patches on the image, click it to make its query the selected one) and the image beside it.
import { sizeCanvas } from "../shared/canvas";
import { lut } from "../shared/colormap";
import { el, setText } from "../shared/dom";
import { type Rect, gridCellAt } from "../shared/patches";
import { localPoint } from "../shared/pointer";
import { type ColorScale, type ScaleKind, formatValue, makeScale } from "../shared/scale";
import type { Theme } from "../shared/theme";
import type { Listen } from "../shared/view";
import { type AttentionData, tokenLabel } from "./data";
import { drawDetailImage, drawMatrix, matrixImage } from "./draw";
import { MATRIX_COLORBAR_H, MATRIX_PAD, detailImageRect, matrixSide } from "./layout";

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
  image: HTMLCanvasElement | null;
  theme: Theme;
}

interface Cell {
  q: number;
  k: number;
}

export class HeadDetail {
  readonly root: HTMLDivElement;
  readonly title = el("div", { cls: "pw-ag-detail-title pw-export-text" });
  private readonly matrix = el("canvas", { cls: "pw-canvas pw-ag-matrix", attrs: { role: "img", "aria-label": "query x key matrix of the selected head" } });
  private readonly image = el("canvas", { cls: "pw-ag-detail-image" });
  private readonly status = el("div", { cls: "pw-status pw-ag-detail-status" });
  private cache: { key: string; canvas: HTMLCanvasElement; scale: ColorScale; values: Float32Array } | null = null;
  private rect: Rect = { x: 0, y: 0, w: 1, h: 1 };
  private hover: Cell | null = null;

  /** `state`: what to show now (null before the data); `pick`: a clicked cell. */
  constructor(listen: Listen, private readonly state: () => DetailState | null, pick: (cell: Cell) => void) {
    this.root = el("div", { cls: "pw-ag-detail" }, [this.title, el("div", { cls: "pw-ag-detail-body" }, [this.matrix, this.image]), this.status]);
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
      this.draw();
    });
    listen(this.matrix, "pointerleave", () => {
      this.hover = null;
      setText(this.status, "");
      this.draw();
    });
    listen(this.matrix, "click", (ev) => {
      const hm = this.cellAt(ev);
      if (hm) pick(hm);
    });
  }

  /** New data: the matrix is computed again at the next paint. */
  invalidate(): void {
    this.cache = null;
  }

  private cellAt(ev: MouseEvent): Cell | null {
    const s = this.state();
    if (!s) return null;
    const p = localPoint(this.matrix, ev);
    const cell = gridCellAt(this.rect, p.x, p.y, s.d.T, s.d.T);
    return cell && { q: cell.row, k: cell.col };
  }

  draw(): void {
    const s = this.state();
    if (!s) return;
    const { d } = s;
    this.root.style.display = s.visible ? "" : "none";
    if (!s.visible) return;
    const key = [s.b, s.lp, s.hp, s.kind, s.pct, s.colormap].join("|");
    if (!this.cache || this.cache.key !== key) {
      const values = d.patterns.matrix(s.b, s.lp * d.heads.length + s.hp);
      const scale = makeScale(s.kind, values, s.pct);
      this.cache = { key, canvas: matrixImage(values, d.T, scale, lut(s.colormap)), scale, values };
    }
    const size = matrixSide(d.T);
    const pad = MATRIX_PAD;
    this.rect = { x: pad, y: pad, w: size, h: size };
    const { ctx } = sizeCanvas(this.matrix, size + 2 * pad, size + 2 * pad + MATRIX_COLORBAR_H);
    drawMatrix(ctx, d, {
      image: this.cache.canvas,
      scale: this.cache.scale,
      colormap: s.colormap,
      size,
      token: s.token,
      column: s.column,
      hover: this.hover,
      theme: s.theme,
    });
    const R = d.pixels ? detailImageRect(d.pixels.H, d.pixels.W) : detailImageRect(d.rows, d.cols);
    drawDetailImage(sizeCanvas(this.image, R.w, R.h).ctx, d, R, s.image, s.token, this.hover, s.theme);
  }
}
