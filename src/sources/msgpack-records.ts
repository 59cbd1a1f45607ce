/**
 * Stream the records of a msgpack run file as suitcase-msgpack writes it:
 * `(name, doc)` arrays one after another, no framing.
 *
 * Memory and time: a small file is read whole in one read sized to it (and,
 * through `readWholeRunFile`, once for every pass of canonical order); a larger
 * one in reads of 1 MiB, or of twice the record so far when one record is
 * larger (so a huge record costs a few copies, not one per chunk), never past
 * the size the file had when opened. A RecordScanner frames each record once,
 * resuming where it stopped when more bytes arrive. A record whose headers claim more bytes than
 * the file still holds is E_TRUNCATED, and one larger than `maxRecordBytes`
 * E_LIMIT, before any buffer for it is allocated. Buffers are never reused
 * for new data, because yielded records are views into them.
 */
import { MsgpackDecoder, RecordScanner } from '../codec/msgpack.js';
import { topLevelDoc, type Doc } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import { limits } from '../limits.js';
import type { DocPair, ReadOptions } from '../types.js';
import type { FileHandle } from 'node:fs/promises';
import { openRegularSized } from './regular-file.js';

const CHUNK = 1 << 20;
/** fs.read refuses (with a native assertion) lengths of 2 GiB and more. */
const MAX_READ = 1 << 30;

/** What a scan needs of the documents it skims (others are decoded whole). */
export const SKIM_KEYS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['event', new Set(['time', 'uid', 'descriptor'])],
  ['event_page', new Set(['time', 'uid', 'descriptor'])],
  ['datum', new Set(['resource'])],
  ['datum_page', new Set(['resource'])],
]);

/**
 * A run file's bytes, read in one read sized to the file, when it holds at most
 * `maxBytes` (null when larger: such files are streamed). Canonical order reads
 * a run several times; a small file read once serves every pass. Open errors
 * are worded as the readers word them.
 */
export async function readWholeRunFile(path: string, maxBytes = WHOLE_FILE): Promise<Buffer | null> {
  const { fh, size } = await openRunFileHandle(path);
  try {
    if (size > maxBytes) return null;
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await fh.read(buf, got, size - got, got);
      if (bytesRead === 0) break; // shrank since the stat: the readers report what is missing
      got += bytesRead;
    }
    return got === size ? buf : buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}

/** Files up to this size are read whole, once for all passes (see readWholeRunFile). */
export const WHOLE_FILE = 4 << 20;

/** A run file opened for reading (regular files only), and its size at open. */
export async function openRunFileHandle(path: string): Promise<{ fh: FileHandle; size: number }> {
  try {
    return await openRegularSized(path, 'run file');
  } catch (e) {
    if (e instanceof PackStreamError) throw e;
    throw new PackStreamError('E_NO_SOURCE', `cannot open ${path}: ${(e as Error).message}`, { subject: path, cause: e });
  }
}

/**
 * `whole`, when given and not null, is the file's bytes (readWholeRunFile):
 * records are framed from it and the file is not opened again.
 */
export async function* readMsgpackRecords(path: string, opts: ReadOptions = {}, whole?: Promise<Buffer | null>): AsyncGenerator<DocPair> {
  const bytes = whole ? await whole : null;
  const opened = bytes ? null : await openRunFileHandle(path);
  const fh = opened?.fh;
  const maxRecord = opts.maxRecordBytes ?? limits.maxRecordBytes;
  try {
    // Reads stop at the size at open: a file that grows meanwhile is read as it was.
    const size = bytes ? bytes.length : opened!.size;
    const scanner = new RecordScanner();
    let buf = bytes ?? Buffer.allocUnsafe(0);
    let start = 0; // first unconsumed byte in buf
    let end = buf.length; // end of the data read into buf
    let fileOffset = 0; // file offset of buf[start]
    let index = 0;
    for (;;) {
      opts.signal?.throwIfAborted();
      // Every whole record in the buffer.
      while (start < end) {
        let len: number;
        try {
          len = scanner.scan(buf, start, end);
        } catch (e) {
          throw corrupt(path, fileOffset, e);
        }
        if (len < 0) break;
        if (len > maxRecord) {
          // whole in memory (a small file read at once), yet still beyond the limit
          throw new PackStreamError('E_LIMIT', `${path}: the record at byte ${fileOffset} is at least ${len} bytes, more than the limit of ${maxRecord} (--max-record-size)`, { subject: path });
        }
        const raw = buf.subarray(start, start + len);
        yield recordPair(raw, path, fileOffset, index, opts);
        index++;
        start += len;
        fileOffset += len;
      }
      // More bytes: at least what the record in progress is known to need.
      const have = end - start;
      const unread = size - fileOffset - have;
      const need = have === 0 ? 1 : scanner.need;
      if (have > 0) {
        if (fileOffset + need > size) {
          throw new PackStreamError('E_TRUNCATED', `${path} is truncated: the record at byte ${fileOffset} needs at least ${need} bytes, the file has ${size - fileOffset} left`, { subject: path });
        }
        if (need > maxRecord) {
          throw new PackStreamError('E_LIMIT', `${path}: the record at byte ${fileOffset} is at least ${need} bytes, more than the limit of ${maxRecord} (--max-record-size)`, { subject: path });
        }
      }
      if (unread <= 0 || !fh) {
        if (have > 0) {
          throw new PackStreamError('E_TRUNCATED', `${path} is truncated: ${have} bytes at byte ${fileOffset} do not form a whole record`, { subject: path });
        }
        return;
      }
      // The next read: a chunk, or the record so far again (doubling: a huge record
      // costs a few copies, not one per chunk), at least what it needs, never past
      // the size at open, and never a buffer beyond the record limit.
      let want = Math.min(unread, Math.max(CHUNK, have), maxRecord + 1 - have);
      want = Math.max(want, Math.min(unread, need - have));
      if (buf.length - end < want) {
        const next = Buffer.allocUnsafe(have + want);
        buf.copy(next, 0, start, end);
        buf = next;
        start = 0;
        end = have;
      }
      const { bytesRead } = await fh.read(buf, end, Math.min(buf.length - end, unread, MAX_READ), fileOffset + have);
      if (bytesRead === 0) {
        if (have > 0) {
          throw new PackStreamError('E_TRUNCATED', `${path} is truncated: ${have} bytes at byte ${fileOffset} do not form a whole record`, { subject: path });
        }
        return;
      }
      end += bytesRead;
    }
  } finally {
    await fh?.close();
  }
}

