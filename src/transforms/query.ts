/**
 * Queries as databroker-pack's `-q` takes them, without evaluating code.
 *
 * `parseQuery` reads JSON or a Python literal (single quotes, True/False/None,
 * tuples, trailing commas) and the calls `TimeRange(since=, until=, timezone=)`
 * and `TextQuery(text)` from databroker.queries. `matchQuery` applies a Mongo
 * query to a start document the way databroker's file catalogs do (mongoquery),
 * except that comparing values of different types is false instead of a crash.
 */
import { PyFloat, field, isPlainDoc, toNumber, type Doc, type Value } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import { compilePythonRegex } from './regex.js';

/**
 * Deepest nesting accepted in a query and followed in a comparison. Real
 * queries and start documents are a few levels deep; the bound keeps hostile
 * ones from exhausting the stack (a RangeError is not a typed error).
 */
export const MAX_QUERY_DEPTH = 1000;

/**
 * The bound on a query's structure once parsed: the parser's limit plus room
 * for the `$and` wrappers that combine several -q queries and a catalog's own.
 */
const STRUCTURE_DEPTH = MAX_QUERY_DEPTH + 8;

function tooDeep(what: string): PackStreamError {
  return new PackStreamError('E_LIMIT', `${what} nests deeper than ${MAX_QUERY_DEPTH} levels`);
}

/** A value for an error message: short, and safe for bigints, Maps and deep values. */
export function showValue(v: unknown, budget = 80): string {
  let out = '';
  const walk = (x: unknown, depth: number): void => {
    if (out.length > budget) return;
    if (depth > 3) out += '…';
    else if (typeof x === 'string') {
      const room = Math.max(8, budget - out.length);
      out += JSON.stringify(x.length > room ? `${x.slice(0, room)}…` : x);
    }
    else if (typeof x === 'bigint' || typeof x === 'number' || typeof x === 'boolean' || x === null) out += String(x);
    else if (x instanceof PyFloat) out += String(x.value);
    else if (Array.isArray(x)) {
      out += '[';
      x.slice(0, 8).forEach((e, i) => {
        if (i) out += ', ';
        walk(e, depth + 1);
      });
      out += x.length > 8 ? ', …]' : ']';
    } else if (x instanceof Map || isPlainDoc(x)) {
      const items = x instanceof Map ? [...x.entries()].slice(0, 8) : Object.entries(x).slice(0, 8);
      out += '{';
      items.forEach(([k, e], i) => {
        out += `${i ? ', ' : ''}${JSON.stringify(String(k))}: `;
        walk(e, depth + 1);
      });
      out += '}';
    } else out += `<${typeof x}>`;
  };
  walk(v, 0);
  return out.length > 2 * budget ? `${out.slice(0, 2 * budget)}…` : out;
}

/** The safety net under the explicit depth checks: a stack overflow is still a typed error. */
function guardStack<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof RangeError && /call stack/i.test(e.message)) throw tooDeep(what);
    throw e;
  }
}

// ---------------------------------------------------------------- parsing

class LiteralParser {
  pos = 0;
  private depth = 0;
  constructor(private readonly s: string) {}

  fail(msg: string): never {
    throw new PackStreamError('E_BAD_QUERY', `cannot parse query ${showValue(this.s)}: ${msg} at character ${this.pos}`, { subject: this.s });
  }

  /** Entering a dict, list, tuple or call. */
  enter(): void {
    if (++this.depth > MAX_QUERY_DEPTH) {
      throw new PackStreamError('E_LIMIT', `cannot parse query ${showValue(this.s)}: it nests deeper than ${MAX_QUERY_DEPTH} levels at character ${this.pos}`, { subject: this.s });
    }
  }

  ws(): void {
    while (this.pos < this.s.length && /\s/.test(this.s[this.pos]!)) this.pos++;
  }

  peek(): string {
    this.ws();
    return this.s[this.pos] ?? '';
  }

  expect(ch: string): void {
    if (this.peek() !== ch) this.fail(`expected '${ch}'`);
    this.pos++;
  }

  value(): Value {
    const c = this.peek();
    if (c === '{') return this.dict();
    if (c === '[') return this.seq('[', ']');
    if (c === '(') return this.seq('(', ')');
    if (c === '"' || c === "'") return this.string();
    if (/[-+\d.]/.test(c)) return this.number();
    if (/[A-Za-z_]/.test(c)) return this.name();
    return this.fail(c === '' ? 'unexpected end' : `unexpected ${JSON.stringify(c)}`);
  }

