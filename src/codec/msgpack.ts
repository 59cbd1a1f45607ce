/**
 * msgpack as Python's `msgpack` writes and reads it for Bluesky documents.
 *
 * Why not msgpackr: it turns float64 `1.0` into the JS number 1 (so it would be
 * re-encoded as an int), writes ints beyond 32 bits as floats, and rejects the
 * bin-keyed maps msgpack-numpy writes. This codec follows `codec/values.ts`:
 * whole floats decode to PyFloat, big ints to bigint, odd maps to Map, and it
 * encodes exactly as Python `msgpack.packb(obj, use_bin_type=True)` does
 * (smallest int form, float64 always, str8 for 32..255 bytes, bin for bytes).
 */
import { isUtf8 } from 'node:buffer';
import { depthError, limits } from '../limits.js';
import { FAST_ARRAY_MAX, PyFloat, docKeys, joinBlocks, hasKeyOrder, needsOrderedMap, isPlainDoc, setOwn, topLevelDoc, type Doc, type Key, type PyMap, type Value } from './values.js';

/** Thrown when the buffer ends inside a value; `needed` is a lower bound of bytes. */
export class Incomplete extends Error {
  constructor(readonly needed: number) {
    super('incomplete msgpack data');
    this.name = 'Incomplete';
  }
}

export class MsgpackFormatError extends Error {
  override name = 'MsgpackFormatError';
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });


export class MsgpackDecoder {
  buf: Buffer;
  pos = 0;
  end: number;
  private view: DataView;
  private depth = 0;

  constructor(buf: Buffer, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw new Incomplete(this.pos + n);
  }

