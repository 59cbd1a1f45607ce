/**
 * The value model every stage shares.
 *
 * Python tells `1.0` from `1`, BSON tells double from int32/int64, JS numbers do
 * neither. So a decoded document keeps the difference explicitly:
 * - a float whose value is a whole number (or -0.0) is a `PyFloat`;
 *   any other JS number that is not an integer is a float (it cannot be an int);
 * - a JS number that is a safe integer is an int; ints beyond 2^53 are `bigint`;
 * - a map whose keys would be reordered by a JS object (integer-like keys such
 *   as "0") or that has bin keys (msgpack-numpy) is a `Map`, so insertion order
 *   and key types survive; all other maps are plain objects.
 * Encoders apply the same rules, so an unchanged value re-encodes identically.
 */
import { depthError, limits } from '../limits.js';

export class PyFloat {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
  valueOf(): number {
    return this.value;
  }
  toString(): string {
    return String(this.value);
  }
  toJSON(): number {
    return this.value;
  }
}

/**
 * A value that carries its own encodings, such as an NdArray (a detector frame
 * in a filled event): msgpack through `toMsgpackValue()`, JSON through
 * `toPyJson()` (direct text) or `toJsonValue()`.
 */
export interface Encodable {
  toMsgpackValue(): Value;
  toPyJson?(): string;
  toJsonValue?(): Value;
}

export type Key = string | Uint8Array;
export type PyMap = Map<Key, Value>;
export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | PyFloat
  | Uint8Array
  | Value[]
  | Doc
  | PyMap
  | Encodable;
export interface Doc {
  [key: string]: Value;
}

/** Make a float value whose Python type is float even if it is whole. */
export function pyFloat(n: number): number | PyFloat {
  return Number.isInteger(n) || Object.is(n, -0) ? new PyFloat(n) : n;
}

/** The numeric value of a number-like Value (int, float, bigint), else undefined. */
export function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (v instanceof PyFloat) return v.value;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

export function isFloat(v: unknown): boolean {
  return v instanceof PyFloat || (typeof v === 'number' && !Number.isSafeInteger(v));
}

/** V8 orders these keys numerically in plain objects; such maps need a Map. */
const ARRAY_INDEX = /^(?:0|[1-9]\d{0,9})$/;
export function needsOrderedMap(key: string): boolean {
  if (key === '__proto__') return true;
  return ARRAY_INDEX.test(key) && Number(key) < 4294967295;
}

