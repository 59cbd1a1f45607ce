/**
 * The pack as one POSIX tar stream (ustar headers, pax records where a name
 * or size needs them; written by tar-stream), for stdout, a pipe to ssh, or a
 * file. `tar -x` of it gives the directory export's files byte for byte.
 *
 * Entries go out one at a time, in the order the exporter finishes them: a
 * run's document file when the run is whole (held in a Spool meanwhile,
 * because tar needs its size up front), external files as they are copied,
 * then manifests, failures.tsv and catalog.yml last. A run that fails leaves
 * nothing of its document file. An external file streams from disk with the
 * size taken when it is opened; if it changes size while being read, its
 * entry is completed (padded with zeros, so the archive stays readable) and
 * its run fails, naming the file.
 *
 * If the reader goes away, every later call fails with one E_IO error
 * (`broken`), which the exporter turns into a stop.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import tar from 'tar-stream';
import { PackStreamError } from '../errors.js';
import { safeEntryParts } from '../sources/tar-extract.js';
import type { Spool } from './spool.js';
import { StreamSink, fileTarget, type StreamSinkOptions, type StreamTargetOptions } from './stream-sink.js';

export { partialFile, type StreamSinkOptions } from './stream-sink.js';

/** ustar's size field holds up to 8 GiB - 1 in octal; beyond that the size goes in a pax record. */
const USTAR_MAX_SIZE = 8 * 1024 ** 3 - 1;
const READ_CHUNK = 1024 * 1024;

type Header = Partial<tar.Header> & { name: string; pax?: Record<string, string> };
type EntrySink = ReturnType<tar.Pack['entry']>;

export class TarSink extends StreamSink {
  readonly wholePack = true;
  readonly packPath: string;
  private readonly pack = tar.pack();
  private pumping: Promise<void> | null = null;
  private readonly mtime = new Date();
  private readonly pool = new BlockPool(READ_CHUNK, 4);

  constructor(target: ConstructorParameters<typeof StreamSink>[0], location: string, opts: StreamTargetOptions = {}) {
    super(target, location, opts);
    this.packPath = path.resolve(opts.packPath ?? '.');
  }

  /** A tar written to `file` (via `file.partial`, renamed when the archive is whole). */
  static toFile(file: string, opts: StreamSinkOptions = {}): TarSink {
    const f = fileTarget(file, opts);
    return new TarSink(f.target, f.location, f.opts);
  }

  protected override opened(): void {
    this.pumping = this.pump();
    // Failures surface through `broken` and the next call; this keeps an early one from being unhandled.
    this.pumping.catch(() => {});
  }

  /** Move tar bytes to the output, at the pace the output takes them. */
  private async pump(): Promise<void> {
    try {
      for await (const chunk of this.pack as AsyncIterable<Uint8Array>) {
        if (this.pool.owns(chunk)) {
          // A pooled block is given back only once the output no longer holds it.
          await this.out.writeFlushed(chunk);
          this.pool.giveBack(chunk);
        } else {
          await this.out.write(chunk);
        }
      }
    } catch (e) {
      this.pack.destroy(this.out.broken ?? (e as Error));
      throw this.out.broken ?? e;
    }
  }

  private header(name: string, size: number): Header {
    const h: Header = { name, size, mode: 0o644, mtime: this.mtime, type: 'file' };
    if (size > USTAR_MAX_SIZE) h.pax = { size: String(size) };
    return h;
  }

