// Value -> [0, 1] colour scales with their true-value ticks: linear, log, and linear with a
// percentile clip. Shared by every widget's colour bar.

export type ScaleKind = "linear" | "log" | "percentile";

export interface ColorScale {
  kind: ScaleKind;
  /** Value mapped to t = 0 (for log: the floor; smaller values get t = 0). */
  lo: number;
  /** Value mapped to t = 1 (for percentile: the clip; larger values get t = 1). */
  hi: number;
  /** Largest value in the data (>= hi when clipped). */
  max: number;
  /** True when values above `hi` exist and are clipped. */
  clipped: boolean;
  map(v: number): number;
}

/** How many decades a log scale spans at most below its top. */
export const LOG_DECADES = 4;

/** The p-th percentile (0..100) of values, linear interpolation between order statistics. */
export function percentile(values: ArrayLike<number>, p: number): number {
  const n = values.length;
  if (n === 0) return 0;
  const a = Float64Array.from(values as ArrayLike<number>);
  a.sort();
  const pos = (Math.min(Math.max(p, 0), 100) / 100) * (n - 1);
  const i = Math.floor(pos);
  const f = pos - i;
  return i + 1 < n ? a[i] * (1 - f) + a[i + 1] * f : a[i];
}

export function extent(values: ArrayLike<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : [0, 0];
}

/** Smallest strictly positive value (Infinity if none). */
export function minPositive(values: ArrayLike<number>): number {
  let m = Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v > 0 && v < m) m = v;
  }
  return m;
}

/**
 * A scale for non-negative data (attention, probabilities). `values` are all the values the scale
 * must cover (one thumbnail, one layer, or everything).
 */
export function makeScale(kind: ScaleKind, values: ArrayLike<number>, pct = 99): ColorScale {
  const [, max] = extent(values);
  const top = max > 0 ? max : 1;
  if (kind === "log") {
    const floor = Math.max(minPositive(values), top * 10 ** -LOG_DECADES);
    const lo = Math.min(floor, top / 10);
    const llo = Math.log10(lo);
    const span = Math.log10(top) - llo || 1;
    return {
      kind,
      lo,
      hi: top,
      max,
      clipped: false,
      map: (v: number) => (v <= lo ? 0 : v >= top ? 1 : (Math.log10(v) - llo) / span),
    };
  }
  let hi = top;
  let clipped = false;
  if (kind === "percentile") {
    const p = percentile(values, pct);
    if (p > 0 && p < top) {
      hi = p;
      clipped = true;
    }
  }
  return { kind, lo: 0, hi, max, clipped, map: (v: number) => (v <= 0 ? 0 : v >= hi ? 1 : v / hi) };
}

/** Signed data: symmetric linear scale around zero (diverging colour maps). */
export function makeSymmetricScale(values: ArrayLike<number>): ColorScale {
  const [lo, hi] = extent(values);
  const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  return { kind: "linear", lo: -m, hi: m, max: hi, clipped: false, map: (v: number) => Math.min(1, Math.max(0, 0.5 + v / (2 * m))) };
}

/** "Nice" tick values within [lo, hi] for a linear axis: multiples of 1, 2 or 5 x 10^k. */
export function linearTicks(lo: number, hi: number, target = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  const start = Math.ceil(lo / step - 1e-9) * step;
  for (let v = start; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : +v.toPrecision(12));
  return out;
}

/** Tick values for a log axis: powers of ten in [lo, hi], with 2x and 5x when there are few decades. */
export function logTicks(lo: number, hi: number): number[] {
  if (!(lo > 0) || !(hi > lo)) return [hi];
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  const mults = b - a <= 2 ? [1, 2, 5] : [1];
  const out: number[] = [];
  for (let e = a; e <= b; e++) {
    for (const m of mults) {
      const v = +(m * 10 ** e).toPrecision(6);
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
    }
  }
  return out;
}

export function ticksFor(scale: ColorScale): number[] {
  return scale.kind === "log" ? logTicks(scale.lo, scale.hi) : linearTicks(scale.lo, scale.hi);
}

/** Short, honest number formatting for ticks and read-outs. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) {
    const [m, e] = v.toExponential(1).split("e");
    return `${m.replace(/\.0$/, "")}e${Number(e)}`;
  }
  const s = v.toPrecision(a >= 1 ? 3 : 2);
  return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
}