  private str(n: number): string {
    this.need(n);
    const start = this.pos;
    this.pos += n;
    if (n < 64) {
      // ASCII fast path: most keys and uids.
      const b = this.buf;
      let s = '';
      for (let i = start; i < start + n; i++) {
        const c = b[i]!;
        if (c >= 0x80) return textDecoder.decode(b.subarray(start, start + n));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return textDecoder.decode(this.buf.subarray(start, start + n));
  }

  private bin(n: number): Buffer {
    this.need(n);
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  private enter(): void {
    if (++this.depth > limits.maxDepth) throw depthError(`at byte ${this.pos}`);
  }

  private array(n: number): Value[] {
    this.enter();
    // Each element takes at least a byte: a count beyond the data is refused before allocating.
    if (n > 16) this.need(n);
    let out: Value[];
    if (n <= FAST_ARRAY_MAX) {
      out = new Array(n);
      for (let i = 0; i < n; i++) out[i] = this.value();
    } else {
      const blocks: Value[][] = [];
      for (let i = 0; i < n; i += FAST_ARRAY_MAX) {
        const block: Value[] = new Array(Math.min(FAST_ARRAY_MAX, n - i));
        for (let j = 0; j < block.length; j++) block[j] = this.value();
        blocks.push(block);
      }
      out = joinBlocks(blocks);
    }
    this.depth--;
    return out;
  }

  private map(n: number): Doc | PyMap {
    this.enter();
    const out = this.mapBody(n);
    this.depth--;
    return out;
  }

  private mapBody(n: number): Doc | PyMap {
    let obj: Doc | null = {};
    let map: PyMap | null = null;
    for (let i = 0; i < n; i++) {
      const k = this.key();
      const v = this.value();
      if (obj !== null) {
        if (typeof k === 'string' && !needsOrderedMap(k)) {
          obj[k] = v;
          continue;
        }
        map = new Map(Object.entries(obj));
        obj = null;
      }
      map!.set(k, v);
    }
    return obj ?? map!;
  }

  private key(): Key {
    const v = this.value();
    if (typeof v === 'string' || v instanceof Uint8Array) return v;
    // Python's Unpacker (strict_map_key=True) refuses such files too.
    throw new MsgpackFormatError(`map key of type ${typeof v} is not allowed (only str or bin)`);
  }

  /** Step over the next value without building it. */
  skip(): void {
    this.pos = measure(this.buf, this.pos, this.end);
  }

  /**
   * Decode a `(name, doc)` record keeping only some top-level keys of doc:
   * `keep(name)` gives the keys, or null for the whole document. Used by scans
   * that need a few fields of millions of events.
   */
  skimRecord(keep: (name: string) => ReadonlySet<string> | null): [string, Doc] | null {
    this.need(1);
    if (this.buf[this.pos] !== 0x92) return null;
    this.pos++;
    const name = this.value();
    if (typeof name !== 'string') return null;
    const want = keep(name);
    if (want === null) {
      const doc = topLevelDoc(this.value());
      return doc === undefined ? null : [name, doc];
    }
    this.need(1);
    const b = this.buf[this.pos++]!;
    let n: number;
    if ((b & 0xf0) === 0x80) n = b & 0x0f;
    else if (b === 0xde) { this.need(2); n = this.buf.readUInt16BE(this.pos); this.pos += 2; }
    else if (b === 0xdf) { this.need(4); n = this.buf.readUInt32BE(this.pos); this.pos += 4; }
    else return null;
    const doc: Doc = {};
    for (let i = 0; i < n; i++) {
      const k = this.value();
      if (typeof k === 'string' && want.has(k)) setOwn(doc, k, this.value());
      else this.skip();
    }
    return [name, doc];
  }

  value(): Value {
    this.need(1);
    const b = this.buf[this.pos++]!;
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xe0) === 0xa0) return this.str(b & 0x1f);
    if ((b & 0xf0) === 0x90) return this.array(b & 0x0f);
    if ((b & 0xf0) === 0x80) return this.map(b & 0x0f);
    const v = this.view;
    let p: number;
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: this.need(1); return this.bin(this.buf[this.pos++]!);
      case 0xc5: this.need(2); p = this.pos; this.pos += 2; return this.bin(v.getUint16(p));
      case 0xc6: this.need(4); p = this.pos; this.pos += 4; return this.bin(v.getUint32(p));
      case 0xca: { this.need(4); p = this.pos; this.pos += 4; const f = v.getFloat32(p); return Number.isInteger(f) || Object.is(f, -0) ? new PyFloat(f) : f; }
      case 0xcb: { this.need(8); p = this.pos; this.pos += 8; const f = v.getFloat64(p); return Number.isInteger(f) || Object.is(f, -0) ? new PyFloat(f) : f; }
      case 0xcc: this.need(1); return this.buf[this.pos++]!;
      case 0xcd: this.need(2); p = this.pos; this.pos += 2; return v.getUint16(p);
      case 0xce: this.need(4); p = this.pos; this.pos += 4; return v.getUint32(p);
      case 0xcf: { this.need(8); p = this.pos; this.pos += 8; const n = v.getBigUint64(p); return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n; }
      case 0xd0: this.need(1); p = this.pos; this.pos += 1; return v.getInt8(p);
      case 0xd1: this.need(2); p = this.pos; this.pos += 2; return v.getInt16(p);
      case 0xd2: this.need(4); p = this.pos; this.pos += 4; return v.getInt32(p);
      case 0xd3: { this.need(8); p = this.pos; this.pos += 8; const n = v.getBigInt64(p); return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n; }
      case 0xd9: this.need(1); return this.str(this.buf[this.pos++]!);
      case 0xda: this.need(2); p = this.pos; this.pos += 2; return this.str(v.getUint16(p));
      case 0xdb: this.need(4); p = this.pos; this.pos += 4; return this.str(v.getUint32(p));
      case 0xdc: this.need(2); p = this.pos; this.pos += 2; return this.array(v.getUint16(p));
      case 0xdd: this.need(4); p = this.pos; this.pos += 4; return this.array(v.getUint32(p));
      case 0xde: this.need(2); p = this.pos; this.pos += 2; return this.map(v.getUint16(p));
      case 0xdf: this.need(4); p = this.pos; this.pos += 4; return this.map(v.getUint32(p));
      default:
        // ext types (0xc7-0xc9, 0xd4-0xd8) and the never-used 0xc1: Python's
        // databroker reader has no hook for them either.
        throw new MsgpackFormatError(`unsupported msgpack type byte 0x${b.toString(16)} at offset ${this.pos - 1}`);
    }
  }
}