  dict(): Doc {
    this.expect('{');
    this.enter();
    const out: Doc = {};
    while (this.peek() !== '}') {
      const k = this.value();
      if (typeof k !== 'string') this.fail('only string keys are supported');
      this.expect(':');
      const v = this.value();
      if (k === '__proto__') Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
      else out[k] = v;
      if (this.peek() === ',') this.pos++;
      else break;
    }
    this.expect('}');
    this.depth--;
    return out;
  }

  seq(open: string, close: string): Value[] {
    this.expect(open);
    this.enter();
    const out: Value[] = [];
    while (this.peek() !== close) {
      out.push(this.value());
      if (this.peek() === ',') this.pos++;
      else break;
    }
    this.expect(close);
    this.depth--;
    return out;
  }

  /** A string literal; adjacent literals concatenate, as in Python. */
  string(): string {
    let out = '';
    let c: string;
    do {
      out += this.oneString();
      c = this.peek();
    } while (c === '"' || c === "'");
    return out;
  }

  oneString(): string {
    const q = this.s[this.pos]!;
    this.pos++;
    let out = '';
    for (;;) {
      const c = this.s[this.pos];
      if (c === undefined) this.fail('unterminated string');
      this.pos++;
      if (c === q) break;
      if (c === '\\') {
        const e = this.s[this.pos++];
        const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '\\': '\\', "'": "'", '"': '"', '/': '/', '0': '\0' };
        if (e === 'u' || e === 'x') {
          const n = e === 'u' ? 4 : 2;
          const hex = this.s.slice(this.pos, this.pos + n);
          if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) this.fail('bad escape');
          out += String.fromCharCode(parseInt(hex, 16));
          this.pos += n;
        } else if (e !== undefined && e in simple) out += simple[e];
        else this.fail('bad escape');
      } else out += c;
    }
    return out;
  }

  number(): Value {
    const m = /^[-+]?(?:(?:\d[\d_]*)?\.\d[\d_]*(?:[eE][-+]?\d+)?|\d[\d_]*\.?(?:[eE][-+]?\d+)?|inf(?:inity)?)/i.exec(this.s.slice(this.pos));
    if (!m) this.fail('bad number');
    this.pos += m[0].length;
    const text = m[0].replace(/_/g, '');
    if (/[.eE]/.test(text)) {
      const f = Number(text);
      return Number.isInteger(f) ? new PyFloat(f) : f;
    }
    const big = BigInt(text.replace(/^\+/, ''));
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  }

  name(): Value {
    const m = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(this.s.slice(this.pos))!;
    this.pos += m[0].length;
    const id = m[0];
    const consts: Record<string, Value> = { True: true, False: false, None: null, true: true, false: false, null: null, NaN: NaN, Infinity: Infinity };
    if (this.peek() !== '(') {
      if (id in consts) return consts[id]!;
      this.fail(`unknown name '${id}'`);
    }
    return this.call(id.replace(/^(?:databroker\.)?(?:queries\.)?/, ''));
  }

  call(fn: string): Value {
    this.expect('(');
    this.enter();
    const args: Value[] = [];
    const kwargs: Record<string, Value> = Object.create(null) as Record<string, Value>; // `__proto__=` is a plain keyword
    while (this.peek() !== ')') {
      const save = this.pos;
      const kw = /^([A-Za-z_]\w*)\s*=(?!=)/.exec(this.s.slice(this.pos));
      if (kw) {
        this.pos += kw[0].length;
        kwargs[kw[1]!] = this.value();
      } else {
        this.pos = save;
        args.push(this.value());
      }
      if (this.peek() === ',') this.pos++;
      else break;
    }
    this.expect(')');
    this.depth--;
    if (fn === 'TimeRange') {
      const names = ['since', 'until', 'timezone'];
      args.forEach((a, i) => {
        if (i >= names.length) this.fail('TimeRange takes at most 3 arguments');
        kwargs[names[i]!] = a;
      });
      for (const k of Object.keys(kwargs)) if (!names.includes(k)) this.fail(`TimeRange got an unexpected keyword '${k}'`);
      return timeRange(kwargs as TimeRangeArgs);
    }
    if (fn === 'TextQuery') {
      const text = args[0] ?? kwargs.text;
      if (typeof text !== 'string') this.fail('TextQuery needs a string');
      return { $text: { $search: text } };
    }
    if (fn === 'dict') {
      if (args.length === 0) return { ...kwargs } as Doc;
      if (args.length === 1 && isPlainDoc(args[0])) return { ...(args[0] as Doc), ...kwargs } as Doc;
    }
    return this.fail(`calling '${fn}' is not supported (only TimeRange, TextQuery and dict)`);
  }
}

