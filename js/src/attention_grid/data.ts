// Read access to the AttentionGrid arrays as the front end receives them: patterns
// [B, L, H, T, T] (uint8 with one float32 scale per row, or float32), rollout [B, L, T, T].
import { decode, type EncodedArray, type NDArray } from "../shared/codec";

export type Direction = "row" | "column";

export class Stack {
  readonly values: NDArray;
  readonly scale: Float32Array | null;
  readonly B: number;
  readonly M: number;
  readonly T: number;

  /** `values`: [B, M, T, T] where M = L * H (patterns) or L (rollout); `scale`: [B, M, T] or null. */
  constructor(values: NDArray, scale: NDArray | null) {
    const s = values.shape;
    const T = s[s.length - 1];
    if (s[s.length - 2] !== T) throw new Error(`attention must be square, got [${s.join(", ")}]`);
    this.values = values;
    this.B = s[0];
    this.T = T;
    this.M = s.slice(1, -2).reduce((a, b) => a * b, 1);
    this.scale = scale ? (scale.data as Float32Array) : null;
    if (this.scale && this.scale.length !== this.B * this.M * T) throw new Error("scale does not match the patterns");
  }

  /** out[k] = A[b, m, token, k] (row) or out[q] = A[b, m, q, token] (column). */
  fill(out: Float32Array, b: number, m: number, token: number, direction: Direction): void {
    const T = this.T;
    const data = this.values.data;
    const mat = (b * this.M + m) * T;
    const sc = this.scale;
    if (direction === "row") {
      const base = (mat + token) * T;
      const s = sc ? sc[mat + token] : 1;
      for (let k = 0; k < T; k++) out[k] = data[base + k] * s;
    } else {
      for (let q = 0; q < T; q++) out[q] = data[(mat + q) * T + token] * (sc ? sc[mat + q] : 1);
    }
  }

  /** The full T x T matrix of (b, m) as floats. */
  matrix(b: number, m: number, out?: Float32Array): Float32Array {
    const T = this.T;
    const res = out ?? new Float32Array(T * T);
    const data = this.values.data;
    const mat = (b * this.M + m) * T;
    const sc = this.scale;
    for (let q = 0; q < T; q++) {
      const s = sc ? sc[mat + q] : 1;
      const base = (mat + q) * T;
      for (let k = 0; k < T; k++) res[q * T + k] = data[base + k] * s;
    }
    return res;
  }

  value(b: number, m: number, q: number, k: number): number {
    const T = this.T;
    const mat = (b * this.M + m) * T;
    return this.values.data[(mat + q) * T + k] * (this.scale ? this.scale[mat + q] : 1);
  }

  static from(values: unknown, scale: unknown): Stack | null {
    const v = decode(values as EncodedArray);
    if (!v) return null;
    const s = decode(scale as EncodedArray);
    return new Stack(v, s);
  }
}