/**
 * The end offset of the value starting at `pos`, without building it.
 * Throws Incomplete (with the bytes needed so far) when `end` comes first.
 */
export function measure(buf: Buffer, pos: number, end = buf.length): number {
  let pending = 1;
  const need = (n: number) => {
    if (pos + n > end) throw new Incomplete(pos + n);
  };
  while (pending > 0) {
    // Runs of one-byte values (arrays of small ints) in a tight loop.
    for (let c = buf[pos]!; pending > 1 && pos < end && (c <= 0x7f || c >= 0xe0 || c === 0xc0 || c === 0xc2 || c === 0xc3); c = buf[++pos]!) pending--;
    pending--;
    need(1);
    const b = buf[pos++]!;
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xc0 && b <= 0xc3)) continue;
    if ((b & 0xe0) === 0xa0) { pos += b & 0x1f; need(0); continue; }
    if ((b & 0xf0) === 0x90) { pending += b & 0x0f; continue; }
    if ((b & 0xf0) === 0x80) { pending += 2 * (b & 0x0f); continue; }
    switch (b) {
      case 0xc4: case 0xd9: need(1); pos += 1 + buf[pos]!; need(0); break;
      case 0xc5: case 0xda: need(2); pos += 2 + buf.readUInt16BE(pos); need(0); break;
      case 0xc6: case 0xdb: need(4); pos += 4 + buf.readUInt32BE(pos); need(0); break;
      case 0xcc: case 0xd0: pos += 1; need(0); break;
      case 0xcd: case 0xd1: pos += 2; need(0); break;
      case 0xca: case 0xce: case 0xd2: pos += 4; need(0); break;
      case 0xcb: case 0xcf: case 0xd3: pos += 8; need(0); break;
      case 0xdc: need(2); pending += buf.readUInt16BE(pos); pos += 2; break;
      case 0xdd: need(4); pending += buf.readUInt32BE(pos); pos += 4; break;
      case 0xde: need(2); pending += 2 * buf.readUInt16BE(pos); pos += 2; break;
      case 0xdf: need(4); pending += 2 * buf.readUInt32BE(pos); pos += 4; break;
      default:
        throw new MsgpackFormatError(`unsupported msgpack type byte 0x${b.toString(16)} at offset ${pos - 1}`);
    }
  }
  return pos;
}

// Kinds of value for RecordScanner.
const SCALAR = 0;
const STR = 1;
const BIN = 2;
const ARRAY = 3;
const MAP = 4;

/**
 * Finds where a msgpack record ends, and checks it as Python's reader would,
 * without building it: str payloads are valid UTF-8, map keys are str or bin
 * (`strict_map_key`), nesting stays within `maxDepth`, no ext types. A record
 * is checked once, so bytes that later pass through undecoded are as valid as
 * decoded ones.
 *
 * It resumes: when the buffer ends inside the record, `scan` returns -1 and
 * keeps its place (offset and open containers), and `need` is a lower bound
 * of the record's size (every value still owed takes at least a byte; a str
 * or bin header gives its exact length). The caller reads more, in a buffer
 * that may have moved, and calls `scan` again; each byte is looked at once,
 * so framing a record is linear in its size.
 */
export class RecordScanner {
  /** A lower bound of the record's length, valid after `scan` returned -1. */
  need = 1;
  private off = 0;
  private sp = 0;
  private owed = 1;
  private readonly rem: Float64Array;
  private readonly isMap: Uint8Array;

  constructor(readonly maxDepth = limits.maxDepth) {
    this.rem = new Float64Array(maxDepth + 1);
    this.isMap = new Uint8Array(maxDepth + 1);
    this.rem[0] = 1;
  }

  /** Bytes of the current record already scanned. */
  get scanned(): number {
    return this.off;
  }

