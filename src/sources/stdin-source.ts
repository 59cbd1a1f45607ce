/**
 * A SOURCE on stdin (`-`): a tar pack (from `pack SRC -`) or a plain document
 * stream (from `pack SRC - --documents-only`: JSONL lines or msgpack records,
 * runs one after another). Told apart by their first bytes (a tar header has
 * `ustar` at byte 257; JSONL starts with `[`; a msgpack record with a
 * two-element array, 0x92).
 *
 * Either is landed in a temporary directory first, because the readers read a
 * run file more than once (canonical order) and tar needs the whole stream to
 * know it is whole: a tar is extracted with every hostile-entry check
 * (tar-extract.ts); a document stream is split into one run file per start
 * document. A run that the stream cuts off (a record cut in half, or the last
 * run ending without its stop document) is lost alone and reported as a
 * broken run; the runs before it are whole.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Doc } from '../codec/values.js';
import { PackStreamError, describeError } from '../errors.js';
import { AtomicFileWriter } from '../sinks/pack-directory.js';
import { partsEncoderFor } from '../transforms/encode.js';
import type { Catalog, Format, RunRef } from '../types.js';
import { BrokenRunRef, FileCatalog, readRecords } from './file-catalog.js';
import { extractTar } from './tar-extract.js';

export type StreamKind = 'tar' | 'jsonl' | 'msgpack';

/** Where a landed source came from: a stream on stdin, or a pack over HTTP. */
export type LandedKind = StreamKind | 'http';

export interface LandedStream {
  kind: LandedKind;
  /** For messages: `stdin`, or the URL (without credentials). */
  where?: string;
  /** A pack directory (tar) or a directory of run files (document stream). */
  dir: string;
  /** Runs the stream cut off. */
  lost: BrokenRunRef[];
  /** Remove the temporary directory. */
  cleanup(): Promise<void>;
}

/** Reads until `n` bytes (or the end); returns them and an iterable of everything, those bytes first. */
export async function peekStream(input: AsyncIterable<Buffer>, n: number): Promise<{ head: Buffer; all: AsyncIterable<Buffer> }> {
  const it = input[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let have = 0;
  let done = false;
  while (have < n) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    const c = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    parts.push(c);
    have += c.length;
  }
  const head = Buffer.concat(parts);
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value as Buffer;
    }
  }
  return { head, all: all() };
}

export function streamKind(head: Buffer): StreamKind | null {
  if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
  const first = head.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
  if (first === 0x5b) return 'jsonl';
  if (first === 0x92) return 'msgpack';
  return null;
}

function validRunFileName(uid: string): boolean {
  return uid !== '' && uid !== '.' && uid !== '..' && !/[/\\\0]/.test(uid) && Buffer.byteLength(uid) <= 200;
}

/**
 * Split a document stream stored in `file` into `dir/<uid>.<format>`, one
 * file per run, each record's bytes as they came.
 */
export async function splitDocumentStream(file: string, format: Format, dir: string, where = 'the stream'): Promise<{ runs: number; lost: BrokenRunRef[] }> {
  const encode = partsEncoderFor(format);
  const lost: BrokenRunRef[] = [];
  let runs = 0;
  let current: { uid: string; writer: AtomicFileWriter | null; stopped: boolean } | null = null;
  const loseCurrent = async (e: PackStreamError) => {
    if (!current) return;
    await current.writer?.abort();
    lost.push(new BrokenRunRef(current.uid, where, e));
    current = null;
  };
  const closeCurrent = async () => {
    if (!current) return;
    if (current.writer) {
      await current.writer.commit();
      runs++;
    }
    current = null;
  };
  const seen = new Set<string>();
  try {
    for await (const pair of readRecords(file, format)) {
      if (pair.name === 'start') {
        await closeCurrent();
        const uid = String((pair.doc as Doc).uid ?? '');
        if (!validRunFileName(uid)) {
          lost.push(new BrokenRunRef(uid || '(no uid)', where, new PackStreamError('E_UNSAFE_PATH', `a run in ${where} has uid ${JSON.stringify(uid)}, which cannot name a file`, { subject: uid })));
          current = { uid, writer: null, stopped: false };
          continue;
        }
        if (seen.has(uid)) {
          current = { uid, writer: null, stopped: false };
          lost.push(new BrokenRunRef(uid, where, new PackStreamError('E_DUPLICATE', `run ${uid} appears twice in ${where}; the second copy is skipped`, { subject: uid })));
          continue;
        }
        seen.add(uid);
        const writer = new AtomicFileWriter(path.join(dir, `${uid}.${format}`));
        await writer.open();
        current = { uid, writer, stopped: false };
      } else if (!current) {
        throw new PackStreamError('E_BAD_RUN', `${where} does not begin with a start document (it begins with '${pair.name}')`);
      }
      if (!current.writer) continue; // the rest of a skipped run
      await current.writer.write(encode(pair));
      if (pair.name === 'stop') current.stopped = true;
    }
  } catch (e) {
    const pe = e instanceof PackStreamError ? e : new PackStreamError('E_CORRUPT', `${where}: ${describeError(e)}`, { cause: e });
    if (!current) throw pe;
    const uid: string = (current as { uid: string }).uid;
    await loseCurrent(new PackStreamError(pe.code, `${where} was cut inside run ${uid}; that run is lost (${pe.message})`, { subject: uid, cause: pe }));
    return { runs, lost };
  }
  const last = current as { uid: string; writer: AtomicFileWriter | null; stopped: boolean } | null;
  if (last?.writer && !last.stopped) {
    await loseCurrent(new PackStreamError('E_TRUNCATED', `${where} ended inside run ${last.uid} (no stop document); that run is lost`, { subject: last.uid }));
  } else {
    await closeCurrent();
  }
  return { runs, lost };
}

