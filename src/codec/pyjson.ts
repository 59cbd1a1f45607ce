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
import { PyFloat, needsOrderedMap, isPlainDoc, type Doc, type Encodable, type PyMap, type Value } from './values.js';

export class JsonSyntaxError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} at character ${offset}`);
  }
}

const WS = new Uint8Array(128);
for (const c of [0x20, 0x09, 0x0a, 0x0d]) WS[c] = 1;

class Parser {
  pos = 0;
  constructor(private readonly s: string) {}

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
      case 0x7b: return this.object();
      case 0x5b: return this.array();
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

  number(): Value {
    const s = this.s;
    const start = this.pos;
    let p = start;
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
    this.pos = p;
    const text = s.slice(start, p);
    if (isFloat) {
      const f = Number(text);
      return Number.isInteger(f) || Object.is(f, -0) ? new PyFloat(f) : f;
    }
    if (p - intStart <= 15) return Number(text);
    const big = BigInt(text);
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
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
    const out: Value[] = [];
    this.ws();
    if (this.s.charCodeAt(this.pos) === 0x5d) { this.pos++; return out; }
    for (;;) {
      out.push(this.value());
      this.ws();
      const c = this.s.charCodeAt(this.pos++);
      if (c === 0x5d) return out;
      if (c !== 0x2c) { this.pos--; this.fail("expected ',' or ']'"); }
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
  write(v, parts, opts);
  return parts.join('');
}

function write(v: Value | undefined, out: string[], opts: PyJsonOptions): void {
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
  if (Array.isArray(v)) {
    out.push('[');
    for (let i = 0; i < v.length; i++) {
      if (i) out.push(', ');
      write(v[i], out, opts);
    }
    out.push(']');
    return;
  }
  if (v instanceof Map) {
    const conv = opts.toJsonValue?.(v);
    if (conv !== undefined) { write(conv, out, opts); return; }
    const np = numpyOfMsgpackMap(v);
    if (np !== undefined) { out.push(np.toPyJson()); return; }
    out.push('{');
    let first = true;
    for (const [k, x] of v) {
      if (typeof k !== 'string') throw new TypeError('keys must be str, int, float, bool or None, not bytes');
      if (!first) out.push(', ');
      first = false;
      out.push(pyJsonString(k), ': ');
      write(x, out, opts);
    }
    out.push('}');
    return;
  }
  if (!isPlainDoc(v)) {
    // Values that know their JSON form (an NdArray writes its nested lists as text).
    const own = v as Encodable;
    if (typeof own.toPyJson === 'function') { out.push(own.toPyJson()); return; }
    if (typeof own.toJsonValue === 'function') { write(own.toJsonValue(), out, opts); return; }
    const conv = opts.toJsonValue?.(v);
    if (conv !== undefined) { write(conv, out, opts); return; }
    throw new TypeError(`Object of type ${v.constructor?.name ?? 'object'} is not JSON serializable`);
  }
  out.push('{');
  let first = true;
  for (const k in v) {
    const x = v[k];
    if (x === undefined) continue;
    if (!first) out.push(', ');
    first = false;
    out.push(pyJsonString(k), ': ');
    write(x, out, opts);
  }
  out.push('}');
}

/** One JSONL line as suitcase-jsonl writes it: json.dumps((name, doc)) + "\n". */
export function jsonlRecord(name: string, doc: Value, opts: PyJsonOptions = {}): string {
  return `[${pyJsonString(name)}, ${stringifyPyJson(doc, opts)}]\n`;
}
