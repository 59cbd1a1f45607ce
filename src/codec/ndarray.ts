/**
 * A numpy array as a value that travels in documents, so filled events carry
 * detector frames that Python reads back as numpy arrays:
 * - in msgpack as the map msgpack-numpy writes (bin keys nd, type, kind, shape,
 *   data; dtype string, shape and C-order bytes exactly as numpy holds them);
 * - in JSON as the nested lists event-model's NumpyEncoder writes (`tolist()`).
 *
 * The bytes are kept as they are (no typed-array view is needed to encode), so a
 * frame is copied once into the file buffer and can be released after writing.
 * `NdScalar` is a numpy scalar (a 0-d result such as `np.float32(x)`), which
 * msgpack-numpy writes as `{nd: False, type, data}`.
 */
import { endianness } from 'node:os';
import { pyFloatRepr, pyJsonString } from './pyjson.js';
import { PyFloat, type PyMap, type Value } from './values.js';

const NATIVE = endianness() === 'LE' ? '<' : '>';
const DTYPE = /^([<>|=])([biufcUSmM])(\d+)(\[[A-Za-z0-9]+\])?$/;

const KEY = {
  nd: Buffer.from('nd'),
  type: Buffer.from('type'),
  kind: Buffer.from('kind'),
  shape: Buffer.from('shape'),
  data: Buffer.from('data'),
} as const;
const EMPTY = Buffer.alloc(0);

export interface DtypeInfo {
  /** numpy's `dtype.str`, e.g. `<u2`, `|u1`, `>f8`, `<U5`. */
  str: string;
  order: '<' | '>' | '|';
  kind: string;
  itemsize: number;
}

/**
 * Parse a numpy dtype string into numpy's canonical `dtype.str` (one-byte and
 * byte-string types get `|`, `=` becomes the native order), or throw.
 */
export function parseDtype(s: string): DtypeInfo {
  const m = DTYPE.exec(s);
  if (!m) throw new TypeError(`unsupported numpy dtype ${JSON.stringify(s)} (only simple, non-structured dtypes)`);
  const kind = m[2]!;
  const n = Number(m[3]);
  const itemsize = kind === 'U' ? 4 * n : n;
  let order = (m[1] === '=' ? NATIVE : m[1]) as '<' | '>' | '|';
  if (kind === 'b' || kind === 'S' || itemsize === 1) order = '|';
  else if (order === '|') throw new TypeError(`numpy dtype ${JSON.stringify(s)} needs a byte order`);
  const valid: Record<string, number[]> = { b: [1], i: [1, 2, 4, 8], u: [1, 2, 4, 8], f: [2, 4, 8], c: [8, 16], m: [8], M: [8] };
  if (valid[kind] && !valid[kind].includes(n)) throw new TypeError(`unsupported numpy dtype ${JSON.stringify(s)}`);
  if ((kind === 'm' || kind === 'M') !== (m[4] !== undefined)) throw new TypeError(`unsupported numpy dtype ${JSON.stringify(s)}`);
  return { str: `${order}${kind}${n}${m[4] ?? ''}`, order, kind, itemsize };
}

type NumericArray =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array
  | Float32Array | Float64Array | BigInt64Array | BigUint64Array;

/** numpy's dtype string for the elements of a typed array (native byte order). */
export function dtypeOfTypedArray(a: NumericArray | Uint8ClampedArray): string {
  if (a instanceof Uint8Array || a instanceof Uint8ClampedArray) return '|u1';
  if (a instanceof Int8Array) return '|i1';
  const t = a instanceof Uint16Array ? 'u2' : a instanceof Int16Array ? 'i2' : a instanceof Uint32Array ? 'u4' : a instanceof Int32Array ? 'i4'
    : a instanceof Float32Array ? 'f4' : a instanceof Float64Array ? 'f8' : a instanceof BigInt64Array ? 'i8' : 'u8';
  return NATIVE + t;
}

function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function halfToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Python's repr of a float, with the common cases done without a regex. */
function floatText(f: number): string {
  const a = Math.abs(f);
  if (a >= 1e-4 && a < 1e16) {
    // JS and Python agree on the shortest round-trip digits; only whole values differ ('1' vs '1.0').
    return Number.isInteger(f) ? `${f}.0` : String(f);
  }
  return pyFloatRepr(f);
}

type Reader = (i: number) => number | bigint | boolean | string;

