/**
 * Stream the records of a msgpack run file as suitcase-msgpack writes it:
 * `(name, doc)` arrays one after another, no framing. Reads 1 MiB at a time and
 * holds at most one record beyond that, so memory is bounded per document.
 */
import { open } from 'node:fs/promises';
import { Incomplete, MsgpackDecoder, measure } from '../codec/msgpack.js';
import { isPlainDoc, type Doc } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import type { DocPair, ReadOptions } from '../types.js';

const CHUNK = 1 << 20;

const SKIM_KEYS = new Map<string, ReadonlySet<string>>([
  ['event', new Set(['time', 'uid', 'descriptor'])],
  ['event_page', new Set(['time', 'uid', 'descriptor'])],
  ['datum', new Set(['resource'])],
  ['datum_page', new Set(['resource'])],
]);
const skimKeys = (name: string) => SKIM_KEYS.get(name) ?? null;

export async function* readMsgpackRecords(path: string, opts: ReadOptions = {}): AsyncGenerator<DocPair> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw new PackStreamError('E_NO_SOURCE', `cannot open ${path}: ${(e as Error).message}`, { subject: path, cause: e });
  }
  try {
    let buf = Buffer.alloc(0);
    let fileOffset = 0; // file offset of buf[0]
    let eof = false;
    let needed = 1;
    let index = 0;
    for (;;) {
      opts.signal?.throwIfAborted();
      if (!eof && buf.length < needed) {
        const want = Math.max(CHUNK, needed - buf.length);
        const chunk = Buffer.allocUnsafe(want);
        const { bytesRead } = await fh.read(chunk, 0, want, fileOffset + buf.length);
        if (bytesRead === 0) eof = true;
        else buf = buf.length === 0 ? chunk.subarray(0, bytesRead) : Buffer.concat([buf, chunk.subarray(0, bytesRead)]);
        if (!eof && buf.length < needed) continue;
      }
      let pos = 0;
      needed = 1;
      while (pos < buf.length) {
        let end: number;
        try {
          end = measure(buf, pos);
        } catch (e) {
          if (e instanceof Incomplete) {
            needed = e.needed - pos;
            break;
          }
          throw corrupt(path, fileOffset + pos, e);
        }
        const raw = buf.subarray(pos, end);
        if (opts.lazy) {
          const name = recordName(raw);
          if (name === undefined) {
            throw new PackStreamError('E_CORRUPT', `${path}: record ${index} at byte ${fileOffset + pos} is not a (name, document) pair`, { subject: path });
          }
          yield new LazyPair(name, raw, path, fileOffset + pos);
          index++;
          pos = end;
          continue;
        }
        let rec;
        try {
          rec = opts.skim ? new MsgpackDecoder(raw).skimRecord(skimKeys) : new MsgpackDecoder(raw).value();
        } catch (e) {
          throw corrupt(path, fileOffset + pos, e);
        }
        if (opts.skim) {
          if (rec === null) {
            throw new PackStreamError('E_CORRUPT', `${path}: record ${index} at byte ${fileOffset + pos} is not a (name, document) pair`, { subject: path });
          }
          const [name, doc] = rec as [string, Doc];
          yield SKIM_KEYS.has(name) ? { name, doc } : { name, doc, raw, rawFormat: 'msgpack' };
          index++;
          pos = end;
          continue;
        }
        if (!Array.isArray(rec) || rec.length !== 2 || typeof rec[0] !== 'string' || !isPlainDoc(rec[1])) {
          throw new PackStreamError('E_CORRUPT', `${path}: record ${index} at byte ${fileOffset + pos} is not a (name, document) pair`, { subject: path });
        }
        yield { name: rec[0], doc: rec[1], raw, rawFormat: 'msgpack' };
        index++;
        pos = end;
      }
      buf = buf.subarray(pos);
      fileOffset += pos;
      if (eof) {
        if (buf.length > 0) {
          throw new PackStreamError('E_TRUNCATED', `${path} is truncated: ${buf.length} bytes at byte ${fileOffset} do not form a whole record`, { subject: path });
        }
        return;
      }
      if (buf.length === 0) needed = 1;
    }
  } finally {
    await fh.close();
  }
}

function corrupt(path: string, offset: number, e: unknown): PackStreamError {
  return new PackStreamError('E_CORRUPT', `${path} is not a readable msgpack run file (byte ${offset}): ${(e as Error).message}`, { subject: path, cause: e });
}

/** The name of a `(name, doc)` record, read from its first bytes. */
function recordName(raw: Buffer): string | undefined {
  if (raw[0] !== 0x92) return undefined;
  const d = new MsgpackDecoder(raw, 1);
  const name = d.value();
  return typeof name === 'string' ? name : undefined;
}

/** A record whose document is decoded on first access (most pass through as bytes). */
class LazyPair implements DocPair {
  readonly rawFormat = 'msgpack' as const;
  private decoded: Doc | undefined;
  constructor(
    readonly name: string,
    readonly raw: Buffer,
    private readonly path: string,
    private readonly offset: number,
  ) {}
  get doc(): Doc {
    if (this.decoded === undefined) {
      let rec;
      try {
        rec = new MsgpackDecoder(this.raw).value();
      } catch (e) {
        throw corrupt(this.path, this.offset, e);
      }
      if (!Array.isArray(rec) || !isPlainDoc(rec[1])) {
        throw new PackStreamError('E_CORRUPT', `${this.path}: the record at byte ${this.offset} is not a (name, document) pair`, { subject: this.path });
      }
      this.decoded = rec[1];
    }
    return this.decoded;
  }
}