/** Parse one `-q` string into a query document. */
export function parseQuery(text: string): Doc {
  const p = new LiteralParser(text.trim());
  if (text.trim() === '') p.fail('empty query');
  const v = guardStack('the query', () => p.value());
  p.ws();
  if (p.pos !== text.trim().length) p.fail('unexpected text after the query');
  if (!isPlainDoc(v)) p.fail('a query must be a dict');
  return v as Doc;
}

/** Combine several `-q` queries as databroker-pack does: `{'$and': [...]}`. */
export function combineQueries(queries: Doc[]): Doc {
  return { $and: queries.length ? queries : [{}] };
}

// ---------------------------------------------------------------- TimeRange

interface TimeRangeArgs {
  since?: Value;
  until?: Value;
  timezone?: Value;
}

export function localTimezone(): string {
  return process.env.TZ && process.env.TZ !== '' ? process.env.TZ.replace(/^:/, '') : Intl.DateTimeFormat().resolvedOptions().timeZone;
}

const FORMATS: [RegExp, number][] = [
  [/^(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{1,2}):(\d{1,2})$/, 6],
  [/^(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{1,2})$/, 5],
  [/^(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2})$/, 4],
  [/^(\d{4})-(\d{1,2})-(\d{1,2})$/, 3],
  [/^(\d{4})-(\d{1,2})$/, 2],
  [/^(\d{4})$/, 1],
];

function offsetMinutes(tz: string, utcMs: number): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
  }).formatToParts(new Date(utcMs));
  const get = (t: string) => Number(parts.find((p) => p.type === t)!.value);
  const local = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return Math.round((local - Math.floor(utcMs / 1000) * 1000) / 60000);
}

/** databroker's normalize_human_friendly_time: epoch seconds from a number or a local time string. */
export function normalizeHumanFriendlyTime(val: Value, tz: string): number {
  const n = toNumber(val);
  if (n !== undefined && typeof val !== 'string') return n;
  if (typeof val !== 'string') throw new PackStreamError('E_BAD_QUERY', `TimeRange: cannot use ${String(val)} as a time`);
  const s = val.trim();
  for (const [re, count] of FORMATS) {
    const m = re.exec(s);
    if (!m) continue;
    const f = m.slice(1).map(Number);
    const [Y, M = 1, D = 1, h = 0, mi = 0, sec = 0] = f;
    void count;
    const valid = M >= 1 && M <= 12 && D >= 1 && D <= new Date(Date.UTC(Y!, M, 0)).getUTCDate() && h < 24 && mi < 60 && sec < 60;
    if (!valid) continue;
    const naive = Date.UTC(Y!, M - 1, D, h, mi, sec);
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
    } catch {
      throw new PackStreamError('E_BAD_QUERY', `TimeRange: unknown timezone ${JSON.stringify(tz)}`, { subject: tz });
    }
    // Every UTC instant whose local time in tz is the naive time (0, 1 or 2 of them).
    const offsets = new Set([offsetMinutes(tz, naive - 86400000), offsetMinutes(tz, naive), offsetMinutes(tz, naive + 86400000)]);
    const hits = new Set<number>();
    for (const o of offsets) {
      const t = naive - o * 60000;
      if (offsetMinutes(tz, t) === o) hits.add(t);
    }
    if (hits.size === 0) throw new PackStreamError('E_BAD_QUERY', `TimeRange: ${s} does not exist in ${tz} (daylight-saving gap)`, { subject: s });
    if (hits.size > 1) throw new PackStreamError('E_BAD_QUERY', `TimeRange: ${s} is ambiguous in ${tz} (daylight-saving overlap)`, { subject: s });
    return [...hits][0]! / 1000;
  }
  throw new PackStreamError('E_BAD_QUERY', `failed to parse time: ${JSON.stringify(val)}`, { subject: String(val) });
}

