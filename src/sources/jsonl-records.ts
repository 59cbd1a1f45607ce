/**
 * Stream the records of a JSONL run file as suitcase-jsonl writes it: one
 * `[name, doc]` per line, Python's JSON dialect (NaN, Infinity, big ints).
 * A blank line is an error, as it is for databroker's reader.
 */
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { parsePyJson } from '../codec/pyjson.js';
import { isPlainDoc } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import type { DocPair, ReadOptions } from '../types.js';

export async function* readJsonlRecords(path: string, opts: ReadOptions = {}): AsyncGenerator<DocPair> {
  try {
    await access(path);
  } catch (e) {
    throw new PackStreamError('E_NO_SOURCE', `cannot open ${path}: ${(e as Error).message}`, { subject: path, cause: e });
  }
  const stream = createReadStream(path, { highWaterMark: 1 << 20, ...(opts.signal ? { signal: opts.signal } : {}) });
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let lineNo = 0;
  const parse = (line: string): DocPair => {
    lineNo++;
    let raw = line;
    if (raw.endsWith('\r')) raw = raw.slice(0, -1);
    if (raw.trim() === '') {
      throw new PackStreamError('E_CORRUPT', `${path}: line ${lineNo} is blank (databroker cannot read such a file)`, { subject: path });
    }
    let rec;
    try {
      rec = parsePyJson(raw);
    } catch (e) {
      throw new PackStreamError('E_CORRUPT', `${path}: line ${lineNo} is not valid JSON: ${(e as Error).message}`, { subject: path, cause: e });
    }
    if (!Array.isArray(rec) || rec.length !== 2 || typeof rec[0] !== 'string' || !isPlainDoc(rec[1])) {
      throw new PackStreamError('E_CORRUPT', `${path}: line ${lineNo} is not a [name, document] pair`, { subject: path });
    }
    return raw === line ? { name: rec[0], doc: rec[1], raw, rawFormat: 'jsonl' } : { name: rec[0], doc: rec[1] };
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const text = pending + decoder.write(chunk);
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      yield parse(text.slice(start, nl));
      start = nl + 1;
    }
    pending = text.slice(start);
  }
  pending += decoder.end();
  if (pending.length > 0) {
    // suitcase-jsonl ends every record with a newline; a last line without
    // one was cut off while being written, unless it still parses whole.
    try {
      yield parse(pending);
    } catch (e) {
      throw new PackStreamError('E_TRUNCATED', `${path} is truncated: its last line is incomplete (${(e as Error).message})`, { subject: path, cause: e });
    }
  }
}
