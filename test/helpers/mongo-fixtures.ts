/**
 * Shared pieces of the MongoDB tests: a private intake/XDG sandbox (so unpack
 * writes its YAML into a temp dir), unique database names, and reading a
 * catalog's runs into arrays for comparison.
 */
import { deepEqual, type Doc } from '../../src/codec/values.js';
import { stringifyPyJson } from '../../src/codec/pyjson.js';
import type { Catalog, DocPair, RunRef } from '../../src/types.js';

export { sandbox, type Sandbox } from './sandbox.js';

let counter = 0;
/** A database name no other test (or earlier run against a shared MONGODB_URI) uses. */
export function uniqueDb(prefix: string): string {
  return `ps_${prefix}_${process.pid}_${Date.now().toString(36)}_${counter++}`.slice(0, 60);
}

export async function docsOf(run: RunRef): Promise<DocPair[]> {
  const out: DocPair[] = [];
  for await (const p of run.documents()) out.push(p);
  return out;
}

export async function runsOf(cat: Catalog, query?: Doc): Promise<RunRef[]> {
  const out: RunRef[] = [];
  for await (const r of cat.runs(query ? { query } : {})) out.push(r);
  return out;
}

/** Describe the first difference between two runs' documents, or null if equal (types and key order included). */
export function firstDifference(a: DocPair[], b: DocPair[]): string | null {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (!x || !y) return `document #${i}: ${x ? x.name : 'nothing'} vs ${y ? y.name : 'nothing'} (lengths ${a.length} vs ${b.length})`;
    if (x.name !== y.name || !deepEqual(x.doc, y.doc)) {
      return `document #${i}: ${x.name} ${stringifyPyJson(x.doc).slice(0, 300)}\n  vs ${y.name} ${stringifyPyJson(y.doc).slice(0, 300)}`;
    }
  }
  return null;
}
