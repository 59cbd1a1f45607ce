/**
 * BSON ⇄ the value model, for MongoDB sources and sinks.
 *
 * Reading: documents are fetched as raw BSON (the driver's `raw: true`) and
 * decoded here, because the driver's own decoder builds plain JS objects
 * (which reorder integer-like keys such as "0") and, with `promoteValues`,
 * loses the double/int distinction. Here a double with a whole value becomes a
 * `PyFloat`, int32 a number, int64 a number or (beyond 2^53) an exact
 * `bigint`, a sub-document a plain object or an order-keeping `Map`
 * (`makeDoc`), and the top-level `_id` is split off, never part of the document.
 *
 * Writing: `toBson` turns a value into what the driver serializes with the
 * same types pymongo would store: floats (whole or not) as Double, ints as
 * Int32 or Int64 by range, bigints as Int64, maps in their key order.
 * (FerretDB v1 needs one detour, for arrays inside arrays: see NESTED_ARRAY.)
 */
import { Binary, Double, Int32, Long, ObjectId } from 'mongodb';
import { PackStreamError } from '../errors.js';
import { makeDoc } from './msgpack.js';
import { numpyOfMsgpackMap } from './ndarray.js';
import { depthError, limits } from '../limits.js';
import { PyFloat, docFromEntries, docKeys, hasKeyOrder, isEncodable, isPlainDoc, type Doc, type Value } from './values.js';

/** A stored document: the event-model document and its `_id`, kept apart. */
export interface StoredDoc {
  doc: Doc;
  /** `_id` as the driver takes it in a query (ObjectId, string or number), or undefined. */
  id: unknown;
  /** `_id` as a string that sorts like the BSON values do (ObjectId: its hex). */
  idKey: string;
  /** Size of the BSON document in bytes. */
  bytes: number;
}

const TYPE_NAMES: Record<number, string> = {
  0x06: 'undefined', 0x09: 'date', 0x0b: 'regex', 0x0c: 'DBPointer', 0x0d: 'JavaScript code', 0x0e: 'symbol',
  0x0f: 'JavaScript code with scope', 0x11: 'timestamp', 0x13: 'decimal128', 0xff: 'MinKey', 0x7f: 'MaxKey',
};

const TWO_53 = 2n ** 53n;

class BsonReader {
  pos = 0;
  private depth = 0;
  constructor(
    readonly buf: Buffer,
    readonly where: string,
  ) {}

  fail(msg: string): never {
    throw new PackStreamError('E_CORRUPT', `${this.where}: ${msg}`, { subject: this.where });
  }

