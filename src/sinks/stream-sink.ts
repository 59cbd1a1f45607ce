/**
 * What the stream sinks (tar, document stream) share: one byte stream out
 * (stdout, a pipe, or a new file written as `FILE.partial`), a reader that
 * went away turned into one `broken` error (ByteOut), a run's document file
 * held in a Spool until the run is whole, and one queue so that whole entries
 * go out one after another. A subclass says only how a whole run (and, for a
 * tar, an external file or a small file) becomes bytes on the stream.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { PackStreamError } from '../errors.js';
import { TargetLock } from './lock.js';
import { ByteOut } from './byte-out.js';
import type { PackSink, RunFileWriter } from './sink.js';
import { DEFAULT_SPOOL_CAP, Spool } from './spool.js';

export interface StreamSinkOptions {
  /** Bytes of a run held in memory before it is spooled to a temporary file. */
  spoolCap?: number;
  /** Where spool files go (default: the OS temporary directory). */
  tmpDir?: string;
  /** The directory catalog.yml names as the pack's place (where the tar will be extracted); default: the working directory. */
  packPath?: string;
}

export interface StreamTargetOptions extends StreamSinkOptions {
  /** End the stream when finished (a file; not stdout). */
  closeStream?: boolean;
  onFinish?: () => Promise<void>;
  onAbort?: () => Promise<void>;
}

/** A stream written to a new file, via `file.partial`, renamed when whole. */
export function fileTarget(file: string, opts: StreamSinkOptions): { target: () => Promise<Writable>; location: string; opts: StreamTargetOptions } {
  const f = partialFile(file);
  return { target: f.open, location: f.file, opts: { ...opts, closeStream: true, onFinish: f.commit, onAbort: f.remove } };
}

export abstract class StreamSink implements PackSink {
  abstract readonly wholePack: boolean;
  abstract readonly packPath: string;
  protected out!: ByteOut;
  /** Whole entries are written one after another: each job chains on the last. */
  private queue: Promise<unknown> = Promise.resolve();

  /** `target` is a stream (stdout) or opens one when the sink opens (a file). */
  constructor(
    private readonly target: Writable | (() => Promise<Writable>),
    readonly location: string,
    protected readonly opts: StreamTargetOptions = {},
  ) {}

  get broken(): PackStreamError | null {
    return this.out?.broken ?? null;
  }

  async open(): Promise<void> {
    this.out = new ByteOut(typeof this.target === 'function' ? await this.target() : this.target, this.location);
    this.opened();
  }

  /** Called once the output exists (a tar starts its pump here). */
  protected opened(): void {}

  /** Run `job` after every job queued before it; fails at once if the reader went away. */
  protected exclusive<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.broken) throw this.broken;
      return job();
    });
    this.queue = run.catch(() => {});
    return run;
  }

  /** Put a whole run's document file, held in `spool`, on the stream (called inside `exclusive`). */
  protected abstract writeRun(name: string, spool: Spool): Promise<void>;

  async openRunFile(name: string): Promise<RunFileWriter> {
    if (this.broken) throw this.broken;
    const spool = new Spool(this.opts.spoolCap ?? DEFAULT_SPOOL_CAP, this.opts.tmpDir);
    return {
      write: async (parts) => {
        if (this.broken) throw this.broken;
        await spool.write(parts);
      },
      commit: async () => {
        try {
          await this.exclusive(() => this.writeRun(name, spool));
        } finally {
          await spool.dispose();
        }
      },
      abort: () => spool.dispose(),
    };
  }

  abstract addExternalFile(name: string, source: string): Promise<number>;
  abstract writeFile(name: string, data: string | Uint8Array): Promise<string>;

  /** What goes on the stream after the last entry (a tar's end-of-archive blocks). */
  protected async ending(): Promise<void> {}

  async finish(): Promise<void> {
    await this.queue;
    if (this.broken) throw this.broken;
    await this.ending();
    await this.out.end(Boolean(this.opts.closeStream));
    await this.opts.onFinish?.();
  }

  /** Stop the stream where it is: a reader sees a cut stream, not a whole one. */
  protected async stopped(_reason: Error): Promise<void> {}

  async abort(reason?: unknown): Promise<void> {
    this.out?.fail(reason instanceof Error ? `stopped: ${reason.message}` : 'stopped');
    await this.stopped(this.out?.broken ?? new Error('stopped')).catch(() => {});
    await this.opts.onAbort?.().catch(() => {});
  }
}

/**
 * A new file written as `FILE.partial` and renamed when whole, so a cut
 * stream never sits under the name a reader expects. `FILE.lock` beside it
 * keeps a second writer out; a `FILE.partial` found while holding the lock
 * was left by a process that died, and is replaced.
 */
export function partialFile(file: string): { file: string; open(): Promise<Writable>; commit(): Promise<void>; remove(): Promise<void> } {
  const abs = path.resolve(file);
  const tmp = `${abs}.partial`;
  let stream: Writable | null = null;
  let lock: TargetLock | null = null;
  return {
    file: abs,
    async open() {
      if (await exists(abs)) throw new PackStreamError('E_TARGET', `${abs} already exists`, { subject: abs });
      try {
        lock = await TargetLock.acquire(`${abs}.lock`, abs);
      } catch (e) {
        if (e instanceof PackStreamError) throw e;
        throw new PackStreamError('E_TARGET', `cannot write beside ${abs}: ${(e as Error).message}`, { subject: abs, cause: e });
      }
      try {
        if (await exists(abs)) throw new PackStreamError('E_TARGET', `${abs} already exists`, { subject: abs });
        await rm(tmp, { force: true });
        const s = createWriteStream(tmp, { flags: 'wx' });
        await new Promise<void>((resolve, reject) => {
          s.once('open', () => resolve());
          s.once('error', (e) => reject(new PackStreamError('E_TARGET', `cannot write ${tmp}: ${e.message}`, { subject: abs, cause: e })));
        });
        stream = s;
        return s;
      } catch (e) {
        await lock.release();
        throw e;
      }
    },
    async commit() {
      await rename(tmp, abs);
      await lock?.release();
    },
    async remove() {
      stream?.destroy();
      await rm(tmp, { force: true });
      await lock?.release();
    },
  };
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
