/**
 * Encoders: a DocPair to the bytes suitcase-msgpack or suitcase-jsonl would
 * write for it. An unchanged document decoded from the same format is copied
 * byte for byte (its `raw`); anything else is encoded.
 */
import { MsgpackEncoder } from '../codec/msgpack.js';
import { jsonlRecord, type PyJsonOptions } from '../codec/pyjson.js';
import { PackStreamError } from '../errors.js';
import type { DocPair, Format } from '../types.js';
import { datumAsRow, eventAsRow, packDatumPage, packEventPage } from './pages.js';

export type Encoder = (pair: DocPair) => Buffer;
/** An encoder whose output is a list of buffers; large binary payloads (frames) are the documents' own, not copies. */
export type PartsEncoder = (pair: DocPair) => Buffer[];

const NEWLINE = Buffer.from('\n');

/** Binary payloads from this size on are written by reference (see MsgpackEncoder). */
const BY_REFERENCE = 64 * 1024;

/**
 * suitcase-msgpack writes pages only: an event or datum becomes a one-row page,
 * and stream_resource / stream_datum, which it has no handler for, are dropped
 * (an empty buffer).
 */
export function msgpackEncoder(): Encoder {
  const parts = msgpackPartsEncoder(Infinity);
  return (pair) => {
    const out = parts(pair);
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  };
}

export function msgpackPartsEncoder(refThreshold = BY_REFERENCE): PartsEncoder {
  const enc = new MsgpackEncoder(64 * 1024, refThreshold);
  return (pair) => {
    if (pair.rawFormat === 'msgpack' && pair.raw !== undefined) return [pair.raw as Buffer];
    if (pair.name === 'stream_resource' || pair.name === 'stream_datum') return [];
    if (pair.name === 'event') pair = { name: 'event_page', doc: packEventPage([eventAsRow(pair.doc)]) };
    else if (pair.name === 'datum') pair = { name: 'datum_page', doc: packDatumPage([datumAsRow(pair.doc)]) };
    try {
      enc.record(pair.name, pair.doc);
    } catch (e) {
      enc.takeParts();
      throw new PackStreamError(e instanceof PackStreamError ? e.code : 'E_ENCODE', `cannot encode ${pair.name} ${String(pair.doc.uid ?? pair.doc.datum_id ?? '')} as msgpack: ${(e as Error).message}`, { cause: e });
    }
    return enc.takeParts();
  };
}

export function jsonlEncoder(opts: PyJsonOptions = {}): Encoder {
  return (pair) => {
    if (pair.rawFormat === 'jsonl' && typeof pair.raw === 'string') return Buffer.from(`${pair.raw}\n`, 'utf8');
    try {
      return Buffer.from(jsonlRecord(pair.name, pair.doc, opts), 'utf8');
    } catch (e) {
      throw new PackStreamError(e instanceof PackStreamError ? e.code : 'E_ENCODE', `cannot encode ${pair.name} ${String(pair.doc.uid ?? pair.doc.datum_id ?? '')} as JSON: ${(e as Error).message}`, { cause: e });
    }
  };
}

export function encoderFor(format: Format, opts: PyJsonOptions = {}): Encoder {
  return format === 'msgpack' ? msgpackEncoder() : jsonlEncoder(opts);
}

/** Like encoderFor, but msgpack frames are passed by reference (for vectored writes). */
export function partsEncoderFor(format: Format, opts: PyJsonOptions = {}): PartsEncoder {
  if (format === 'msgpack') return msgpackPartsEncoder();
  const json = jsonlEncoder(opts);
  // A line copied as it came is written as two parts, not joined to its newline (one copy less of a huge line).
  return (pair) => (pair.rawFormat === 'jsonl' && typeof pair.raw === 'string' ? [Buffer.from(pair.raw, 'utf8'), NEWLINE] : [json(pair)]);
}

/** Stage: documents in, encoded records out. */
export async function* encodeDocuments(docs: AsyncIterable<DocPair>, format: Format): AsyncGenerator<Buffer> {
  const encode = encoderFor(format);
  for await (const pair of docs) yield encode(pair);
}

/** Stage: coalesce small buffers into chunks of at least `minBytes` (cheap writes). */
export async function* coalesce(chunks: AsyncIterable<Buffer>, minBytes = 256 * 1024): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let n = 0;
  for await (const c of chunks) {
    parts.push(c);
    n += c.length;
    if (n >= minBytes) {
      yield Buffer.concat(parts, n);
      parts = [];
      n = 0;
    }
  }
  if (n > 0) yield Buffer.concat(parts, n);
}