export function timeRange(args: TimeRangeArgs): Doc {
  const tzv = args.timezone ?? null;
  const tz = tzv === null ? localTimezone() : String(tzv);
  const since = args.since === undefined || args.since === null ? undefined : normalizeHumanFriendlyTime(args.since, tz);
  const until = args.until === undefined || args.until === null ? undefined : normalizeHumanFriendlyTime(args.until, tz);
  if (since !== undefined && until !== undefined && since > until) {
    throw new PackStreamError('E_BAD_QUERY', 'TimeRange: since must not be greater than until');
  }
  const cond: Doc = {};
  const num = (x: number, orig: Value | undefined) => (typeof orig === 'string' ? new PyFloat(x) : (orig as Value));
  if (since !== undefined) cond.$gte = Number.isInteger(since) ? num(since, args.since) : since;
  if (until !== undefined) cond.$lt = Number.isInteger(until) ? num(until, args.until) : until;
  return Object.keys(cond).length ? { time: cond } : {};
}

// ---------------------------------------------------------------- matching

const UNDEFINED = Symbol('undefined');
type Entry = Value | typeof UNDEFINED | Entry[];

function isSeq(v: unknown): v is Entry[] {
  return Array.isArray(v);
}

function isMapping(v: unknown): v is Doc | Map<unknown, Value> {
  return v instanceof Map || isPlainDoc(v);
}

function has(v: unknown, key: string): boolean {
  if (v instanceof Map) return v.has(key);
  return isPlainDoc(v) && Object.prototype.hasOwnProperty.call(v, key);
}

function numOf(v: unknown): number | undefined {
  if (typeof v === 'boolean') return v ? 1 : 0;
  return toNumber(v);
}

/** Python `==` between decoded values (1 == 1.0 == True). */
export function pyEquals(a: unknown, b: unknown, depth = 0): boolean {
  if (a === b) return true;
  const na = numOf(a);
  const nb = numOf(b);
  if (na !== undefined && nb !== undefined) {
    if (typeof a === 'bigint' && typeof b === 'bigint') return a === b;
    return na === nb;
  }
  if (isSeq(a) && isSeq(b)) {
    if (a.length !== b.length) return false;
    if (depth >= MAX_QUERY_DEPTH) throw tooDeep('a value compared by the query');
    return a.every((x, i) => pyEquals(x, b[i], depth + 1));
  }
  if (isMapping(a) && isMapping(b)) {
    const ea = a instanceof Map ? [...a] : Object.entries(a);
    const eb = b instanceof Map ? b : new Map(Object.entries(b));
    if (ea.length !== eb.size) return false;
    if (depth >= MAX_QUERY_DEPTH) throw tooDeep('a value compared by the query');
    return ea.every(([k, v]) => eb.has(k as string) && pyEquals(v, eb.get(k as string), depth + 1));
  }
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b) === 0;
  return false;
}

/** Python ordering; undefined when the types cannot be compared. */
function compare(a: unknown, b: unknown, depth = 0): number | undefined {
  const na = numOf(a);
  const nb = numOf(b);
  if (na !== undefined && nb !== undefined) {
    if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
    return na < nb ? -1 : na > nb ? 1 : na === nb ? 0 : undefined;
  }
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (isSeq(a) && isSeq(b)) {
    if (depth >= MAX_QUERY_DEPTH) throw tooDeep('a value compared by the query');
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      if (pyEquals(a[i], b[i], depth + 1)) continue;
      return compare(a[i], b[i], depth + 1);
    }
    return a.length - b.length;
  }
  return undefined;
}

/**
 * The values at a dotted path (mongoquery's _extract): through mappings one
 * key at a time, through a list by index or, for a name, into every element.
 */
function extract(entry: Entry, path: string[], from = 0, depth = 0): Entry {
  let cur = entry;
  for (let at = from; at < path.length; at++) {
    if (cur === null) return cur;
    const key = path[at]!;
    if (isSeq(cur)) {
      if (/^[-+]?\d+$/.test(key)) {
        let i = Number(key);
        if (i < 0) i += cur.length;
        if (i < 0 || i >= cur.length) return UNDEFINED;
        cur = cur[i]!;
        continue;
      }
      if (depth >= MAX_QUERY_DEPTH) throw tooDeep('a document searched by the query');
      const list = cur;
      return list.map((item) => extract(item, path, at, depth + 1));
    }
    if (isMapping(cur) && has(cur, key)) cur = field(cur as Value, key) as Entry;
    else return UNDEFINED;
  }
  return cur;
}