  /** The length of the record starting at `buf[start]` if it ends by `end`, else -1 (see `need`). */
  scan(buf: Buffer, start: number, end: number): number {
    const rem = this.rem;
    const isMap = this.isMap;
    let p = start + this.off;
    let sp = this.sp;
    let owed = this.owed;
    let need = -1;
    for (;;) {
      while (rem[sp] === 0) {
        if (sp === 0) {
          this.off = 0;
          this.sp = 0;
          this.owed = 1;
          this.need = 1;
          rem[0] = 1;
          return p - start;
        }
        sp--;
      }
      if (p >= end) break;
      if (isMap[sp] === 0 && rem[sp]! > 1) {
        // A run of one-byte values (small ints, nil, bools) in an array, the common long case.
        const stop = Math.min(end, p + rem[sp]!);
        const first = p;
        for (let c = buf[p]!; p < stop && (c <= 0x7f || c >= 0xe0 || c === 0xc0 || c === 0xc2 || c === 0xc3); c = buf[++p]!);
        if (p > first) {
          rem[sp] = rem[sp]! - (p - first);
          owed -= p - first;
          continue;
        }
      }
      const b = buf[p]!;
      let h = 1;
      let kind = SCALAR;
      let n = 0;
      if (b <= 0x7f || b >= 0xe0) {
        // fixint
      } else if (b >= 0xa0 && b <= 0xbf) {
        kind = STR;
        n = b & 0x1f;
      } else if (b >= 0x90 && b <= 0x9f) {
        kind = ARRAY;
        n = b & 0x0f;
      } else if (b <= 0x8f) {
        kind = MAP;
        n = b & 0x0f;
      } else {
        switch (b) {
          case 0xc0: case 0xc2: case 0xc3: break;
          case 0xcc: case 0xd0: h = 2; break;
          case 0xcd: case 0xd1: h = 3; break;
          case 0xca: case 0xce: case 0xd2: h = 5; break;
          case 0xcb: case 0xcf: case 0xd3: h = 9; break;
          case 0xc4: h = 2; kind = BIN; break;
          case 0xc5: h = 3; kind = BIN; break;
          case 0xc6: h = 5; kind = BIN; break;
          case 0xd9: h = 2; kind = STR; break;
          case 0xda: h = 3; kind = STR; break;
          case 0xdb: h = 5; kind = STR; break;
          case 0xdc: h = 3; kind = ARRAY; break;
          case 0xdd: h = 5; kind = ARRAY; break;
          case 0xde: h = 3; kind = MAP; break;
          case 0xdf: h = 5; kind = MAP; break;
          default:
            throw new MsgpackFormatError(`unsupported msgpack type byte 0x${b.toString(16)} at offset ${p - start}`);
        }
        if (p + h > end) {
          need = p - start + h + owed - 1;
          break;
        }
        if (kind !== SCALAR) n = h === 2 ? buf[p + 1]! : h === 3 ? buf.readUInt16BE(p + 1) : buf.readUInt32BE(p + 1);
      }
      if (isMap[sp] === 1 && rem[sp]! % 2 === 0 && kind !== STR && kind !== BIN) {
        // Python's Unpacker (strict_map_key=True) refuses such files too.
        throw new MsgpackFormatError(`a map key at offset ${p - start} is not a str or bin`);
      }
      if (kind === ARRAY || kind === MAP) {
        p += h;
        rem[sp] = rem[sp]! - 1;
        owed--;
        if (n > 0) {
          if (sp >= this.maxDepth) throw depthError(`at offset ${p - h - start}`);
          const items = kind === MAP ? 2 * n : n;
          rem[++sp] = items;
          isMap[sp] = kind === MAP ? 1 : 0;
          owed += items;
        }
        continue;
      }
      const size = h + n;
      if (p + size > end) {
        need = p - start + size + owed - 1;
        break;
      }
      if (kind === STR && n > 0 && !validUtf8(buf, p + h, n)) {
        throw new MsgpackFormatError(`a str at offset ${p - start} is not valid UTF-8`);
      }
      p += size;
      rem[sp] = rem[sp]! - 1;
      owed--;
    }
    this.off = p - start;
    this.sp = sp;
    this.owed = owed;
    this.need = need >= 0 ? need : this.off + owed;
    return -1;
  }
}

