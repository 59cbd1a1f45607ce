/**
 * A plain document stream instead of a pack (`--documents-only`): each run's
 * document file, whole, one run after another — JSONL `[name, doc]` lines as
 * suitcase-jsonl writes them, or msgpack records back to back. No manifests,
 * no external files, no catalog.yml. A run is held (Spool) until it is whole,
 * so a run that fails half-way puts nothing on the stream.
 */
import type { Writable } from 'node:stream';
import { PackStreamError } from '../errors.js';
import { ByteOut } from './byte-out.js';
import type { PackSink, RunFileWriter } from './sink.js';
import { DEFAULT_SPOOL_CAP, Spool } from './spool.js';
import { partialFile, type StreamSinkOptions } from './tar-sink.js';

export class DocumentStreamSink implements PackSink {
  readonly wholePack = false;
  readonly packPath = '';
  private out: ByteOut | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly target: Writable | (() => Promise<Writable>),
    readonly location: string,
    private readonly opts: StreamSinkOptions & { closeStream?: boolean; onFinish?: () => Promise<void>; onAbort?: () => Promise<void> } = {},
  ) {}

  /** A stream written to a new `file` (renamed from `file.partial` when whole). */
  static toFile(file: string, opts: StreamSinkOptions = {}): DocumentStreamSink {
    const f = partialFile(file);
    return new DocumentStreamSink(f.open, f.file, { ...opts, closeStream: true, onFinish: f.commit, onAbort: f.remove });
  }

  get broken(): PackStreamError | null {
    return this.out?.broken ?? null;
  }

  async open(): Promise<void> {
    this.out = new ByteOut(typeof this.target === 'function' ? await this.target() : this.target, this.location);
  }

  async openRunFile(): Promise<RunFileWriter> {
    if (this.broken) throw this.broken;
    const spool = new Spool(this.opts.spoolCap ?? DEFAULT_SPOOL_CAP, this.opts.tmpDir);
    return {
      write: async (parts) => {
        if (this.broken) throw this.broken;
        await spool.write(parts);
      },
      commit: async () => {
        const run = this.queue.then(async () => {
          for await (const c of spool.read()) await this.out!.write(c);
        });
        this.queue = run.catch(() => {});
        try {
          await run;
        } finally {
          await spool.dispose();
        }
      },
      abort: () => spool.dispose(),
    };
  }

  async addExternalFile(name: string): Promise<number> {
    throw new PackStreamError('E_USAGE', `a document stream carries no files (asked to add ${name})`);
  }

  /** Manifests, failures.tsv and catalog.yml have no place in a document stream. */
  async writeFile(): Promise<string> {
    return '';
  }

  async finish(): Promise<void> {
    await this.queue;
    await this.out!.end(Boolean(this.opts.closeStream));
    await this.opts.onFinish?.();
  }

  async abort(reason?: unknown): Promise<void> {
    this.out?.fail(reason instanceof Error ? `stopped: ${reason.message}` : 'stopped');
    await this.opts.onAbort?.().catch(() => {});
  }
}