/** Land a stream (stdin) in a new temporary directory. */
export async function landStream(input: Readable | AsyncIterable<Buffer>, opts: { tmpDir?: string; signal?: AbortSignal; where?: string } = {}): Promise<LandedStream> {
  const where = opts.where ?? 'stdin';
  const { head, all } = await peekStream(input as AsyncIterable<Buffer>, 512);
  if (head.length === 0) throw new PackStreamError('E_NO_SOURCE', `${where} is empty: expected a tar pack or a document stream`, { subject: where });
  const kind = streamKind(head);
  if (!kind) throw new PackStreamError('E_BAD_ARCHIVE', `${where} is neither a tar pack nor a JSONL or msgpack document stream`, { subject: where });
  const tmp = await mkdtemp(path.join(opts.tmpDir ?? os.tmpdir(), 'pack-stream-stdin-'));
  const cleanup = () => rm(tmp, { recursive: true, force: true });
  try {
    if (kind === 'tar') {
      const dir = path.join(tmp, 'pack');
      await extractTar(all, dir, opts.signal ? { signal: opts.signal } : {});
      return { kind, dir, lost: [], cleanup };
    }
    const file = path.join(tmp, `stream.${kind}`);
    await pipeline(all, createWriteStream(file), opts.signal ? { signal: opts.signal } : {});
    const dir = path.join(tmp, 'runs');
    const { lost } = await splitDocumentStream(file, kind, dir, where);
    await rm(file, { force: true });
    return { kind, dir, lost, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** A catalog over what was landed, which also lists the lost runs (as failures) and removes the directory on close. */
export class LandedCatalog implements Catalog {
  constructor(
    private readonly inner: Catalog,
    private readonly landed: LandedStream,
  ) {}
  get description(): string {
    const k = this.landed.kind;
    return `${this.landed.where ?? 'stdin'} (${k === 'tar' ? 'tar pack' : k === 'http' ? 'pack over HTTP' : `${k} document stream`})`;
  }
  get rootMap(): Record<string, string> {
    return this.inner.rootMap;
  }
  get queriesOnServer(): boolean {
    return false;
  }
  async *runs(opts: { query?: Doc; signal?: AbortSignal } = {}): AsyncIterable<RunRef> {
    yield* this.inner.runs(opts);
    yield* this.landed.lost;
  }
  lookup(key: string, opts?: { query?: Doc }): Promise<RunRef> {
    return this.inner.lookup(key, opts);
  }
  async close(): Promise<void> {
    await this.inner.close?.();
    await this.landed.cleanup();
  }
}

export function documentStreamCatalog(dir: string, format: Format): FileCatalog {
  const escaped = dir.replace(/[*?[\]{}]/g, '[$&]');
  return new FileCatalog({ patterns: [`${escaped}/*.${format}`], description: 'stdin' });
}

/** A tar pack on a stream, landed whole (catalog.yml present) in a temporary directory; anything else is refused. */
export async function landTarPack(input: Readable | AsyncIterable<Buffer>, opts: { tmpDir?: string; signal?: AbortSignal; where?: string } = {}): Promise<LandedStream> {
  const landed = await landStream(input, opts);
  if (landed.kind !== 'tar') {
    await landed.cleanup();
    throw new PackStreamError('E_USAGE', `${opts.where ?? 'stdin'} holds a ${landed.kind} document stream; this command needs a tar pack (pack-stream pack SRC -)`);
  }
  if (!existsSync(path.join(landed.dir, 'catalog.yml'))) {
    await landed.cleanup();
    throw new PackStreamError('E_BAD_ARCHIVE', `the archive on ${opts.where ?? 'stdin'} holds no catalog.yml, so it is not a whole pack`);
  }
  return landed;
}
