/**
 * File-by-file comparison of two packs (pack-stream's and databroker-pack's),
 * written independently of the code under test: records are split by byte
 * length (msgpack) or by line (JSONL) and compared as bytes.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { decode, measure } from '../../src/codec/msgpack.js';
import { parsePyJson } from '../../src/codec/pyjson.js';
import { field, type Value } from '../../src/codec/values.js';

export interface RawRecord {
  name: string;
  /** Descriptors only: the stream name. */
  stream?: string;
  bytes: Buffer;
}

export function splitRecords(buf: Buffer, format: 'msgpack' | 'jsonl'): RawRecord[] {
  const out: RawRecord[] = [];
  const push = (bytes: Buffer, v: Value) => {
    const [name, doc] = v as [string, Value];
    const stream = name === 'descriptor' ? String(field(doc, 'name') ?? '') : undefined;
    out.push({ name, bytes, ...(stream !== undefined ? { stream } : {}) });
  };
  if (format === 'msgpack') {
    for (let pos = 0; pos < buf.length; ) {
      const end = measure(buf, pos);
      const bytes = buf.subarray(pos, end);
      push(bytes, decode(bytes));
      pos = end;
    }
  } else {
    for (let pos = 0; pos < buf.length; ) {
      let end = buf.indexOf(0x0a, pos);
      end = end < 0 ? buf.length : end + 1;
      const bytes = buf.subarray(pos, end);
      push(bytes, parsePyJson(bytes.toString('utf8')));
      pos = end;
    }
  }
  return out;
}

const hex = (b: Buffer) => b.toString('hex');

/**
 * 'identical' when the files are byte for byte equal; 'stream-order' when they
 * differ only in the order of the streams' descriptor blocks (databroker takes
 * a run's streams in Python set order, which changes from process to process):
 * same start, same events and stop byte for byte and in order, the same records
 * before the first event as a multiset, resources and datums in the same order,
 * each stream's descriptors in the same order. Otherwise a description of the
 * first difference.
 */
export function compareDocumentFiles(a: Buffer, b: Buffer, format: 'msgpack' | 'jsonl'): string {
  if (a.equals(b)) return 'identical';
  const ra = splitRecords(a, format);
  const rb = splitRecords(b, format);
  if (ra.length !== rb.length) return `${ra.length} vs ${rb.length} records`;
  const firstEvent = (rs: RawRecord[]) => {
    const i = rs.findIndex((r) => r.name === 'event' || r.name === 'event_page' || r.name === 'stop');
    return i < 0 ? rs.length : i;
  };
  const ia = firstEvent(ra);
  if (ia !== firstEvent(rb)) return 'the events start at different records';
  for (let i = ia; i < ra.length; i++) if (!ra[i]!.bytes.equals(rb[i]!.bytes)) return `record ${i} (${ra[i]!.name}) differs`;
  if (!ra[0]!.bytes.equals(rb[0]!.bytes)) return 'start differs';
  const head = (rs: RawRecord[]) => rs.slice(1, ia);
  const ms = (rs: RawRecord[]) => rs.map((r) => hex(r.bytes)).sort();
  if (JSON.stringify(ms(head(ra))) !== JSON.stringify(ms(head(rb)))) return 'the records before the first event differ';
  const seq = (rs: RawRecord[], keep: (r: RawRecord) => boolean) => rs.filter(keep).map((r) => hex(r.bytes)).join(',');
  if (seq(head(ra), (r) => r.name !== 'descriptor') !== seq(head(rb), (r) => r.name !== 'descriptor')) return 'resources or datums in a different order';
  const streams = new Set(head(ra).flatMap((r) => (r.stream !== undefined ? [r.stream] : [])));
  if (streams.size < 2) return 'descriptors in a different order within one stream';
  for (const s of streams) if (seq(head(ra), (r) => r.stream === s) !== seq(head(rb), (r) => r.stream === s)) return `stream ${s}: descriptors in a different order`;
  return 'stream-order';
}

/** Lines of every file matching `re` in dir, as a sorted list. */
export function manifestEntries(dir: string, re: RegExp): string[] {
  const lines: string[] = [];
  for (const f of readdirSync(dir)) {
    if (!re.test(f)) continue;
    for (const l of readFileSync(path.join(dir, f), 'utf8').split('\n')) if (l !== '') lines.push(l);
  }
  return lines.sort();
}

/** The root hashes that have external-file manifests, in either naming. */
export function externalManifestHashes(dir: string): string[] {
  const hashes = new Set<string>();
  for (const f of readdirSync(dir)) {
    const m = /^external_files_manifest_([0-9a-f]{32})(?:_\d+)?\.txt$/.exec(f);
    if (m) hashes.add(m[1]!);
  }
  return [...hashes].sort();
}

/** catalog.yml as data, with the pack's own directory written as <PACK> and generated_by split off. */
export function catalogData(pack: string): { data: unknown; generatedBy: unknown } {
  const text = readFileSync(path.join(pack, 'catalog.yml'), 'utf8').split(pack + path.sep).join('<PACK>/');
  const data = parseYaml(text) as { sources: Record<string, { metadata?: Record<string, unknown> }> };
  const meta = data.sources.packed_catalog?.metadata ?? {};
  const generatedBy = meta.generated_by;
  delete meta.generated_by;
  return { data, generatedBy };
}