function seqContains(seq: Entry[], x: unknown): boolean {
  return seq.some((e) => pyEquals(e, x));
}

function matchCond(cond: Value, entry: Entry, depth: number): boolean {
  if (depth > STRUCTURE_DEPTH) throw tooDeep('the query');
  if (isMapping(cond)) {
    const items = cond instanceof Map ? [...cond] : Object.entries(cond);
    return items.every(([op, sub]) => processCondition(String(op), sub as Value, entry, depth + 1));
  }
  if (isSeq(entry)) return seqContains(entry, cond);
  return pyEquals(cond, entry);
}

function pathExists(entry: Entry, path: string): boolean {
  let cur: Entry = entry;
  for (const k of path.replace(/\[/g, '.').split('.').filter(Boolean)) {
    if (k.endsWith(']')) {
      const i = Number(k.slice(0, -1));
      if (!isSeq(cur) || i >= cur.length) return false;
      cur = cur[i]!;
    } else if (has(cur, k)) cur = field(cur as Value, k) as Entry;
    else return false;
  }
  return true;
}

function processCondition(op: string, cond: Value, entry: Entry, depth: number): boolean {
  if (isMapping(cond) && has(cond, '$exists')) {
    const want = Boolean(field(cond as Value, '$exists'));
    if (op.includes('.')) return pathExists(entry, op) === want;
    if (want !== has(entry, op)) return false;
    if ((cond instanceof Map ? cond.size : Object.keys(cond).length) === 1) return true;
  }
  if (op.startsWith('$')) return operator(op, cond, entry, depth);
  return matchCond(cond, extract(entry, op.split('.')), depth);
}

function cmp(entry: Entry, cond: Value, ok: (c: number) => boolean): boolean {
  const c = compare(entry, cond);
  return c !== undefined && ok(c);
}

function operator(op: string, cond: Value, entry: Entry, depth: number): boolean {
  switch (op) {
    case '$eq': return matchCond(cond, entry, depth);
    case '$ne': return !pyEquals(entry, cond);
    case '$gt': return cmp(entry, cond, (c) => c > 0);
    case '$gte': return cmp(entry, cond, (c) => c >= 0);
    case '$lt': return cmp(entry, cond, (c) => c < 0);
    case '$lte': return cmp(entry, cond, (c) => c <= 0);
    case '$in':
      if (!isSeq(cond)) throw badQuery(`$in needs a list, got ${showValue(cond)}`);
      return seqContains(cond, entry) || (isSeq(entry) && entry.some((e) => seqContains(cond, e)));
    case '$nin':
      if (!isSeq(cond)) throw badQuery(`$nin needs a list, got ${showValue(cond)}`);
      return !seqContains(cond, entry);
    case '$and':
    case '$or':
    case '$nor': {
      if (!isSeq(cond)) throw badQuery(`${op} needs a list of queries`);
      if (op === '$and') return cond.every((c) => matchCond(c as Value, entry, depth));
      if (op === '$or') return cond.some((c) => matchCond(c as Value, entry, depth));
      return cond.every((c) => !matchCond(c as Value, entry, depth));
    }
    case '$not': return !matchCond(cond, entry, depth);
    case '$exists': return true;
    case '$comment': return true;
    case '$type': return typeMatches(cond, entry);
    case '$mod': {
      if (!isSeq(cond) || cond.length !== 2) throw badQuery('$mod needs [divisor, remainder]');
      const e = numOf(entry);
      const d = numOf(cond[0]);
      const r = numOf(cond[1]);
      if (e === undefined || d === undefined || r === undefined || d === 0) return false;
      return ((e % d) + d) % d === r; // Python's modulo takes the divisor's sign
    }
    case '$regex': return regexMatches(cond, entry);
    case '$all':
      if (!isSeq(cond)) throw badQuery('$all needs a list');
      return cond.every((c) => matchCond(c as Value, entry, depth));
    case '$elemMatch':
      if (!isSeq(entry) || !isMapping(cond)) return false;
      return entry.some((el) => (cond instanceof Map ? [...cond] : Object.entries(cond)).every(([k, c]) => processCondition(String(k), c as Value, el, depth + 1)));
    case '$size':
      if (typeof cond !== 'number' || !Number.isInteger(cond)) throw badQuery(`$size needs an int, got ${showValue(cond)}`);
      return isSeq(entry) && entry.length === cond;
    case '$text':
    case '$where':
    case '$options':
      throw new PackStreamError('E_UNSUPPORTED', `${op} queries work only on MongoDB catalogs, not on file catalogs`, { subject: op });
    default:
      throw badQuery(`the ${showValue(op)} operator is not supported`);
  }
}

function badQuery(msg: string): PackStreamError {
  return new PackStreamError('E_BAD_QUERY', msg);
}

function typeMatches(cond: Value, entry: Entry): boolean {
  const alias: Record<string, number> = { double: 1, string: 2, object: 3, array: 4, binData: 5, objectId: 7, bool: 8, date: 9, null: 10, regex: 11, javascript: 13, javascriptWithScope: 15, int: 16, timestamp: 17, long: 18 };
  const isInt = typeof entry === 'bigint' || (typeof entry === 'number' && Number.isSafeInteger(entry)) || typeof entry === 'boolean';
  const isFloat = entry instanceof PyFloat || (typeof entry === 'number' && !Number.isSafeInteger(entry));
  if (cond === 'number') return isInt || isFloat;
  const code = typeof cond === 'string' ? (Object.hasOwn(alias, cond) ? alias[cond] : undefined) : toNumber(cond);
  switch (code) {
    case 1: return isFloat;
    case 2: case 7: case 9: case 11: case 13: case 15: return typeof entry === 'string';
    case 3: return isMapping(entry);
    case 4: return isSeq(entry) || typeof entry === 'string';
    case 5: return entry instanceof Uint8Array;
    case 8: return typeof entry === 'boolean';
    case 10: return entry === null;
    case 16: case 17: case 18: return isInt;
    default: throw badQuery(`$type has been used with unknown type ${showValue(cond)}`);
  }
}

/** mongoquery's _regex: a string, or `/pattern/flags` with flags from `imsx`. */
function compiledRegex(cond: Value) {
  if (typeof cond !== 'string') throw badQuery(`${showValue(cond)} is not a regular expression and should be a string`);
  const m = /^\/(.+)\/([imsx]{0,4})$/s.exec(cond);
  return m ? compilePythonRegex(m[1]!, m[2]!) : compilePythonRegex(cond);
}

function regexMatches(cond: Value, entry: Entry): boolean {
  return typeof entry === 'string' && compiledRegex(cond).test(entry);
}

/** Does the start document match the query? */
export function matchQuery(query: Doc, doc: Doc): boolean {
  return guardStack('the query or the document it is matched against', () => matchCond(query, doc as Entry, 0));
}

const KNOWN_OPERATORS = new Set(['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$and', '$or', '$nor', '$not', '$exists', '$type', '$mod', '$regex', '$all', '$size', '$elemMatch', '$comment']);

/**
 * Check a query before touching any run: unknown operators are a bad query,
 * $text / $where (MongoDB only) are refused for file catalogs, regular
 * expressions must compile, and nesting must stay within MAX_QUERY_DEPTH.
 * With `forFiles` false (MongoDB) the server judges operators and patterns.
 */
export function validateQuery(query: Value, forFiles = true): void {
  guardStack('the query', () => validateAt(query, forFiles, 0));
}

function validateAt(query: Value, forFiles: boolean, depth: number): void {
  if (depth > STRUCTURE_DEPTH) throw tooDeep('the query');
  if (Array.isArray(query)) {
    for (const q of query) validateAt(q, forFiles, depth + 1);
    return;
  }
  if (!isMapping(query)) return;
  for (const [k, v] of query instanceof Map ? [...query] : Object.entries(query)) {
    const key = String(k);
    if (key.startsWith('$') && !KNOWN_OPERATORS.has(key)) {
      if ((key === '$text' || key === '$where') && !forFiles) continue;
      if (key === '$text' || key === '$where' || key === '$options') {
        throw new PackStreamError('E_UNSUPPORTED', `${key} queries work only on MongoDB catalogs, not on file catalogs`, { subject: key });
      }
      throw badQuery(`the ${showValue(key)} operator is not supported`);
    }
    if (key === '$regex' && forFiles && typeof v === 'string') compiledRegex(v);
    validateAt(v as Value, forFiles, depth + 1);
  }
}