  tooDeep(path: string): never {
    const e = depthError(`at ${path}`);
    throw new PackStreamError(e.code, `${this.where}: ${e.message}`, { subject: this.where });
  }

  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) this.fail('unterminated field name');
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }

  int32(): number {
    const v = this.buf.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  /** Elements of the document starting at `pos`; calls `each` with the type, key and reader at the value. */
  elements(each: (type: number, key: string) => void): void {
    const size = this.int32();
    const end = this.pos - 4 + size;
    if (size < 5 || end > this.buf.length) this.fail('bad document length');
    while (this.pos < end - 1) {
      const type = this.buf[this.pos++]!;
      const key = this.cstring();
      each(type, key);
    }
    if (this.buf[this.pos] !== 0) this.fail('document does not end where its length says');
    this.pos = end;
  }

  value(type: number, path: string): Value {
    const b = this.buf;
    switch (type) {
      case 0x01: {
        const v = b.readDoubleLE(this.pos);
        this.pos += 8;
        return Number.isInteger(v) || Object.is(v, -0) ? new PyFloat(v) : v;
      }
      case 0x02: {
        const n = this.int32();
        const s = b.toString('utf8', this.pos, this.pos + n - 1);
        this.pos += n;
        return s;
      }
      case 0x03: {
        if (++this.depth > limits.maxDepth) this.tooDeep(path);
        const pairs: [string, Value][] = [];
        this.elements((t, k) => pairs.push([k, this.value(t, `${path}.${k}`)]));
        this.depth--;
        return makeDoc(pairs) as Value;
      }
      case 0x04: {
        if (++this.depth > limits.maxDepth) this.tooDeep(path);
        const out: Value[] = [];
        this.elements((t, k) => {
          const v = this.value(t, `${path}[${k}]`);
          out.push(isPlainDoc(v) && Object.keys(v).length === 1 && Array.isArray(v[NESTED_ARRAY]) ? v[NESTED_ARRAY] : v);
        });
        this.depth--;
        return out;
      }
      case 0x05: {
        let n = this.int32();
        const subtype = b[this.pos++]!;
        if (subtype === 0x02) {
          n = this.int32();
        }
        const out = new Uint8Array(n);
        out.set(b.subarray(this.pos, this.pos + n));
        this.pos += n;
        return out;
      }
      case 0x07: {
        const hex = b.toString('hex', this.pos, this.pos + 12);
        this.pos += 12;
        return hex;
      }
      case 0x08:
        return b[this.pos++] !== 0;
      case 0x0a:
        return null;
      case 0x10:
        return this.int32();
      case 0x12: {
        const v = b.readBigInt64LE(this.pos);
        this.pos += 8;
        return v >= -TWO_53 && v <= TWO_53 && Number.isSafeInteger(Number(v)) ? Number(v) : v;
      }
      default:
        throw new PackStreamError(
          'E_UNSUPPORTED',
          `${this.where}: field ${path} holds a BSON ${TYPE_NAMES[type] ?? `type 0x${type.toString(16)}`}, which event-model documents cannot carry`,
          { subject: this.where },
        );
    }
  }

  /** The top-level `_id` value as the driver would take it in a query. */
  id(type: number): { id: unknown; idKey: string } {
    const b = this.buf;
    switch (type) {
      case 0x07: {
        const bytes = b.subarray(this.pos, this.pos + 12);
        this.pos += 12;
        return { id: new ObjectId(Buffer.from(bytes)), idKey: bytes.toString('hex') };
      }
      case 0x02: {
        const s = this.value(type, '_id') as string;
        return { id: s, idKey: s };
      }
      case 0x10:
      case 0x12:
      case 0x01: {
        const v = this.value(type, '_id');
        const n = v instanceof PyFloat ? v.value : v;
        return { id: typeof n === 'bigint' ? Long.fromBigInt(n) : n, idKey: String(n) };
      }
      default:
        this.skip(type);
        return { id: undefined, idKey: '' };
    }
  }

  skip(type: number): void {
    const b = this.buf;
    switch (type) {
      case 0x01: case 0x09: case 0x11: case 0x12: this.pos += 8; return;
      case 0x02: case 0x0d: case 0x0e: this.pos += 4 + b.readInt32LE(this.pos); return;
      case 0x03: case 0x04: case 0x0f: this.pos += b.readInt32LE(this.pos); return;
      case 0x05: this.pos += 5 + b.readInt32LE(this.pos); return;
      case 0x07: this.pos += 12; return;
      case 0x08: this.pos += 1; return;
      case 0x0a: case 0x06: case 0xff: case 0x7f: return;
      case 0x0b: this.cstring(); this.cstring(); return;
      case 0x0c: this.pos += 4 + b.readInt32LE(this.pos) + 12; return;
      case 0x10: this.pos += 4; return;
      case 0x13: this.pos += 16; return;
      default: this.fail(`unknown BSON type 0x${type.toString(16)}`);
    }
  }
}

/**
 * Decode one raw BSON document (as the driver returns with `raw: true`).
 * `where` names the collection for messages.
 */
export function decodeStored(raw: Uint8Array, where = 'document'): StoredDoc {
  const buf = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const r = new BsonReader(buf, where);
  const pairs: [string, Value][] = [];
  let id: unknown;
  let idKey = '';
  r.elements((type, key) => {
    if (key === '_id') ({ id, idKey } = r.id(type));
    else pairs.push([key, r.value(type, key)]);
  });
  return { doc: docFromEntries(pairs), id, idKey, bytes: buf.length };
}

// ------------------------------------------------------------------ writing

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * FerretDB v1 cannot store an array directly inside an array (bluesky's
 * `hints: {dimensions: [[['x'], 'primary']]}` is one). For FerretDB such an
 * inner array is stored as `{__pack_stream_nested_array__: [...]}`, and the
 * decoder turns that back into the array, on any server.
 */
export const NESTED_ARRAY = '__pack_stream_nested_array__';

export interface ToBsonOptions {
  /**
   * Store nested arrays the way FerretDB can (see NESTED_ARRAY), and refuse
   * what it cannot store at all (NaN, ±Infinity, field names with '.' or
   * starting with '$') with a clear error, instead of letting the server drop
   * the connection or reject a whole batch.
   */
  ferretdb?: boolean;
  /** For messages: which document this is. */
  where?: string;
}

