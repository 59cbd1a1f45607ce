/**
 * JSON as Python's `json` module reads and writes it for Bluesky JSONL.
 *
 * Reading accepts what `json.loads` accepts and JSON.parse does not: the bare
 * tokens NaN / Infinity / -Infinity, and ints of any size (kept exact as
 * bigint). A number written with `.` or an exponent is a float, so `1.0` stays
 * a float (PyFloat). Writing reproduces `json.dumps(obj)` byte for byte:
 * `", "` and `": "` separators, ensure_ascii escaping, Python float repr.
 */
import { numpyOfMsgpackMap } from './ndarray.js';
import { depthError, limits } from '../limits.js';
import { ArrayBuilder, PyFloat, docKeys, hasKeyOrder, needsOrderedMap, isPlainDoc, setOwn, type Doc, type Encodable, type PyMap, type Value } from './values.js';

export class JsonSyntaxError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} at character ${offset}`);
  }
}

const WS = new Uint8Array(128);
for (const c of [0x20, 0x09, 0x0a, 0x0d]) WS[c] = 1;

class Parser {
  pos = 0;
  depth = 0;
  constructor(private readonly s: string) {}

  enter(): void {
    if (++this.depth > limits.maxDepth) throw depthError(`at character ${this.pos}`);
  }

  fail(msg: string): never {
    throw new JsonSyntaxError(msg, this.pos);
  }

  ws(): void {
    const s = this.s;
    let c = s.charCodeAt(this.pos);
    while (c < 128 && WS[c] === 1) c = s.charCodeAt(++this.pos);
  }

  value(): Value {
    this.ws();
    const s = this.s;
    const c = s.charCodeAt(this.pos);
    switch (c) {
      case 0x22: return this.string();
      case 0x7b: { this.enter(); const v = this.object(); this.depth--; return v; }
      case 0x5b: { this.enter(); const v = this.array(); this.depth--; return v; }
      case 0x74: return this.word('true', true);
      case 0x66: return this.word('false', false);
      case 0x6e: return this.word('null', null);
      case 0x4e: return this.word('NaN', NaN);
      case 0x49: return this.word('Infinity', Infinity);
      case 0x2d:
        if (s.startsWith('-Infinity', this.pos)) { this.pos += 9; return -Infinity; }
        return this.number();
      default:
        if (c >= 0x30 && c <= 0x39) return this.number();
        return this.fail(Number.isNaN(c) ? 'unexpected end of data' : `unexpected character ${JSON.stringify(s[this.pos])}`);
    }
  }

  word<T extends Value>(w: string, v: T): T {
    if (!this.s.startsWith(w, this.pos)) this.fail(`unexpected token`);
    this.pos += w.length;
    return v;
  }

  // Set by numberEnd() (fields, not a returned object: no allocation per number).
  private numIsFloat = false;
  private numIntStart = 0;

  /** The end of the number at `pos` (Python's grammar: no leading zeros); sets numIsFloat and numIntStart. */
  numberEnd(): number {
    const s = this.s;
    let p = this.pos;
    let isFloat = false;
    if (s.charCodeAt(p) === 0x2d) p++;
    const intStart = p;
    while (p < s.length) {
      const c = s.charCodeAt(p);
      if (c >= 0x30 && c <= 0x39) p++;
      else break;
    }
    if (p === intStart) { this.pos = p; this.fail('expected a digit'); }
    // Python (like JSON) refuses leading zeros such as 01.
    if (s.charCodeAt(intStart) === 0x30 && p - intStart > 1) { this.pos = intStart; this.fail('leading zero'); }
    if (s.charCodeAt(p) === 0x2e) {
      isFloat = true;
      p++;
      const f = p;
      while (p < s.length && s.charCodeAt(p) >= 0x30 && s.charCodeAt(p) <= 0x39) p++;
      if (p === f) { this.pos = p; this.fail('expected a digit after the decimal point'); }
    }
    const e = s.charCodeAt(p);
    if (e === 0x65 || e === 0x45) {
      isFloat = true;
      p++;
      const sign = s.charCodeAt(p);
      if (sign === 0x2b || sign === 0x2d) p++;
      const f = p;
      while (p < s.length && s.charCodeAt(p) >= 0x30 && s.charCodeAt(p) <= 0x39) p++;
      if (p === f) { this.pos = p; this.fail('expected a digit in the exponent'); }
    }
    this.numIsFloat = isFloat;
    this.numIntStart = intStart;
    return p;
  }

  number(): Value {
    const s = this.s;
    const start = this.pos;
    const p = this.numberEnd();
    const isFloat = this.numIsFloat;
    const intStart = this.numIntStart;
    this.pos = p;
    if (!isFloat && p - intStart <= 9) {
      // Small ints (most of them) without a substring.
      let n = 0;
      for (let i = intStart; i < p; i++) n = n * 10 + (s.charCodeAt(i) - 0x30);
      return intStart > start ? (n === 0 ? 0 : -n) : n;
    }
    const text = s.slice(start, p);
    if (isFloat) {
      const f = Number(text);
      return Number.isInteger(f) || Object.is(f, -0) ? new PyFloat(f) : f;
    }
    if (p - intStart <= 15) return Number(text);
    const big = BigInt(text);
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  }

  /** Step over the value at `pos`, checking it as value() would, without building it. */
  skip(): void {
    this.ws();
    const s = this.s;
    const c = s.charCodeAt(this.pos);
    switch (c) {
      case 0x22: this.skipString(); return;
      case 0x7b: case 0x5b: {
        this.enter();
        const close = c === 0x7b ? 0x7d : 0x5d;
        this.pos++;
        this.ws();
        if (s.charCodeAt(this.pos) === close) { this.pos++; this.depth--; return; }
        for (;;) {
          if (close === 0x7d) {
            this.ws();
            if (s.charCodeAt(this.pos) !== 0x22) this.fail('expected a property name in double quotes');
            this.skipString();
            this.ws();
            if (s.charCodeAt(this.pos++) !== 0x3a) { this.pos--; this.fail("expected ':'"); }
          }
          this.skip();
          this.ws();
          const d = s.charCodeAt(this.pos++);
          if (d === close) { this.depth--; return; }
          if (d !== 0x2c) { this.pos--; this.fail(close === 0x7d ? "expected ',' or '}'" : "expected ',' or ']'"); }
        }
      }
      case 0x74: case 0x66: case 0x6e: case 0x4e: case 0x49: this.value(); return;
      case 0x2d:
        if (s.startsWith('-Infinity', this.pos)) { this.pos += 9; return; }
        this.pos = this.numberEnd();
        return;
      default:
        if (c >= 0x30 && c <= 0x39) { this.pos = this.numberEnd(); return; }
        this.value(); // fails with value()'s message
    }
  }

  private skipString(): void {
    const s = this.s;
    const start = this.pos;
    let p = start + 1;
    for (;;) {
      const c = s.charCodeAt(p);
      if (c === 0x22) break;
      if (Number.isNaN(c)) { this.pos = p; this.fail('unterminated string'); }
      if (c < 0x20) { this.pos = p; this.fail('invalid control character in string'); }
      if (c === 0x5c) {
        // A string with escapes is checked by decoding it.
        this.pos = start;
        this.string();
        return;
      }
      p++;
    }
    this.pos = p + 1;
  }

  string(): string {
    const s = this.s;
    let p = ++this.pos;
    let out = '';
    let chunk = p;
    for (;;) {
      const c = s.charCodeAt(p);
      if (c === 0x22) break;
      if (Number.isNaN(c)) { this.pos = p; this.fail('unterminated string'); }
      if (c < 0x20) { this.pos = p; this.fail('invalid control character in string'); }
      if (c === 0x5c) {
        out += s.slice(chunk, p);
        const e = s.charCodeAt(p + 1);
        switch (e) {
          case 0x22: out += '"'; break;
          case 0x5c: out += '\\'; break;
          case 0x2f: out += '/'; break;
          case 0x62: out += '\b'; break;
          case 0x66: out += '\f'; break;
          case 0x6e: out += '\n'; break;
          case 0x72: out += '\r'; break;
          case 0x74: out += '\t'; break;
          case 0x75: {
            const hex = s.slice(p + 2, p + 6);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) { this.pos = p; this.fail('invalid \\u escape'); }
            out += String.fromCharCode(parseInt(hex, 16));
            p += 4;
            break;
          }
          default: this.pos = p; this.fail('invalid escape');
        }
        p += 2;
        chunk = p;
        continue;
      }
      p++;
    }
    out += s.slice(chunk, p);
    this.pos = p + 1;
    return out;
  }

  array(): Value[] {
    this.pos++;
    const out = new ArrayBuilder();
    this.ws();
    if (this.s.charCodeAt(this.pos) === 0x5d) { this.pos++; return out.finish(); }
    for (;;) {
      out.push(this.value());
      this.ws();
      const c = this.s.charCodeAt(this.pos++);
      if (c === 0x5d) return out.finish();
      if (c !== 0x2c) { this.pos--; this.fail("expected ',' or ']'"); }
    }
  }

  /** An object of which only the keys in `want` are built (the rest checked and stepped over). */
  objectKeeping(want: ReadonlySet<string>): Doc {
    this.enter();
    this.pos++;
    const doc: Doc = {};
    this.ws();
    if (this.s.charCodeAt(this.pos) === 0x7d) { this.pos++; this.depth--; return doc; }
    for (;;) {
      this.ws();
      if (this.s.charCodeAt(this.pos) !== 0x22) this.fail('expected a property name in double quotes');
      const k = this.string();
      this.ws();
      if (this.s.charCodeAt(this.pos++) !== 0x3a) { this.pos--; this.fail("expected ':'"); }
      if (want.has(k)) setOwn(doc, k, this.value());
      else this.skip();
      this.ws();
      const c = this.s.charCodeAt(this.pos++);
      if (c === 0x7d) { this.depth--; return doc; }
      if (c !== 0x2c) { this.pos--; this.fail("expected ',' or '}'"); }
    }
  }

  object(): Doc | PyMap {
    this.pos++;
    let obj: Doc | null = {};
    let map: PyMap | null = null;
    this.ws();
    if (this.s.charCodeAt(this.pos) === 0x7d) { this.pos++; return obj; }
    for (;;) {
      this.ws();
      if (this.s.charCodeAt(this.pos) !== 0x22) this.fail('expected a property name in double quotes');
      const k = this.string();
      this.ws();
      if (this.s.charCodeAt(this.pos++) !== 0x3a) { this.pos--; this.fail("expected ':'"); }
      const v = this.value();
      if (obj !== null && !needsOrderedMap(k)) {
        // Python keeps the last value of a repeated key, at the first key's place.
        obj[k] = v;
      } else {
        if (obj !== null) { map = new Map(Object.entries(obj)); obj = null; }
        map!.set(k, v);
      }
      this.ws();
      const c = this.s.charCodeAt(this.pos++);
      if (c === 0x7d) return obj ?? map!;
      if (c !== 0x2c) { this.pos--; this.fail("expected ',' or '}'"); }
    }
  }
}

/** Parse one JSON text as Python's json.loads would. */
export function parsePyJson(text: string): Value {
  const p = new Parser(text);
  const v = p.value();
  p.ws();
  if (p.pos !== text.length) p.fail('extra data');
  return v;
}

/**
 * A `[name, doc]` line keeping only some top-level keys of doc: `keep(name)`
 * gives them, or null for the whole document; the other values are checked
 * but not built. null when the line is not such a pair.
 */
export function parsePyJsonRecord(text: string, keep: (name: string) => ReadonlySet<string> | null): [string, Value] | null {
  const p = new Parser(text);
  p.ws();
  if (text.charCodeAt(p.pos) !== 0x5b) return null;
  p.pos++;
  p.ws();
  if (text.charCodeAt(p.pos) !== 0x22) return null;
  const name = p.string();
  p.ws();
  if (text.charCodeAt(p.pos++) !== 0x2c) return null;
  const want = keep(name);
  let doc: Value;
  p.ws();
  if (want === null || text.charCodeAt(p.pos) !== 0x7b) doc = p.value();
  else doc = p.objectKeeping(want);
  p.ws();
  if (text.charCodeAt(p.pos++) !== 0x5d) return null;
  p.ws();
  if (p.pos !== text.length) p.fail('extra data');
  return [name, doc];
}

const PAGE_KEYS = ['time', 'uid', 'seq_num', 'descriptor', 'filled', 'data', 'timestamps'];

/**
 * If `line` is an `["event_page", page]` record in canonical one-row form
 * (keys time, uid, seq_num, descriptor, filled, data, timestamps; every
 * column one row long), its descriptor uid; otherwise undefined. The values
 * are checked but not built, so such a page passes through as text.
 */
export function canonicalEventPageDescriptorJson(line: string): string | undefined {
  try {
    const p = new Parser(line);
    const expect = (c: number) => {
      p.ws();
      if (line.charCodeAt(p.pos) !== c) throw new Error('not canonical');
      p.pos++;
    };
    const oneRow = () => {
      expect(0x5b);
      p.skip();
      expect(0x5d);
    };
    expect(0x5b);
    p.ws();
    if (p.value() !== 'event_page') return undefined;
    expect(0x2c);
    expect(0x7b);
    let descriptor: string | undefined;
    for (let i = 0; i < PAGE_KEYS.length; i++) {
      if (i > 0) expect(0x2c);
      p.ws();
      if (line.charCodeAt(p.pos) !== 0x22 || p.string() !== PAGE_KEYS[i]) return undefined;
      expect(0x3a);
      const key = PAGE_KEYS[i];
      if (key === 'descriptor') {
        p.ws();
        const v = p.value();
        if (typeof v !== 'string') return undefined;
        descriptor = v;
      } else if (key === 'time' || key === 'uid' || key === 'seq_num') {
        oneRow();
      } else {
        expect(0x7b);
        p.ws();
        if (line.charCodeAt(p.pos) === 0x7d) { p.pos++; continue; }
        for (;;) {
          p.ws();
          if (line.charCodeAt(p.pos) !== 0x22) return undefined;
          p.string();
          expect(0x3a);
          oneRow();
          p.ws();
          const c = line.charCodeAt(p.pos++);
          if (c === 0x7d) break;
          if (c !== 0x2c) return undefined;
        }
      }
    }
    expect(0x7d);
    expect(0x5d);
    p.ws();
    return p.pos === line.length ? descriptor : undefined;
  } catch {
    return undefined;
  }
}

/** Python's repr() of a float. */
export function pyFloatRepr(f: number): string {
  if (Number.isNaN(f)) return 'NaN';
  if (f === Infinity) return 'Infinity';
  if (f === -Infinity) return '-Infinity';
  if (f === 0) return Object.is(f, -0) ? '-0.0' : '0.0';
  // toExponential() with no argument gives the shortest round-trip digits, as repr does.
  const exp = f.toExponential();
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(exp)!;
  const sign = m[1]!;
  const digits = m[2]! + (m[3] ?? '');
  const e = Number(m[4]);
  const decpt = e + 1; // position of the decimal point relative to the digits
  if (decpt > 16 || decpt <= -4) {
    const mant = digits.length === 1 ? digits : `${digits[0]}.${digits.slice(1)}`;
    const es = Math.abs(e) < 10 ? `0${Math.abs(e)}` : String(Math.abs(e));
    return `${sign}${mant}e${e < 0 ? '-' : '+'}${es}`;
  }
  if (decpt <= 0) return `${sign}0.${'0'.repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return `${sign}${digits}${'0'.repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

const HEX = '0123456789abcdef';
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /[^\x20-\x21\x23-\x5b\x5d-\x7e]/;

/** A string as json.dumps writes it with ensure_ascii=True. */
export function pyJsonString(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c) { out += s[i]; continue; }
    switch (c) {
      case 0x22: out += '\\"'; break;
      case 0x5c: out += '\\\\'; break;
      case 0x0a: out += '\\n'; break;
      case 0x0d: out += '\\r'; break;
      case 0x09: out += '\\t'; break;
      case 0x08: out += '\\b'; break;
      case 0x0c: out += '\\f'; break;
      default: out += '\\u' + HEX[(c >> 12) & 15] + HEX[(c >> 8) & 15] + HEX[(c >> 4) & 15] + HEX[c & 15];
    }
  }
  return out + '"';
}

export interface PyJsonOptions {
  /** Converts values JSON has no form for (e.g. an NdArray to nested lists). */
  toJsonValue?: (v: object) => Value | undefined;
}

/** `json.dumps(v)` exactly. */
export function stringifyPyJson(v: Value | undefined, opts: PyJsonOptions = {}): string {
  const parts: string[] = [];
  write(v, parts, opts, 0);
  return parts.join('');
}

function write(v: Value | undefined, out: string[], opts: PyJsonOptions, depth: number): void {
  switch (typeof v) {
    case 'string': out.push(pyJsonString(v)); return;
    case 'number':
      out.push(Number.isSafeInteger(v) && !Object.is(v, -0) ? String(v) : pyFloatRepr(v));
      return;
    case 'boolean': out.push(v ? 'true' : 'false'); return;
    case 'bigint': out.push(v.toString()); return;
    case 'undefined': out.push('null'); return;
    case 'object': break;
    default: throw new TypeError(`Object of type ${typeof v} is not JSON serializable`);
  }
  if (v === null) { out.push('null'); return; }
  if (v instanceof PyFloat) { out.push(pyFloatRepr(v.value)); return; }
  if (++depth > limits.maxDepth) throw depthError('to encode');
  if (Array.isArray(v)) {
    out.push('[');
    for (let i = 0; i < v.length; i++) {
      if (i) out.push(', ');
      write(v[i], out, opts, depth);
    }
    out.push(']');
    return;
  }
  if (v instanceof Map) {
    const conv = opts.toJsonValue?.(v);
    if (conv !== undefined) { write(conv, out, opts, depth); return; }
    const np = numpyOfMsgpackMap(v);
    if (np !== undefined) { out.push(np.toPyJson()); return; }
    out.push('{');
    let first = true;
    for (const [k, x] of v) {
      if (typeof k !== 'string') throw new TypeError('keys must be str, int, float, bool or None, not bytes');
      if (!first) out.push(', ');
      first = false;
      out.push(pyJsonString(k), ': ');
      write(x, out, opts, depth);
    }
    out.push('}');
    return;
  }
  if (!isPlainDoc(v)) {
    // Values that know their JSON form (an NdArray writes its nested lists as text).
    const own = v as Encodable;
    if (typeof own.toPyJson === 'function') { out.push(own.toPyJson()); return; }
    if (typeof own.toJsonValue === 'function') { write(own.toJsonValue(), out, opts, depth); return; }
    const conv = opts.toJsonValue?.(v);
    if (conv !== undefined) { write(conv, out, opts, depth); return; }
    throw new TypeError(`Object of type ${v.constructor?.name ?? 'object'} is not JSON serializable`);
  }
  out.push('{');
  let first = true;
  for (const k of hasKeyOrder(v) ? docKeys(v) : Object.keys(v)) {
    const x = v[k];
    if (x === undefined) continue;
    if (!first) out.push(', ');
    first = false;
    out.push(pyJsonString(k), ': ');
    write(x, out, opts, depth);
  }
  out.push('}');
}

/** One JSONL line as suitcase-jsonl writes it: json.dumps((name, doc)) + "\n". */
export function jsonlRecord(name: string, doc: Value, opts: PyJsonOptions = {}): string {
  return `[${pyJsonString(name)}, ${stringifyPyJson(doc, opts)}]\n`;
}
