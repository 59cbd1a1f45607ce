/**
 * Stream the records of a JSONL run file as suitcase-jsonl writes it: one
 * `[name, doc]` per line, Python's JSON dialect (NaN, Infinity, big ints).
 * A blank line is an error, as it is for databroker's reader.
 *
 * Lines are cut at newline bytes (a 0x0A never occurs inside a multi-byte
 * UTF-8 sequence), so a line's chunks are joined and decoded once, however
 * long it is: linear time, and memory a small multiple of the longest line.
 * A line must be valid UTF-8 (Python's reader fails on anything else) and at
 * most `maxRecordBytes` long (E_LIMIT, checked as the line grows).
 */
import { isUtf8 } from 'node:buffer';
import type { FileHandle } from 'node:fs/promises';
import { parsePyJson, parsePyJsonRecord } from '../codec/pyjson.js';
import { topLevelDoc, type Doc } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import { limits } from '../limits.js';
import type { DocPair, ReadOptions } from '../types.js';
import { openRunFileHandle, SKIM_KEYS } from './msgpack-records.js';

/** `whole`, when given and not null, is the file's bytes (readWholeRunFile): lines are cut from it. */
export async function* readJsonlRecords(path: string, opts: ReadOptions = {}, whole?: Promise<Buffer | null>): AsyncGenerator<DocPair> {
  const bytes = whole ? await whole : null;
  const opened = bytes ? null : await openRunFileHandle(path);
  const fh = opened?.fh;
  const maxLine = opts.maxRecordBytes ?? limits.maxRecordBytes;
  let parts: Buffer[] = []; // the current line's bytes so far
  let partBytes = 0;
  let lineNo = 0;
  const skim = opts.skim ? (opts.skimFields ?? SKIM_KEYS) : undefined;
  const parse = (bytes: Buffer): DocPair => {
    lineNo++;
    if (!isUtf8(bytes)) {
      throw new PackStreamError('E_CORRUPT', `${path}: line ${lineNo} is not valid UTF-8 (Python's reader cannot read it)`, { subject: path });
    }
    const line = bytes.toString('utf8');
    let raw = line;
    if (raw.endsWith('\r')) raw = raw.slice(0, -1);
    if (raw.trim() === '') {
      throw new PackStreamError('E_CORRUPT', `${path}: line ${lineNo} is blank (databroker cannot read such a file)`, { subject: path });
    }
    const keepRaw = raw === line;
    if (opts.lazy && !skim) {
      const name = recordName(raw);
      if (name !== undefined) return new LazyJsonPair(name, raw, keepRaw, path, lineNo);
    }
    const rec = decodeLine(raw, path, lineNo, skim);
    if (skim?.has(rec[0])) return { name: rec[0], doc: rec[1] };
    return keepRaw ? { name: rec[0], doc: rec[1], raw, rawFormat: 'jsonl' } : { name: rec[0], doc: rec[1] };
  };
  const grow = (piece: Buffer) => {
    if (partBytes + piece.length > maxLine) {
      throw new PackStreamError('E_LIMIT', `${path}: line ${lineNo + 1} is longer than the limit of ${maxLine} bytes (--max-record-size)`, { subject: path });
    }
    if (piece.length > 0) parts.push(piece);
    partBytes += piece.length;
  };
  const take = (): Buffer => {
    const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partBytes);
    parts = [];
    partBytes = 0;
    return bytes;
  };
  try {
    for await (const chunk of bytes ? [bytes] : chunksOf(fh!, opened!.size, opts.signal)) {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, start);
        if (nl < 0) break;
        grow(chunk.subarray(start, nl));
        yield parse(take());
        start = nl + 1;
        if ((lineNo & 1023) === 0) opts.signal?.throwIfAborted();
      }
      grow(chunk.subarray(start));
    }
  } finally {
    await fh?.close();
  }
  if (partBytes > 0) {
    // suitcase-jsonl ends every record with a newline; a last line without
    // one was cut off while being written, unless it still parses whole.
    try {
      yield parse(take());
    } catch (e) {
      throw new PackStreamError('E_TRUNCATED', `${path} is truncated: its last line is incomplete (${(e as Error).message})`, { subject: path, cause: e });
    }
  }
}

/**
 * The file in fresh chunks of 1 MiB (a line's parts may span chunks, so none is
 * reused), read up to the size at open: no read only to find the end.
 */
async function* chunksOf(fh: FileHandle, size: number, signal?: AbortSignal): AsyncGenerator<Buffer> {
  let pos = 0;
  while (pos < size) {
    signal?.throwIfAborted();
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - pos));
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) return; // shrank since opened
    pos += bytesRead;
    yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
  }
}

const CHUNK = 1 << 20;

/** One line as a `[name, document]` pair (only some fields of the documents `skim` names). */
function decodeLine(raw: string, path: string, lineNo: number, skim?: ReadonlyMap<string, ReadonlySet<string>>): [string, Doc] {
  let rec;
  try {
    // A line that is not a simple pair is parsed whole, for the exact syntax error.
    rec = (skim ? parsePyJsonRecord(raw, (name) => skim.get(name) ?? null) : null) ?? parsePyJson(raw);
  } catch (e) {
    if (e instanceof PackStreamError) throw new PackStreamError(e.code, `${path}: line ${lineNo}: ${e.message}`, { subject: path, cause: e });
    throw new PackStreamError('E_CORRUPT', `${path}: line ${lineNo} is not valid JSON: ${(e as Error).message}`, { subject: path, cause: e });
  }
  const notPair = () => new PackStreamError('E_CORRUPT', `${path}: line ${lineNo} is not a [name, document] pair`, { subject: path });
  if (!Array.isArray(rec) || rec.length !== 2 || typeof rec[0] !== 'string') throw notPair();
  const doc = topLevelDoc(rec[1]);
  if (doc === undefined) throw notPair();
  return [rec[0], doc];
}

/** The name of a `["name", ...` line without parsing the rest; undefined when it does not start so simply. */
function recordName(line: string): string | undefined {
  const m = /^\["([a-z_]+)", /.exec(line);
  return m?.[1];
}

/** A line whose document is parsed on first access (pass-through paths rarely need it). */
class LazyJsonPair implements DocPair {
  readonly raw: string | undefined;
  readonly rawFormat: 'jsonl' | undefined;
  private decoded: Doc | undefined;
  constructor(
    readonly name: string,
    private readonly text: string,
    keepRaw: boolean,
    private readonly path: string,
    private readonly lineNo: number,
  ) {
    this.raw = keepRaw ? text : undefined;
    this.rawFormat = keepRaw ? 'jsonl' : undefined;
  }
  get doc(): Doc {
    this.decoded ??= decodeLine(this.text, this.path, this.lineNo)[1];
    return this.decoded;
  }
}