  /** Write one entry whose body is `body` (exactly `size` bytes, else the entry is padded or refused). */
  private async entry(name: string, size: number, body: AsyncIterable<Buffer> | Buffer): Promise<number> {
    // Names are built from input (uids, resource paths): a last guard, the rule every reader of the archive applies.
    try {
      safeEntryParts(name);
    } catch {
      throw new PackStreamError('E_UNSAFE_PATH', `pack file name ${JSON.stringify(name)} would leave the pack`, { subject: name });
    }
    let finished!: Promise<void>;
    const entry = (() => {
      let w!: EntrySink;
      finished = new Promise<void>((resolve, reject) => {
        w = this.pack.entry(this.header(name, size), (err) => (err ? reject(this.broken ?? err) : resolve()));
      });
      finished.catch(() => {});
      return w;
    })();
    let written = 0;
    const put = async (c: Buffer) => {
      if (this.broken) throw this.broken;
      if (!entry.write(c)) {
        await new Promise<void>((resolve, reject) => {
          const ok = () => {
            entry.off('close', gone);
            resolve();
          };
          const gone = () => {
            entry.off('drain', ok);
            reject(this.broken ?? new PackStreamError('E_IO', `${this.location}: the tar stream was closed`));
          };
          entry.once('drain', ok);
          entry.once('close', gone);
        });
      }
    };
    if (Buffer.isBuffer(body)) {
      await put(body);
      written = body.length;
    } else {
      for await (const c of body) {
        const room = size - written;
        if (room <= 0) break;
        const part = c.length > room ? c.subarray(0, room) : c;
        await put(part);
        written += part.length;
      }
    }
    // A short body (the file shrank) is padded so the archive stays whole; the caller fails the run.
    while (written < size) {
      const n = Math.min(READ_CHUNK, size - written);
      await put(Buffer.alloc(n));
      written += n;
    }
    (entry as unknown as { end(): void }).end();
    await finished;
    return written;
  }

  protected async writeRun(name: string, spool: Spool): Promise<void> {
    await this.entry(name, spool.size, spool.read());
  }

  addExternalFile(name: string, source: string): Promise<number> {
    return this.exclusive(async () => {
      const fh = await open(source, 'r');
      try {
        const st = await fh.stat();
        if (!st.isFile()) throw new PackStreamError('E_NOT_REGULAR', `external file ${source} is not a regular file`, { subject: source });
        const size = st.size;
        let seen = 0;
        const pool = this.pool;
        // Read into the sink's few reused blocks (released once written out), not a fresh 1 MiB
        // buffer per read: the churn of a new block per MiB is what made peak RSS creep with file size.
        const body = (async function* () {
          for (;;) {
            const block = pool.take();
            const { bytesRead } = await fh.read(block, 0, block.length, seen);
            if (bytesRead === 0) {
              pool.give(block);
              return;
            }
            seen += bytesRead;
            yield block.subarray(0, bytesRead);
            if (seen > size) return; // it grew: the entry is complete, the run fails below
          }
        })();
        await this.entry(name, size, body);
        const now = (await fh.stat()).size;
        if (seen !== size || now !== size) {
          throw new PackStreamError('E_IO', `external file ${source} changed size while being read (${size} bytes at open, ${now} now); its run is not packed`, { subject: source });
        }
        return size;
      } finally {
        await fh.close();
      }
    });
  }

  writeFile(name: string, data: string | Uint8Array): Promise<string> {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return this.exclusive(async () => {
      await this.entry(name, buf.length, buf);
      return `${this.location}:${name}`;
    });
  }

  protected override async ending(): Promise<void> {
    this.pack.finalize();
    await this.pumping;
  }

  protected override async stopped(reason: Error): Promise<void> {
    // No end-of-archive blocks and no catalog.yml: a reader sees a cut archive, not a pack.
    this.pack.destroy(reason);
    await this.pumping?.catch(() => {});
  }
}

/**
 * A few reusable read blocks, each with an ArrayBuffer of its own so that a
 * chunk cut from one is recognised when the tar pump has written it. When all
 * are out, a fresh block is lent instead of waiting (never a deadlock; the
 * sink's back-pressure keeps that rare).
 */
class BlockPool {
  private readonly free: Buffer[] = [];
  private readonly mine = new Map<ArrayBufferLike, Buffer>();
  constructor(
    private readonly size: number,
    private readonly max: number,
  ) {}

  take(): Buffer {
    const b = this.free.pop();
    if (b) return b;
    if (this.mine.size >= this.max) return Buffer.allocUnsafe(this.size);
    const fresh = Buffer.allocUnsafeSlow(this.size);
    this.mine.set(fresh.buffer, fresh);
    return fresh;
  }

  owns(chunk: Uint8Array): boolean {
    return this.mine.has(chunk.buffer);
  }

  /** A block not handed on (end of file). */
  give(block: Buffer): void {
    if (this.mine.has(block.buffer) && !this.free.includes(block)) this.free.push(block);
  }

  /** A chunk of a block, written out: the block is free again. */
  giveBack(chunk: Uint8Array): void {
    const b = this.mine.get(chunk.buffer);
    if (b && !this.free.includes(b)) this.free.push(b);
  }
}
