// Pure geometry of the LogitAttribution heatmap: a layers x heads block, then a column per layer for its
// heads together ("attn") and for its MLP, then a row with the embedding and the biases; and what is under
// a pointer. No DOM here, so vitest covers it.
import { type Rect, inRect } from "../shared/patches";
import type { Selection } from "./data";

export { type Rect, mapSize, patchRect, patchTokenAt } from "../shared/patches";

export interface HeatmapSpec {
  nLayers: number;
  nHeads: number;
  /** CSS pixels per cell */
  cell: number;
  labelW?: number;
  headerH?: number;
  gap?: number;
}

export interface HeatCell {
  sel: Selection;
  rect: Rect;
}

export interface HeatmapLayout {
  width: number;
  height: number;
  cells: HeatCell[];
  /** column headers (text, x centre) and row labels (text, y centre) */
  headers: { text: string; x: number }[];
  rows: { text: string; y: number }[];
  headerY: number;
  /** y of the captions under the bottom row's cells */
  captionY: number;
}

/** Cells in reading order: each layer's heads, its attn and MLP cells; then embed and bias. */
export function computeHeatmap(input: HeatmapSpec): HeatmapLayout {
  const { nLayers, nHeads, cell } = input;
  const labelW = input.labelW ?? 30;
  const headerH = input.headerH ?? 16;
  const gap = input.gap ?? 8;
  const pad = 1;
  const headX = (h: number) => labelW + h * cell;
  const attnX = labelW + nHeads * cell + (nHeads ? gap : 0);
  const mlpX = attnX + cell + pad;
  const cells: HeatCell[] = [];
  const rows: { text: string; y: number }[] = [];
  for (let l = 0; l < nLayers; l++) {
    const y = headerH + l * cell;
    for (let h = 0; h < nHeads; h++) {
      cells.push({ sel: { part: "head", layer: l, head: h }, rect: { x: headX(h), y, w: cell - pad, h: cell - pad } });
    }
    cells.push({ sel: { part: "attn", layer: l, head: 0 }, rect: { x: attnX, y, w: cell - pad, h: cell - pad } });
    cells.push({ sel: { part: "mlp", layer: l, head: 0 }, rect: { x: mlpX, y, w: cell - pad, h: cell - pad } });
    rows.push({ text: `L${l}`, y: y + (cell - pad) / 2 });
  }
  const bottomY = headerH + nLayers * cell + gap;
  cells.push({ sel: { part: "embed", layer: 0, head: 0 }, rect: { x: labelW, y: bottomY, w: cell - pad, h: cell - pad } });
  const biasX = labelW + Math.max(cell + gap, 40); // room for the two captions
  cells.push({ sel: { part: "bias", layer: 0, head: 0 }, rect: { x: biasX, y: bottomY, w: cell - pad, h: cell - pad } });
  const headers = [
    ...Array.from({ length: nHeads }, (_, h) => ({ text: `H${h}`, x: headX(h) + (cell - pad) / 2 })),
    { text: "attn", x: attnX + (cell - pad) / 2 },
    { text: "MLP", x: mlpX + (cell - pad) / 2 },
  ];
  const width = Math.max(mlpX + cell + 4, biasX + cell + 80);
  const captionY = bottomY + cell + 2;
  return { width, height: captionY + 14, cells, headers, rows, headerY: headerH / 2, captionY };
}

/** The cell under (x, y), or null. */
export function cellAt(L: HeatmapLayout, x: number, y: number): HeatCell | null {
  return L.cells.find((c) => inRect(c.rect, x, y)) ?? null;
}

/** The cell of a selection (attn / MLP / head by layer; embed and bias alone). */
export function cellOf(L: HeatmapLayout, s: Selection): HeatCell | null {
  return (
    L.cells.find((c) => {
      const t = c.sel;
      if (t.part !== s.part) return false;
      if (t.part === "embed" || t.part === "bias") return true;
      return t.layer === s.layer && (t.part !== "head" || t.head === s.head);
    }) ?? null
  );
}

/** Black or white text on a colour. */
export function textOn(c: ArrayLike<number>): string {
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] > 140 ? "#000" : "#fff";
}