/** Element i (in C order) of `data` as the Python value `tolist()` gives. */
function elementReader(dt: DtypeInfo, data: Buffer): Reader {
  const le = dt.order !== '>';
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = dt.itemsize;
  switch (dt.kind + n) {
    case 'b1': return (i) => data[i] !== 0;
    case 'u1': return (i) => data[i]!;
    case 'i1': return (i) => view.getInt8(i);
    case 'u2': return (i) => view.getUint16(i * 2, le);
    case 'i2': return (i) => view.getInt16(i * 2, le);
    case 'u4': return (i) => view.getUint32(i * 4, le);
    case 'i4': return (i) => view.getInt32(i * 4, le);
    case 'u8': return (i) => { const v = view.getBigUint64(i * 8, le); return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v; };
    case 'i8': return (i) => { const v = view.getBigInt64(i * 8, le); return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v; };
    case 'f2': return (i) => halfToNumber(view.getUint16(i * 2, le));
    case 'f4': return (i) => view.getFloat32(i * 4, le);
    case 'f8': return (i) => view.getFloat64(i * 8, le);
  }
  if (dt.kind === 'U') {
    const chars = n / 4;
    return (i) => {
      let s = '';
      for (let c = 0; c < chars; c++) {
        const cp = view.getUint32(i * n + c * 4, le);
        s += String.fromCodePoint(cp);
      }
      return s.replace(/\0+$/, ''); // numpy drops trailing NULs
    };
  }
  const what = dt.kind === 'c' ? 'complex' : dt.kind === 'S' ? 'bytes' : dt.kind === 'M' ? 'datetime' : 'timedelta';
  throw new TypeError(`Object of type ${what} is not JSON serializable (numpy dtype ${dt.str})`);
}

function isFloatKind(kind: string): boolean {
  return kind === 'f';
}

/** Nested lists over a C-order element sequence, built row by row. */
function nest<T>(shape: readonly number[], leaf: (i: number) => T, join: (items: T[]) => T): T {
  if (shape.length === 0) return leaf(0);
  const strides: number[] = new Array(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d]!;
  }
  const walk = (dim: number, offset: number): T => {
    const n = shape[dim]!;
    const items: T[] = new Array(n);
    if (dim === shape.length - 1) for (let i = 0; i < n; i++) items[i] = leaf(offset + i);
    else for (let i = 0; i < n; i++) items[i] = walk(dim + 1, offset + i * strides[dim]!);
    return join(items);
  };
  return walk(0, 0);
}

export class NdArray {
  readonly dtype: string;
  readonly shape: readonly number[];
  /** C-order element bytes in the byte order `dtype` names. */
  readonly data: Buffer;
  private readonly info: DtypeInfo;

  constructor(dtype: string, shape: readonly number[], data: Buffer) {
    this.info = parseDtype(dtype);
    this.dtype = this.info.str;
    for (const d of shape) if (!Number.isSafeInteger(d) || d < 0) throw new TypeError(`bad array shape [${shape.join(', ')}]`);
    this.shape = [...shape];
    const want = this.info.itemsize * product(shape);
    if (data.length !== want) throw new TypeError(`array data is ${data.length} bytes, but dtype ${this.dtype} and shape [${shape.join(', ')}] need ${want}`);
    this.data = data;
  }