/** UTF-8 as Python's strict decoder takes it; ASCII (most keys and uids) is checked inline. */
function validUtf8(buf: Buffer, start: number, n: number): boolean {
  if (n < 64) {
    let i = start;
    const end = start + n;
    while (i < end && buf[i]! < 0x80) i++;
    if (i === end) return true;
  }
  return isUtf8(buf.subarray(start, start + n));
}

const PAGE_KEYS = ['time', 'uid', 'seq_num', 'descriptor', 'filled', 'data', 'timestamps'];

/**
 * If `raw` is an `("event_page", page)` record in canonical one-row form (keys
 * time, uid, seq_num, descriptor, filled, data, timestamps; every column one
 * row long), its descriptor uid; otherwise undefined. Reads bytes only, so a
 * page that passes through unchanged is never decoded.
 */
export function canonicalEventPageDescriptor(raw: Buffer): string | undefined {
  try {
    const d = new MsgpackDecoder(raw);
    if (raw[d.pos++] !== 0x92) return undefined;
    if (d.value() !== 'event_page') return undefined;
    if (raw[d.pos++] !== 0x87) return undefined;
    let descriptor: string | undefined;
    for (const key of PAGE_KEYS) {
      if (d.value() !== key) return undefined;
      if (key === 'descriptor') {
        const v = d.value();
        if (typeof v !== 'string') return undefined;
        descriptor = v;
      } else if (key === 'time' || key === 'uid' || key === 'seq_num') {
        if (raw[d.pos++] !== 0x91) return undefined;
        d.skip();
      } else {
        const b = raw[d.pos++]!;
        let n: number;
        if ((b & 0xf0) === 0x80) n = b & 0x0f;
        else if (b === 0xde) { n = raw.readUInt16BE(d.pos); d.pos += 2; }
        else return undefined;
        for (let i = 0; i < n; i++) {
          if (typeof d.value() !== 'string') return undefined;
          if (raw[d.pos++] !== 0x91) return undefined;
          d.skip();
        }
      }
    }
    return d.pos === raw.length ? descriptor : undefined;
  } catch {
    return undefined;
  }
}

export function decode(buf: Buffer): Value {
  const d = new MsgpackDecoder(buf);
  const v = d.value();
  if (d.pos !== buf.length) throw new MsgpackFormatError(`${buf.length - d.pos} extra bytes after value`);
  return v;
}

const UINT64_MAX = (1n << 64n) - 1n;
const INT64_MIN = -(1n << 63n);

/**
 * Encoder into one growing buffer. Call `encode()` any number of times, then
 * `take()` to get the bytes written so far (the encoder keeps its memory).
 *
 * With a `refThreshold`, binary payloads at least that long (detector frames)
 * are not copied: `takeParts()` returns the encoded bytes as a list in which
 * such payloads appear as the caller's own buffers, ready for a vectored write.
 */
export class MsgpackEncoder {
  private buf: Buffer;
  private pos = 0;
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private depth = 0;