function recordPair(raw: Buffer, path: string, offset: number, index: number, opts: ReadOptions): DocPair {
  const notPair = () => new PackStreamError('E_CORRUPT', `${path}: record ${index} at byte ${offset} is not a (name, document) pair`, { subject: path });
  if (opts.lazy) {
    const name = recordName(raw);
    if (name === undefined) throw notPair();
    return new LazyPair(name, raw, path, offset);
  }
  const skim = opts.skim ? (opts.skimFields ?? SKIM_KEYS) : undefined;
  let rec;
  try {
    rec = skim ? new MsgpackDecoder(raw).skimRecord((name) => skim.get(name) ?? null) : new MsgpackDecoder(raw).value();
  } catch (e) {
    throw corrupt(path, offset, e);
  }
  if (skim) {
    if (rec === null) throw notPair();
    const [name, doc] = rec as [string, Doc];
    return skim.has(name) ? { name, doc } : { name, doc, raw, rawFormat: 'msgpack' };
  }
  if (!Array.isArray(rec) || rec.length !== 2 || typeof rec[0] !== 'string') throw notPair();
  const doc = topLevelDoc(rec[1]);
  if (doc === undefined) throw notPair();
  return { name: rec[0], doc, raw, rawFormat: 'msgpack' };
}

function corrupt(path: string, offset: number, e: unknown): PackStreamError {
  if (e instanceof PackStreamError) return new PackStreamError(e.code, `${path}: the record at byte ${offset}: ${e.message}`, { subject: path, cause: e });
  return new PackStreamError('E_CORRUPT', `${path} is not a readable msgpack run file (byte ${offset}): ${(e as Error).message}`, { subject: path, cause: e });
}

/** The name of a `(name, doc)` record, read from its first bytes. */
function recordName(raw: Buffer): string | undefined {
  if (raw[0] !== 0x92) return undefined;
  let name;
  try {
    name = new MsgpackDecoder(raw, 1).value();
  } catch {
    return undefined; // e.g. invalid UTF-8: not a name, so the record is corrupt (found by fuzzing)
  }
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
      const doc = Array.isArray(rec) ? topLevelDoc(rec[1]) : undefined;
      if (doc === undefined) {
        throw new PackStreamError('E_CORRUPT', `${this.path}: the record at byte ${this.offset} is not a (name, document) pair`, { subject: this.path });
      }
      this.decoded = doc;
    }
    return this.decoded;
  }
}

/**
 * Whole msgpack records from a stream of chunks (a network body), framed by a
 * RecordScanner: linear in the record size, checked as the file reader checks,
 * and capped at `maxRecordBytes` (E_LIMIT) before the buffer grows past it.
 * Yielded records are views into buffers that are never written again.
 */
export async function* msgpackRecordsOf(chunks: AsyncIterable<Buffer>, where: string, maxRecord = limits.maxRecordBytes): AsyncGenerator<Buffer> {
  const scanner = new RecordScanner();
  let buf = Buffer.allocUnsafe(0);
  let start = 0;
  let end = 0;
  let offset = 0; // stream offset of buf[start]
  for await (const chunk of chunks) {
    if (end + chunk.length > buf.length) {
      const have = end - start;
      const next = Buffer.allocUnsafe(Math.max(CHUNK, 2 * have, have + chunk.length));
      buf.copy(next, 0, start, end);
      buf = next;
      start = 0;
      end = have;
    }
    chunk.copy(buf, end);
    end += chunk.length;
    for (;;) {
      let len: number;
      try {
        len = scanner.scan(buf, start, end);
      } catch (e) {
        throw corrupt(where, offset, e);
      }
      if (len < 0) {
        if (scanner.need > maxRecord || end - start > maxRecord) {
          throw new PackStreamError('E_LIMIT', `${where}: the record at byte ${offset} is at least ${scanner.need} bytes, more than the limit of ${maxRecord} (--max-record-size)`, { subject: where });
        }
        break;
      }
      yield buf.subarray(start, start + len);
      start += len;
      offset += len;
      if (start === end) break;
    }
  }
  if (end > start) throw new PackStreamError('E_TRUNCATED', `${where} ends inside a record (${end - start} bytes at byte ${offset})`, { subject: where });
}