function encodeError(opts: ToBsonOptions, path: string, msg: string): PackStreamError {
  const where = opts.where ?? 'document';
  return new PackStreamError('E_ENCODE', `${where}: ${path}: ${msg}`, { subject: where });
}

function checkKey(key: string, opts: ToBsonOptions, path: string): void {
  if (opts.ferretdb && (key.includes('.') || key.startsWith('$'))) {
    throw encodeError(opts, path, `FerretDB cannot store a field named ${JSON.stringify(key)} (no '.' and no leading '$'); real MongoDB (5.0+) can`);
  }
}

/** A value as the driver should serialize it, keeping Python's types. */
export function toBson(v: Value, opts: ToBsonOptions = {}, path = '$', depth = 0): unknown {
  if (v === null || typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    // pymongo cannot encode a lone surrogate as UTF-8 either; the driver would write U+FFFD.
    if (!v.isWellFormed()) throw encodeError(opts, path, 'a string holds a lone surrogate, which is not valid UTF-8');
    return v;
  }
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return v >= INT32_MIN && v <= INT32_MAX ? new Int32(v) : Long.fromNumber(v);
    if (opts.ferretdb && !Number.isFinite(v)) throw encodeError(opts, path, `FerretDB cannot store ${v}; real MongoDB can`);
    return new Double(v);
  }
  if (v instanceof PyFloat) return new Double(v.value);
  if (typeof v === 'bigint') {
    if (v < INT64_MIN || v > INT64_MAX) throw encodeError(opts, path, `${v} does not fit in MongoDB's 8-byte integers`);
    return Long.fromBigInt(v);
  }
  if (v instanceof Uint8Array) return new Binary(v);
  if (++depth > limits.maxDepth) throw encodeError(opts, path, depthError('to store').message);
  if (Array.isArray(v)) {
    return v.map((x, i) => {
      const b = toBson(x, opts, `${path}[${i}]`, depth);
      return opts.ferretdb && Array.isArray(x) ? { [NESTED_ARRAY]: b } : b;
    });
  }
  if (v instanceof Map) {
    // msgpack-numpy values go in as suitcase-mongo stores them (event_model.sanitize_doc).
    const np = numpyOfMsgpackMap(v);
    if (np !== undefined) return toBson(np.toJsonValue(), opts, path, depth);
    const out = new Map<string, unknown>();
    for (const [k, x] of v) {
      if (typeof k !== 'string') throw encodeError(opts, path, 'a map with binary keys (msgpack-numpy) cannot be stored in MongoDB');
      checkKey(k, opts, path);
      out.set(k, toBson(x, opts, `${path}.${k}`, depth));
    }
    return out;
  }
  if (isEncodable(v)) {
    const json = v.toJsonValue?.();
    if (json === undefined) throw encodeError(opts, path, 'this value has no JSON form to store in MongoDB');
    return toBson(json, opts, path, depth);
  }
  if (!isPlainDoc(v)) throw encodeError(opts, path, `cannot store ${Object.prototype.toString.call(v)}`);
  if (hasKeyOrder(v)) {
    // Keys such as "0" would move to the front of a JS object: a Map keeps them in place.
    const m = new Map<string, unknown>();
    for (const k of docKeys(v)) {
      const x = v[k];
      if (x === undefined) continue;
      checkKey(k, opts, path);
      m.set(k, toBson(x, opts, `${path}.${k}`, depth));
    }
    return m;
  }
  const out: Record<string, unknown> = {};
  for (const k in v) {
    const x = v[k];
    if (x === undefined) continue;
    checkKey(k, opts, path);
    if (k === '__proto__') Object.defineProperty(out, k, { value: toBson(x, opts, `${path}.${k}`, depth), enumerable: true, writable: true, configurable: true });
    else out[k] = toBson(x, opts, `${path}.${k}`, depth);
  }
  return out;
}

/**
 * A top-level document to insert, with a fresh `_id` first (pymongo also
 * writes `_id` first). A document whose keys need a Map stays a Map.
 */
export function toBsonDocument(doc: Doc, opts: ToBsonOptions = {}): Record<string, unknown> {
  const body = toBson(doc as Value, opts);
  const id = new ObjectId();
  if (body instanceof Map) {
    const m = new Map<string, unknown>([['_id', id], ...body]);
    // The driver adds an `_id` property when it sees none; give it the same one.
    Object.defineProperty(m, '_id', { value: id, enumerable: false });
    return m as unknown as Record<string, unknown>;
  }
  return { _id: id, ...(body as Record<string, unknown>) };
}