  constructor(initialSize = 64 * 1024, private readonly refThreshold = Infinity) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  get length(): number {
    return this.partsBytes + this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** The bytes written so far, as a new Buffer; the encoder starts empty again. */
  take(): Buffer {
    if (this.parts.length) return Buffer.concat(this.takeParts());
    const out = Buffer.from(this.buf.subarray(0, this.pos));
    this.pos = 0;
    return out;
  }

  /** The bytes written so far as a list of buffers (large payloads by reference); the encoder starts empty again. */
  takeParts(): Buffer[] {
    const out = this.parts;
    if (this.pos > 0) out.push(Buffer.from(this.buf.subarray(0, this.pos)));
    this.parts = [];
    this.partsBytes = 0;
    this.pos = 0;
    return out;
  }

  /** Append raw, already-encoded bytes (the pass-through path). */
  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  record(name: string, doc: Value): void {
    this.depth = 0;
    this.ensure(1);
    this.buf[this.pos++] = 0x92;
    this.string(name);
    this.encode(doc);
  }

  private int(n: number | bigint): void {
    this.ensure(9);
    const b = this.buf;
    if (typeof n === 'bigint') {
      if (n > UINT64_MAX || n < INT64_MIN) throw new RangeError(`integer ${n} is out of the msgpack range`);
      if (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)) return this.int(Number(n));
      if (n >= 0n) { b[this.pos] = 0xcf; b.writeBigUInt64BE(n, this.pos + 1); }
      else { b[this.pos] = 0xd3; b.writeBigInt64BE(n, this.pos + 1); }
      this.pos += 9;
      return;
    }
    const p = this.pos;
    if (n >= 0) {
      if (n < 0x80) { b[p] = n; this.pos += 1; }
      else if (n < 0x100) { b[p] = 0xcc; b[p + 1] = n; this.pos += 2; }
      else if (n < 0x10000) { b[p] = 0xcd; b.writeUInt16BE(n, p + 1); this.pos += 3; }
      else if (n < 0x100000000) { b[p] = 0xce; b.writeUInt32BE(n, p + 1); this.pos += 5; }
      else { b[p] = 0xcf; b.writeBigUInt64BE(BigInt(n), p + 1); this.pos += 9; }
    } else {
      if (n >= -32) { b[p] = n + 0x100; this.pos += 1; }
      else if (n >= -0x80) { b[p] = 0xd0; b.writeInt8(n, p + 1); this.pos += 2; }
      else if (n >= -0x8000) { b[p] = 0xd1; b.writeInt16BE(n, p + 1); this.pos += 3; }
      else if (n >= -0x80000000) { b[p] = 0xd2; b.writeInt32BE(n, p + 1); this.pos += 5; }
      else { b[p] = 0xd3; b.writeBigInt64BE(BigInt(n), p + 1); this.pos += 9; }
    }
  }

  private float(f: number): void {
    this.ensure(9);
    this.buf[this.pos] = 0xcb;
    this.buf.writeDoubleBE(f, this.pos + 1);
    this.pos += 9;
  }

