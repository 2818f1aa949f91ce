// The binary array codec shared by every widget.
//
// Python sends an array in a trait as {view, dtype, shape} (see prisma_widgets/widgets/_base.py). The
// `view` arrives as a DataView in JupyterLab / VS Code / Colab (ipywidgets' buffer handling), as an
// ArrayBuffer or typed array from other hosts, or as base64 text. Its bytes may start anywhere inside a
// larger buffer (non-zero byteOffset), so the typed array is built on (buffer, byteOffset, length),
// never on the whole buffer; when the offset is not aligned to the element size the bytes are copied.

export type DType =
  | "uint8"
  | "int8"
  | "uint16"
  | "int16"
  | "uint32"
  | "int32"
  | "float16"
  | "float32"
  | "float64";

export type TypedArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array;

export type BinaryView = DataView | ArrayBufferLike | ArrayBufferView | ArrayLike<number> | string;

export interface EncodedArray {
  view: BinaryView;
  dtype: DType | string;
  shape: number[];
}

export interface NDArray<T extends TypedArray = TypedArray> {
  /** Elements in C order. float16 input is widened to a Float32Array. */
  data: T;
  dtype: DType;
  shape: number[];
  /** Element strides (not bytes), C order. */
  strides: number[];
}

type Ctor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray;
  new (length: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
};

const CTORS: Record<Exclude<DType, "float16">, Ctor> = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
};

export const DTYPE_SIZE: Record<DType, number> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float16: 2,
  float32: 4,
  float64: 8,
};

export function isDType(x: string): x is DType {
  return Object.prototype.hasOwnProperty.call(DTYPE_SIZE, x);
}

export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function base64ToBytes(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The bytes of any accepted view, as a Uint8Array over the same memory (no copy where possible). */
export function toBytes(view: BinaryView): Uint8Array {
  if (typeof view === "string") return base64ToBytes(view);
  if (view instanceof ArrayBuffer) return new Uint8Array(view);
  if (typeof SharedArrayBuffer !== "undefined" && view instanceof SharedArrayBuffer) return new Uint8Array(view);
  if (ArrayBuffer.isView(view)) return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  // a plain list of byte values (some hosts serialise buffers that way)
  return Uint8Array.from(view as ArrayLike<number>);
}

/** IEEE 754 half precision to number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Decode {view, dtype, shape}; `null` for an empty trait ({} or null). */
export function decode(enc: Partial<EncodedArray> | null | undefined): NDArray | null {
  if (!enc || enc.view == null || !enc.shape || !enc.dtype) return null;
  const { dtype, shape } = enc as EncodedArray;
  if (!isDType(dtype)) throw new Error(`unsupported dtype ${String(dtype)}`);
  const n = sizeOf(shape);
  const bytes = toBytes((enc as EncodedArray).view);
  const width = DTYPE_SIZE[dtype];
  if (bytes.byteLength < n * width) {
    throw new Error(`array of shape [${shape.join(", ")}] ${dtype} needs ${n * width} bytes, got ${bytes.byteLength}`);
  }
  let data: TypedArray;
  if (dtype === "float16") {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, n * 2);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
    data = out;
  } else {
    const C = CTORS[dtype];
    if (bytes.byteOffset % width === 0) {
      data = new C(bytes.buffer, bytes.byteOffset, n);
    } else {
      // unaligned: copy into a fresh buffer
      const copy = new Uint8Array(n * width);
      copy.set(bytes.subarray(0, n * width));
      data = new C(copy.buffer, 0, n);
    }
  }
  return { data, dtype, shape: shape.slice(), strides: stridesOf(shape) };
}

/** Encode a typed array (for tests and for widgets that send arrays back). */
export function encode(data: TypedArray, shape: number[], dtype: DType): EncodedArray {
  return { view: new DataView(data.buffer, data.byteOffset, data.byteLength), dtype, shape: shape.slice() };
}
