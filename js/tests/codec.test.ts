import { describe, expect, it } from "vitest";
import { decode, encode, halfToFloat, stridesOf, toBytes } from "../src/shared/codec";

function le(values: number[], dtype: "float32" | "int16" | "uint16" | "float64"): Uint8Array {
  const C = { float32: Float32Array, int16: Int16Array, uint16: Uint16Array, float64: Float64Array }[dtype];
  return new Uint8Array(new C(values).buffer);
}

describe("codec", () => {
  it("decodes a DataView with a non-zero byteOffset (the view does not start the buffer)", () => {
    const payload = le([1.5, -2, 3.25, 4, 5, 6], "float32");
    const big = new Uint8Array(64).fill(0xff);
    big.set(payload, 16);
    const view = new DataView(big.buffer, 16, payload.byteLength);
    const arr = decode({ view, dtype: "float32", shape: [2, 3] })!;
    expect(Array.from(arr.data)).toEqual([1.5, -2, 3.25, 4, 5, 6]);
    expect(arr.shape).toEqual([2, 3]);
    expect(arr.strides).toEqual([3, 1]);
    // no copy when aligned: the typed array shares the buffer
    expect(arr.data.buffer).toBe(big.buffer);
    expect(arr.data.byteOffset).toBe(16);
  });

  it("copies when the offset is not aligned to the element size", () => {
    const payload = le([7, -8, 9], "float32");
    const big = new Uint8Array(40);
    big.set(payload, 3);
    const arr = decode({ view: new DataView(big.buffer, 3, 12), dtype: "float32", shape: [3] })!;
    expect(Array.from(arr.data)).toEqual([7, -8, 9]);
  });

  it("accepts ArrayBuffer, typed arrays (with offset), plain byte lists and base64", () => {
    const bytes = le([1, 2, 3, 4], "int16");
    expect(Array.from(decode({ view: bytes.buffer, dtype: "int16", shape: [4] })!.data)).toEqual([1, 2, 3, 4]);
    const holder = new Uint8Array(bytes.length + 8);
    holder.set(bytes, 8);
    const sub = holder.subarray(8);
    expect(Array.from(decode({ view: sub, dtype: "int16", shape: [2, 2] })!.data)).toEqual([1, 2, 3, 4]);
    expect(Array.from(decode({ view: Array.from(bytes), dtype: "int16", shape: [4] })!.data)).toEqual([1, 2, 3, 4]);
    const b64 = btoa(String.fromCharCode(...bytes));
    expect(Array.from(decode({ view: b64, dtype: "int16", shape: [4] })!.data)).toEqual([1, 2, 3, 4]);
  });

  it("round-trips every integer and float dtype", () => {
    const cases: [string, ArrayLike<number>][] = [
      ["uint8", [0, 1, 255]],
      ["int8", [-128, 0, 127]],
      ["uint16", [0, 65535, 7]],
      ["int16", [-32768, 32767, 0]],
      ["uint32", [0, 4294967295, 1]],
      ["int32", [-2147483648, 2147483647, 5]],
      ["float32", [0.5, -1e-3, 3e38]],
      ["float64", [Math.PI, -1e-300, 1e300]],
    ];
    const ctors: Record<string, { from(a: ArrayLike<number>): ArrayBufferView & ArrayLike<number> }> = {
      uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array,
      uint32: Uint32Array, int32: Int32Array, float32: Float32Array, float64: Float64Array,
    };
    for (const [dtype, values] of cases) {
      const typed = ctors[dtype].from(values);
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const enc = encode(typed as any, [values.length], dtype as any);
      expect(enc.view).toBeInstanceOf(DataView);
      expect(Array.from(decode(enc)!.data)).toEqual(Array.from(typed));
    }
  });

  it("widens float16", () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0x0001)).toBeCloseTo(5.96e-8, 10);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(Number.isNaN(halfToFloat(0x7e00))).toBe(true);
    const u16 = new Uint16Array([0x3c00, 0x3800, 0x0000, 0xbc00]);
    const big = new Uint8Array(3 + 8);
    big.set(new Uint8Array(u16.buffer), 3); // odd offset
    const arr = decode({ view: new DataView(big.buffer, 3, 8), dtype: "float16", shape: [4] })!;
    expect(arr.data).toBeInstanceOf(Float32Array);
    expect(Array.from(arr.data)).toEqual([1, 0.5, 0, -1]);
  });

  it("returns null for an empty trait and rejects bad input", () => {
    expect(decode({})).toBeNull();
    expect(decode(null)).toBeNull();
    expect(() => decode({ view: new Uint8Array(3), dtype: "float32", shape: [1] })).toThrow(/needs 4 bytes/);
    expect(() => decode({ view: new Uint8Array(3), dtype: "complex64", shape: [1] })).toThrow(/unsupported/);
  });

  it("computes C strides and byte views", () => {
    expect(stridesOf([2, 3, 4])).toEqual([12, 4, 1]);
    const u = new Uint8Array([1, 2, 3, 4]);
    const v = new DataView(u.buffer, 1, 2);
    expect(Array.from(toBytes(v))).toEqual([2, 3]);
  });
});