  /** Wrap a typed array's memory (no copy) with a shape; the dtype follows its element type. */
  static fromTypedArray(a: NumericArray | Uint8ClampedArray, shape: readonly number[] = [a.length]): NdArray {
    return new NdArray(dtypeOfTypedArray(a), shape, Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  }

  get ndim(): number {
    return this.shape.length;
  }

  get size(): number {
    return product(this.shape);
  }

  get itemsize(): number {
    return this.info.itemsize;
  }

  get nbytes(): number {
    return this.data.length;
  }

  /** Element i in C order, as `tolist()` gives it (bool, int, float, bigint, str). */
  item(i = 0): number | bigint | boolean | string {
    if (i < 0 || i >= this.size) throw new RangeError(`index ${i} out of range for an array of ${this.size}`);
    return elementReader(this.info, this.data)(i);
  }

  /** The map msgpack_numpy.encode writes: {nd: True, type, kind: b'', shape, data}. */
  toMsgpackValue(): PyMap {
    return new Map<string | Uint8Array, Value>([
      [KEY.nd, true],
      [KEY.type, this.dtype],
      [KEY.kind, EMPTY],
      [KEY.shape, [...this.shape]],
      [KEY.data, this.data],
    ]);
  }

  /** `arr.tolist()` as Values (ints, PyFloat for whole floats, nested lists). */
  toJsonValue(): Value {
    const read = elementReader(this.info, this.data);
    const float = isFloatKind(this.info.kind);
    return nest<Value>(this.shape, (i) => {
      const v = read(i);
      return float && (Number.isInteger(v) || Object.is(v, -0)) ? new PyFloat(v as number) : v;
    }, (items) => items);
  }

  /** `json.dumps(arr.tolist())`, written directly as text (frames have millions of elements). */
  toPyJson(): string {
    const read = elementReader(this.info, this.data);
    const kind = this.info.kind;
    const leaf: (i: number) => string =
      kind === 'f' ? (i) => floatText(read(i) as number)
        : kind === 'b' ? (i) => (read(i) ? 'true' : 'false')
          : kind === 'U' ? (i) => pyJsonString(read(i) as string)
            : (i) => String(read(i));
    return nest<string>(this.shape, leaf, (items) => `[${items.join(', ')}]`);
  }

  /** Same dtype, shape and bytes. */
  equals(other: NdArray): boolean {
    return this.dtype === other.dtype && this.shape.length === other.shape.length && this.shape.every((d, i) => d === other.shape[i]) && this.data.equals(other.data);
  }

  /** An NdArray from a decoded msgpack-numpy map, or undefined if `v` is not one. */
  static fromMsgpackValue(v: unknown): NdArray | undefined {
    if (!(v instanceof Map)) return undefined;
    const get = (k: string): Value | undefined => {
      for (const [key, val] of v as PyMap) if (key instanceof Uint8Array && Buffer.from(key).toString('latin1') === k) return val;
      return undefined;
    };
    if (get('nd') !== true) return undefined;
    const kind = get('kind');
    if (kind instanceof Uint8Array && kind.length > 0) throw new TypeError(`msgpack-numpy array of kind ${Buffer.from(kind).toString('latin1')} (structured or object) is not supported`);
    const type = get('type');
    const shape = get('shape');
    const data = get('data');
    if (typeof type !== 'string' || !Array.isArray(shape) || !(data instanceof Uint8Array)) throw new TypeError('malformed msgpack-numpy array');
    return new NdArray(type, shape.map(Number), Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  /** This array with its axes reversed in memory order: Fortran-order bytes → C order. */
  static fromFortranOrder(dtype: string, shape: readonly number[], data: Buffer): NdArray {
    const info = parseDtype(dtype);
    if (shape.length < 2) return new NdArray(info.str, shape, data);
    const n = product(shape);
    const size = info.itemsize;
    const out = Buffer.allocUnsafe(data.length);
    // Fortran strides (in elements): first axis fastest.
    const fstride: number[] = [];
    let s = 1;
    for (const d of shape) {
      fstride.push(s);
      s *= d;
    }
    const idx = new Array<number>(shape.length).fill(0);
    for (let c = 0; c < n; c++) {
      let f = 0;
      for (let d = 0; d < shape.length; d++) f += idx[d]! * fstride[d]!;
      data.copy(out, c * size, f * size, f * size + size);
      for (let d = shape.length - 1; d >= 0; d--) {
        if (++idx[d]! < shape[d]!) break;
        idx[d] = 0;
      }
    }
    return new NdArray(info.str, shape, out);
  }
}

/** A numpy scalar such as `np.float32(1.5)`: msgpack-numpy's `{nd: False, type, data}`; JSON `.item()`. */
export class NdScalar {
  readonly dtype: string;
  readonly data: Buffer;
  private readonly info: DtypeInfo;

  constructor(dtype: string, data: Buffer) {
    this.info = parseDtype(dtype);
    this.dtype = this.info.str;
    if (data.length !== this.info.itemsize) throw new TypeError(`scalar data is ${data.length} bytes, dtype ${this.dtype} needs ${this.info.itemsize}`);
    this.data = data;
  }

  item(): number | bigint | boolean | string {
    return elementReader(this.info, this.data)(0);
  }

  toMsgpackValue(): PyMap {
    return new Map<string | Uint8Array, Value>([
      [KEY.nd, false],
      [KEY.type, this.dtype],
      [KEY.data, this.data],
    ]);
  }

  toJsonValue(): Value {
    const v = this.item();
    return this.info.kind === 'f' && (Number.isInteger(v) || Object.is(v, -0)) ? new PyFloat(v as number) : v;
  }

  toPyJson(): string {
    return new NdArray(this.dtype, [], this.data).toPyJson();
  }
}

function bytesKeyed(m: PyMap, key: Buffer): Value | undefined {
  for (const [k, v] of m) if (typeof k !== 'string' && key.equals(k)) return v;
  return undefined;
}

/**
 * The numpy value a msgpack-numpy map stands for, as msgpack_numpy.decode
 * builds it (`{nd: True, type, kind, shape, data}` an array, `{nd: False, type,
 * data}` a scalar); undefined for any other map, and for structured or object
 * arrays (kind V or O), which have no plain JSON or BSON form. Python readers
 * decode such maps to numpy, then write JSON or MongoDB documents through
 * event-model's NumpyEncoder (`tolist()` / `.item()`), so our encoders do too.
 */
export function numpyOfMsgpackMap(m: PyMap): NdArray | NdScalar | undefined {
  const nd = bytesKeyed(m, KEY.nd);
  if (nd !== true && nd !== false) return undefined;
  let type = bytesKeyed(m, KEY.type);
  const data = bytesKeyed(m, KEY.data);
  if (type instanceof Uint8Array) type = Buffer.from(type).toString('latin1');
  if (typeof type !== 'string' || !(data instanceof Uint8Array)) return undefined;
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  try {
    if (nd === false) return new NdScalar(type, buf);
    const kind = bytesKeyed(m, KEY.kind);
    if (kind instanceof Uint8Array && kind.length > 0) return undefined;
    const shape = bytesKeyed(m, KEY.shape);
    if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number')) return undefined;
    return new NdArray(type, shape as number[], buf);
  } catch {
    return undefined; // not a dtype we read: left as a map, so the encoder names it
  }
}