export function isPlainDoc(v: unknown): v is Doc {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * A top-level document is a plain object (stages read `doc.uid`), even when its
 * keys include "0" or "__proto__", which a nested map keeps as a Map. Then the
 * true key order is kept beside it, under a symbol, for the encoders and
 * comparisons (`docKeys`); "__proto__" is an own property, never the prototype.
 */
const KEY_ORDER = Symbol('pack-stream.keyOrder');

/** Build a top-level document from entries, keeping their order. */
export function docFromEntries(pairs: Iterable<[string, Value]>): Doc {
  const doc: Doc = {};
  const keys: string[] = [];
  let reordered = false;
  for (const [k, v] of pairs) {
    if (!Object.prototype.hasOwnProperty.call(doc, k)) keys.push(k);
    if (needsOrderedMap(k)) reordered = true;
    setOwn(doc, k, v);
  }
  if (reordered) Object.defineProperty(doc, KEY_ORDER, { value: keys, enumerable: false });
  return doc;
}

/** A decoded `(name, doc)` record's document as a Doc, or undefined when it is not a str-keyed map. */
export function topLevelDoc(v: Value | undefined): Doc | undefined {
  if (v instanceof Map) {
    for (const k of v.keys()) if (typeof k !== 'string') return undefined;
    return docFromEntries(v as Map<string, Value>);
  }
  return isPlainDoc(v) ? v : undefined;
}

/** The keys of a plain doc in their true order (see docFromEntries). */
export function docKeys(doc: Doc): string[] {
  const order = (doc as { [KEY_ORDER]?: string[] })[KEY_ORDER];
  const keys = Object.keys(doc);
  // A document changed after decoding (which stages do not do) falls back to JS order.
  return order !== undefined && order.length === keys.length ? order : keys;
}

/** Whether a plain doc carries a key order of its own (a JS object would reorder it). */
export function hasKeyOrder(doc: Doc): boolean {
  return (doc as { [KEY_ORDER]?: string[] })[KEY_ORDER] !== undefined;
}

/** Read a field from a doc-like value (plain object or Map). */
export function field(v: Value | undefined, key: string): Value | undefined {
  if (v instanceof Map) return v.get(key);
  if (isPlainDoc(v)) return Object.prototype.hasOwnProperty.call(v, key) ? v[key] : undefined;
  return undefined;
}

/** Entries of a doc-like value in insertion order. */
export function entries(v: Doc | PyMap): [Key, Value][] {
  return v instanceof Map ? [...v.entries()] : hasKeyOrder(v) ? docKeys(v).map((k) => [k, v[k]!]) : Object.entries(v);
}

/** Put a key on a plain object without triggering the __proto__ setter. */
export function setOwn(obj: Doc, key: string, value: Value): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

export function isEncodable(v: unknown): v is Encodable {
  return v !== null && typeof v === 'object' && typeof (v as Encodable).toMsgpackValue === 'function';
}

/** Deep structural equality that respects the int/float distinction. */
export function deepEqual(a: Value | undefined, b: Value | undefined, depth = 0): boolean {
  if (a === b) return true;
  if (a instanceof PyFloat || b instanceof PyFloat) {
    if (!(a instanceof PyFloat && b instanceof PyFloat)) return false;
    return Object.is(a.value, b.value);
  }
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b);
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(a, b) === 0;
  }
  if (depth >= limits.maxDepth) throw depthError('to compare');
  if (isEncodable(a) || isEncodable(b)) {
    return isEncodable(a) && isEncodable(b) && deepEqual(a.toMsgpackValue(), b.toMsgpackValue(), depth + 1);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!(Array.isArray(a) && Array.isArray(b)) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i], depth + 1)) return false;
    return true;
  }
  const ea = entries(a as Doc | PyMap);
  const eb = entries(b as Doc | PyMap);
  if (ea.length !== eb.length) return false;
  for (let i = 0; i < ea.length; i++) {
    const [ka, va] = ea[i]!;
    const [kb, vb] = eb[i]!;
    if (typeof ka !== typeof kb) return false;
    if (typeof ka === 'string' ? ka !== kb : Buffer.compare(ka, kb as Uint8Array) !== 0) return false;
    if (!deepEqual(va, vb, depth + 1)) return false;
  }
  return true;
}

/** A shallow copy of a plain doc with one key replaced, keeping key order. */
export function withField(doc: Doc, key: string, value: Value): Doc {
  const out: [string, Value][] = [];
  let seen = false;
  for (const [k, v] of entries(doc) as [string, Value][]) {
    if (k === key) {
      out.push([k, value]);
      seen = true;
    } else out.push([k, v]);
  }
  if (!seen) out.push([key, value]);
  return docFromEntries(out);
}

/**
 * V8 keeps `new Array(n)` fast only up to 2^25 elements (beyond, a slow
 * dictionary), and growing an array by push copies it again and again. Long
 * arrays are therefore built in blocks and joined once.
 */
export const FAST_ARRAY_MAX = 1 << 25;
const BLOCK = 1 << 16;

/** Collects values of a list whose length is not known in advance (JSON arrays). */
export class ArrayBuilder {
  private blocks: Value[][] = [];
  private cur: Value[] = [];
  push(v: Value): void {
    if (this.cur.length === BLOCK) {
      this.blocks.push(this.cur);
      this.cur = [];
    }
    this.cur.push(v);
  }
  finish(): Value[] {
    if (this.blocks.length === 0) return this.cur;
    this.blocks.push(this.cur);
    return joinBlocks(this.blocks);
  }
}

/** One array from blocks, in one allocation when V8 allows it. */
export function joinBlocks(blocks: Value[][]): Value[] {
  let n = 0;
  for (const b of blocks) n += b.length;
  if (n > FAST_ARRAY_MAX) return ([] as Value[]).concat(...blocks);
  const out: Value[] = new Array(n);
  let i = 0;
  for (const b of blocks) for (const v of b) out[i++] = v;
  return out;
}
