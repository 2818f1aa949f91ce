// PatchingHeatmap over a clip (a video model's tokens: prefix, then frames x rows x cols patches, frame-major).
//
// The heatmap keeps every token (the position strip grouped per token frame, labelled t0 … tN), or one column
// per frame (by="frame") or per tube (by="tube", one patch through every frame). The per-layer maps show one
// token frame at a time (the frame strip picks it): `mapView` slices a clip's result to the shown frame's
// tokens, so the maps draw exactly as for an image, and maps a click there back to a clip cell. A tube result
// is already one value per patch: its maps are the patch grid over the shown frame's image. Pure but for
// the canvas labels; vitest covers the slicing.
import { type FramePixels, frameTokens, gatherTokens } from "../shared/frames";
import type { Theme } from "../shared/theme";
import { type PatchData, groupLabel } from "./data";
import { type HeatLayout, colX } from "./layout";
import type { Selection } from "./traits";

export interface MapView {
  /** what the maps draw: by position (or head_position) over one frame's tokens, as for an image */
  data: PatchData;
  /** the selection as the maps see it (no position when the selected token is in another frame) */
  local: (sel: Selection | null) => Selection | null;
  /** the clip selection of a click on a map: layer position `lp`, map token `token` (head kept) */
  global: (lp: number, token: number, head: number) => Selection;
}

/** Whether a result's maps follow the frame strip (a clip's maps by position, head_position or tube). */
export function mapsByFrame(d: PatchData): boolean {
  return d.frames > 1 && (d.by === "position" || d.by === "head_position" || d.by === "tube");
}

/** The maps of token frame `frame`: `d` sliced to that frame's tokens, drawn over `pixels` (that frame's image). */
export function mapView(d: PatchData, frame: number, pixels: FramePixels | null): MapView {
  const f = Math.max(0, Math.min(d.frames - 1, frame));
  const P = d.rows * d.cols;
  if (d.by === "tube") {
    const data: PatchData = {
      ...d,
      by: "position",
      T: P,
      nPrefix: 0,
      frames: 1,
      cellShape: [P],
      nCells: P,
      table: null,
      tokenLabels: Array.from({ length: P }, (_, i) => groupLabel(d, "tube", i)),
      pixels: pixels ?? d.pixels,
    };
    return {
      data,
      local: (sel) => (sel ? { layer: sel.layer, position: sel.tube } : null),
      global: (lp, token) => ({ layer: d.layers[lp], tube: token }),
    };
  }
  if (!mapsByFrame(d)) {
    return {
      data: d,
      local: (sel) => sel,
      global: (lp, token, head) => (d.by === "head_position" ? { layer: d.layers[lp], position: token, head } : { layer: d.layers[lp], position: token }),
    };
  }
  const idx = frameIndex(d, f);
  const inner = d.by === "head_position" ? d.H : 1;
  const data: PatchData = {
    ...d,
    T: idx.length,
    frames: 1,
    cellShape: d.by === "head_position" ? [idx.length, d.H] : [idx.length],
    nCells: idx.length * inner,
    values: gatherTokens(Float32Array.from(d.values), d.L, d.T, inner, idx),
    table: null,
    tokenLabels: Array.from(idx, (t) => d.tokenLabels[t] ?? `token ${t}`),
    pixels: pixels ?? d.pixels,
  };
  return {
    data,
    local: (sel) => {
      if (!sel || sel.position === undefined) return sel;
      const local = idx.indexOf(sel.position); // -1: a token of another frame
      const out: Selection = { ...sel };
      if (local >= 0) out.position = local;
      else delete out.position;
      return out;
    },
    global: (lp, token, head) => {
      const position = idx[token] ?? token;
      return d.by === "head_position" ? { layer: d.layers[lp], position, head } : { layer: d.layers[lp], position };
    },
  };
}

const LABEL = /^t(\d+) r(\d+)c(\d+)$/;

/**
 * The clip tokens of frame `f` in map order (prefix tokens, then the frame's patches row by row). Frame-major
 * clips (VideoMAE, ViViT) hold them in one run; a model that orders its tokens otherwise (TimeSformer: all
 * frames of one patch together) is read from the token labels "t{f} r{r}c{c}".
 */
export function frameIndex(d: PatchData, f: number): Int32Array {
  const major = frameTokens(d.nPrefix, d.rows, d.cols, f);
  if (frameMajor(d)) return major;
  const out = Int32Array.from(major);
  for (let t = d.nPrefix; t < d.tokenLabels.length; t++) {
    const m = LABEL.exec(d.tokenLabels[t]);
    if (m && Number(m[1]) === f) out[d.nPrefix + Number(m[2]) * d.cols + Number(m[3])] = t;
  }
  return out;
}

/** Whether the clip's tokens are frame-major (its labels say so, or it has none to say otherwise). */
export function frameMajor(d: PatchData): boolean {
  const per = d.rows * d.cols;
  for (let t = d.nPrefix; t < d.tokenLabels.length; t++) {
    const m = LABEL.exec(d.tokenLabels[t]);
    if (!m) continue;
    const k = t - d.nPrefix;
    if (Number(m[1]) !== Math.floor(k / per) || Number(m[2]) * d.cols + Number(m[3]) !== k % per) return false;
  }
  return true;
}

/** What the heatmap's columns are, in words (the line above it). */
export function columnsCaption(d: PatchData, nPrefixCols: number): string {
  if (d.by === "head") return "heads";
  if (d.by === "layer") return "whole layers";
  if (d.by === "frame") return "token frames, each patched whole (every patch of the frame)";
  if (d.by === "tube") return `tubes: one patch through all ${d.frames} frames, row by row`;
  const prefix = nPrefixCols ? "prefix tokens | " : "";
  if (d.frames > 1 && !frameMajor(d)) return `${prefix}patches in the model's token order (labels t{frame} r{row}c{col})`;
  return d.frames > 1 ? `${prefix}patches, frame by frame (t0 … t${d.frames - 1}), each row by row` : `${prefix}patches, row by row`;
}

/** Under a clip's position strip: a tick where each token frame starts and its name (t0, t1, ...) under
 * it; thin gaps between the frames' columns. The prefix tokens keep their own labels. */
export function drawFrameGroups(ctx: CanvasRenderingContext2D, d: PatchData, g: HeatLayout, y: number, t: Theme, label: (col: number) => string): void {
  const per = d.rows * d.cols;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.fillStyle = t.fg;
  for (let col = 0; col < g.nPrefixCols; col++) ctx.fillText(label(col), colX(g, col) + g.cellW / 2, y + 6);
  ctx.strokeStyle = t.muted;
  ctx.lineWidth = 1;
  const groupW = per * g.cellW;
  for (let f = 0; f <= d.frames; f++) {
    const x = f < d.frames ? colX(g, d.nPrefix + f * per) : colX(g, g.nCols - 1) + g.cellW;
    ctx.beginPath();
    ctx.moveTo(Math.round(x) + 0.5, y - 3);
    ctx.lineTo(Math.round(x) + 0.5, y + 4);
    ctx.stroke();
    if (f > 0 && f < d.frames) {
      // a frame boundary through the rows, so the strip reads as one block per frame
      ctx.strokeStyle = t.bg;
      ctx.beginPath();
      ctx.moveTo(Math.round(x) + 0.5, g.y0);
      ctx.lineTo(Math.round(x) + 0.5, g.y0 + g.nRows * g.cellH);
      ctx.stroke();
      ctx.strokeStyle = t.muted;
    }
    if (f < d.frames) ctx.fillText(`t${f}`, x + groupW / 2, y + 6);
  }
}
