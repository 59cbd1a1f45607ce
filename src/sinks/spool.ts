/**
 * Bytes whose total must be known before they are sent (a tar entry's size
 * comes first in its header, a document stream sends a run only when whole):
 * held in memory up to `cap` bytes, then moved to a temporary file, so memory
 * stays bounded whatever the size of a run.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const DEFAULT_SPOOL_CAP = 32 * 1024 * 1024;
const BLOCK = 1024 * 1024;

export class Spool {
  private parts: Buffer[] = [];
  private dir: string | null = null;
  private fh: FileHandle | null = null;
  size = 0;

  constructor(
    private readonly cap = DEFAULT_SPOOL_CAP,
    private readonly tmpRoot = os.tmpdir(),
  ) {}

  /** Whether the bytes went to a temporary file. */
  get spilled(): boolean {
    return this.dir !== null;
  }

  async write(bytes: Buffer | readonly Buffer[]): Promise<void> {
    const list = Buffer.isBuffer(bytes) ? [bytes] : bytes;
    let n = 0;
    for (const b of list) n += b.length;
    this.size += n;
    if (!this.fh && this.size <= this.cap) {
      // Copied into blocks: a record's bytes are often a view of a reader's
      // 1 MiB chunk, which holding the view would keep alive.
      for (const b of list) this.hold(b);
      return;
    }
    if (!this.fh) {
      this.dir = await mkdtemp(path.join(this.tmpRoot, 'pack-stream-spool-'));
      this.fh = await open(path.join(this.dir, 'run'), 'w+');
    }
    // Records are gathered into 1 MiB blocks and written a block at a time, not a syscall per record.
    for (const b of list) this.hold(b);
    if (this.parts.length) {
      const full = this.parts;
      this.parts = [];
      await this.fh.writev(full);
    }
  }

  private block: Buffer | null = null;
  private used = 0;

  private hold(b: Buffer): void {
    if (b.length >= BLOCK / 4) {
      this.seal();
      this.parts.push(Buffer.from(b));
      return;
    }
    if (!this.block || this.used + b.length > this.block.length) {
      this.seal();
      this.block = Buffer.allocUnsafe(BLOCK);
    }
    b.copy(this.block, this.used);
    this.used += b.length;
  }

  private seal(): void {
    if (this.block && this.used) this.parts.push(this.block.subarray(0, this.used));
    this.block = null;
    this.used = 0;
  }

  private heldParts(): Buffer[] {
    this.seal();
    return this.parts;
  }

  /** The bytes, in order, in chunks of bounded size. */
  async *read(): AsyncGenerator<Buffer> {
    if (!this.fh) {
      yield* this.heldParts();
      return;
    }
    const rest = this.heldParts();
    this.parts = [];
    if (rest.length) await this.fh.writev(rest);
    yield* createReadStream('', { fd: this.fh.fd, start: 0, autoClose: false, highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>;
  }

  async dispose(): Promise<void> {
    this.parts = [];
    this.block = null;
    const fh = this.fh;
    this.fh = null;
    await fh?.close().catch(() => {});
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}