  string(s: string): void {
    // Short ASCII strings (keys, uids) are written without a byteLength pass.
    if (s.length < 256) {
      this.ensure(2 + s.length * 3 + 2);
      const b = this.buf;
      const hdr = s.length < 32 ? 1 : 2;
      let p = this.pos + hdr;
      let ascii = true;
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) { ascii = false; break; }
        b[p++] = c;
      }
      if (ascii) {
        if (hdr === 1) b[this.pos] = 0xa0 | s.length;
        else { b[this.pos] = 0xd9; b[this.pos + 1] = s.length; }
        this.pos = p;
        return;
      }
    }
    // Python cannot encode a lone surrogate (from a JSON \\ud800 escape) as UTF-8; Node would write U+FFFD.
    if (!s.isWellFormed()) throw new TypeError(`the string ${JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}...` : s)} holds a lone surrogate, which is not valid UTF-8`);
    const n = Buffer.byteLength(s, 'utf8');
    this.ensure(5 + n);
    const b = this.buf;
    const p = this.pos;
    let h: number;
    if (n < 32) { b[p] = 0xa0 | n; h = 1; }
    else if (n < 0x100) { b[p] = 0xd9; b[p + 1] = n; h = 2; }
    else if (n < 0x10000) { b[p] = 0xda; b.writeUInt16BE(n, p + 1); h = 3; }
    else { b[p] = 0xdb; b.writeUInt32BE(n, p + 1); h = 5; }
    b.write(s, p + h, n, 'utf8');
    this.pos = p + h + n;
  }

  private bytes(u: Uint8Array): void {
    const n = u.length;
    const byRef = n >= this.refThreshold;
    this.ensure(5 + (byRef ? 0 : n));
    const b = this.buf;
    const p = this.pos;
    let h: number;
    if (n < 0x100) { b[p] = 0xc4; b[p + 1] = n; h = 2; }
    else if (n < 0x10000) { b[p] = 0xc5; b.writeUInt16BE(n, p + 1); h = 3; }
    else { b[p] = 0xc6; b.writeUInt32BE(n, p + 1); h = 5; }
    if (byRef) {
      this.parts.push(Buffer.from(b.subarray(0, p + h)), Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));
      this.partsBytes += p + h + n;
      this.pos = 0;
      return;
    }
    b.set(u, p + h);
    this.pos = p + h + n;
  }

  private header(n: number, fix: number, b16: number, b32: number, fixMax: number): void {
    this.ensure(5);
    const b = this.buf;
    const p = this.pos;
    if (n < fixMax) { b[p] = fix | n; this.pos += 1; }
    else if (n < 0x10000) { b[p] = b16; b.writeUInt16BE(n, p + 1); this.pos += 3; }
    else { b[p] = b32; b.writeUInt32BE(n, p + 1); this.pos += 5; }
  }

  encode(v: Value | undefined): void {
    switch (typeof v) {
      case 'number':
        if (Number.isSafeInteger(v) && !Object.is(v, -0)) this.int(v);
        else this.float(v);
        return;
      case 'string': this.string(v); return;
      case 'boolean': this.ensure(1); this.buf[this.pos++] = v ? 0xc3 : 0xc2; return;
      case 'bigint': this.int(v); return;
      case 'undefined': this.ensure(1); this.buf[this.pos++] = 0xc0; return;
      case 'object': break;
      default: throw new TypeError(`cannot encode a ${typeof v} as msgpack`);
    }
    if (v === null) { this.ensure(1); this.buf[this.pos++] = 0xc0; return; }
    if (v instanceof PyFloat) { this.float(v.value); return; }
    if (v instanceof Uint8Array) { this.bytes(v); return; }
    if (++this.depth > limits.maxDepth) {
      this.depth = 0;
      throw depthError('to encode');
    }
    this.container(v);
    this.depth--;
  }

  private container(v: object): void {
    if (Array.isArray(v)) {
      this.header(v.length, 0x90, 0xdc, 0xdd, 16);
      for (const x of v) this.encode(x);
      return;
    }
    if (ArrayBuffer.isView(v)) {
      throw new TypeError(`cannot encode a ${v.constructor.name} as msgpack: convert typed arrays to an NdArray first`);
    }
    if (v instanceof Map) {
      this.header(v.size, 0x80, 0xde, 0xdf, 16);
      for (const [k, x] of v) {
        if (typeof k === 'string') this.string(k);
        else if (k instanceof Uint8Array) this.bytes(k);
        else throw new TypeError(`map key of type ${typeof k} cannot be read by Python (strict_map_key)`);
        this.encode(x);
      }
      return;
    }
    const custom = (v as { toMsgpackValue?: () => Value }).toMsgpackValue;
    if (typeof custom === 'function') { this.encode(custom.call(v)); return; }
    if (!isPlainDoc(v)) throw new TypeError(`cannot encode ${Object.prototype.toString.call(v)} as msgpack`);
    if (hasKeyOrder(v)) {
      const keys = docKeys(v).filter((k) => v[k] !== undefined);
      this.header(keys.length, 0x80, 0xde, 0xdf, 16);
      for (const k of keys) {
        this.string(k);
        this.encode(v[k]);
      }
      return;
    }
    let n = 0;
    for (const k in v) if (v[k] !== undefined) n++;
    this.header(n, 0x80, 0xde, 0xdf, 16);
    for (const k in v) {
      const x = v[k];
      if (x === undefined) continue;
      this.string(k);
      this.encode(x);
    }
  }
}

export function encode(v: Value): Buffer {
  const e = new MsgpackEncoder(256);
  e.encode(v);
  return e.take();
}

export function encodeRecord(name: string, doc: Value): Buffer {
  const e = new MsgpackEncoder(1024);
  e.record(name, doc);
  return e.take();
}

/** Build a plain doc from entries, falling back to Map when key order needs it. */
export function makeDoc(pairs: Iterable<[string, Value]>): Doc | PyMap {
  const obj: Doc = {};
  const list = [...pairs];
  if (list.some(([k]) => needsOrderedMap(k))) return new Map(list);
  for (const [k, v] of list) setOwn(obj, k, v);
  return obj;
}
