/**
 * Writing to a byte stream that may go away (stdout into `| head`, an ssh
 * that dropped): every write waits for the stream to take it (back-pressure),
 * and the first error or early close turns into one PackStreamError that
 * every later write gets too, so the exporter stops at once instead of
 * hanging on a drain that will never come.
 */
import type { Writable } from 'node:stream';
import { PackStreamError } from '../errors.js';

export class ByteOut {
  broken: PackStreamError | null = null;
  private waiters = new Set<(e: PackStreamError) => void>();
  bytes = 0;

  constructor(
    private readonly out: Writable,
    readonly location: string,
  ) {
    const onError = (e: NodeJS.ErrnoException) => this.breakWith(e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED' ? 'the reader went away' : e.message, e);
    out.on('error', onError);
    out.on('close', () => {
      if (!this.ended) this.breakWith('the reader went away');
    });
  }

  private ended = false;

  private breakWith(why: string, cause?: unknown): void {
    if (this.broken) return;
    this.broken = new PackStreamError('E_IO', `${this.location}: ${why}; the output is incomplete`, { subject: this.location, ...(cause ? { cause } : {}) });
    for (const w of this.waiters) w(this.broken);
    this.waiters.clear();
  }

  /** Break on purpose (the export was abandoned): pending and later writes fail. */
  fail(why: string): void {
    this.breakWith(why);
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.broken) throw this.broken;
    this.bytes += chunk.length;
    if (this.out.write(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        this.out.off('drain', done);
        this.waiters.delete(reject);
        resolve();
      };
      this.waiters.add((e) => {
        this.out.off('drain', done);
        reject(e);
      });
      this.out.on('drain', done);
    });
  }

  /** write, resolving only once the stream has passed `chunk` on (its callback), so the caller may reuse it. */
  async writeFlushed(chunk: Uint8Array): Promise<void> {
    if (this.broken) throw this.broken;
    this.bytes += chunk.length;
    await new Promise<void>((resolve, reject) => {
      const gone = (e: PackStreamError) => reject(e);
      this.waiters.add(gone);
      this.out.write(chunk, (e) => {
        this.waiters.delete(gone);
        if (e) reject(this.broken ?? e);
        else resolve();
      });
    });
  }

  /** Everything handed to the OS; `close` ends the stream too (a file, not stdout). */
  async end(close: boolean): Promise<void> {
    if (this.broken) throw this.broken;
    this.ended = true;
    await new Promise<void>((resolve, reject) => {
      const cb = (e?: Error | null) => (e ? reject(e) : resolve());
      if (close) this.out.end(cb);
      else this.out.write('', cb);
    });
  }
}
