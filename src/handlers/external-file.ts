/**
 * External files (the detector data resources point to) opened as hostile
 * input. Only regular files are read or copied, after links are resolved: a
 * FIFO blocks the open and every read, a device such as /dev/zero never ends
 * (and /dev/null is empty, so a "copy" would silently lose the data), and a
 * directory has no data. Each fails its run with E_NOT_REGULAR naming the file.
 *
 * The path is checked with stat() before it is opened (so a device is never
 * opened), opened with O_NONBLOCK (so a FIFO swapped in after the check cannot
 * block the open) and checked again on the open descriptor; reads stop at the
 * size the file had when it was opened. Code that must hand a path to another
 * library (libuv's copyFile, h5wasm) gives it `/proc/self/fd/N` on Linux, which
 * names the very file that was checked.
 */
import { constants, existsSync, type Stats } from 'node:fs';
import { lstat, open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { PackStreamError } from '../errors.js';

const O_NONBLOCK = (constants as { O_NONBLOCK?: number }).O_NONBLOCK ?? 0;
const PROC_FD = process.platform === 'linux' && existsSync('/proc/self/fd');
/** Largest single read (Node refuses reads of 2 GiB or more). */
const READ_CHUNK = 64 * 1024 * 1024;

function kindOf(s: Stats): string {
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a FIFO';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isSocket()) return 'a socket';
  return 'a special file';
}

function neededBy(context: string | undefined): string {
  return context ? ` (needed by ${context})` : '';
}

/** E_NOT_REGULAR for `file`, naming what it is and, for a link, where it leads. */
async function notRegular(file: string, s: Stats, context?: string): Promise<PackStreamError> {
  let via = '';
  try {
    if ((await lstat(file)).isSymbolicLink()) via = ` -> ${await realpath(file)}`;
  } catch {
    // the link changed under us: the message names the file alone
  }
  return new PackStreamError('E_NOT_REGULAR', `external file ${file}${via} is ${kindOf(s)}, not a regular file${neededBy(context)}`, { subject: file });
}

/** A PackStreamError for a file that could not be opened or read (ENOENT: E_MISSING_FILE). */
export function fileError(file: string, e: unknown, context?: string): PackStreamError {
  if (e instanceof PackStreamError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new PackStreamError('E_MISSING_FILE', `external file ${file} is missing${neededBy(context)}`, { subject: file, cause: e });
  const reason = e instanceof Error ? e.message : String(e);
  return new PackStreamError(code ? 'E_IO' : 'E_HANDLER', `cannot read ${file}: ${reason}${neededBy(context)}`, { subject: file, cause: e });
}

/**
 * Check that `file` is (or links to) a regular file, without opening it; its
 * size is returned. `context` (e.g. `datum abc/0`) is added to the message.
 */
export async function checkRegularFile(file: string, context?: string): Promise<number> {
  let s: Stats;
  try {
    s = await stat(file);
  } catch (e) {
    throw fileError(file, e, context);
  }
  if (!s.isFile()) throw await notRegular(file, s, context);
  return s.size;
}

/** One external file, open for reading and known to be regular. */
export class ExternalFile {
  private constructor(
    readonly file: string,
    readonly fh: FileHandle,
    /** The size when opened; reads never go past it. */
    readonly size: number,
  ) {}

  /** Open `file` if it is a regular file (see the module comment). */
  static async open(file: string, context?: string): Promise<ExternalFile> {
    await checkRegularFile(file, context);
    let fh: FileHandle;
    try {
      fh = await open(file, constants.O_RDONLY | O_NONBLOCK);
    } catch (e) {
      throw fileError(file, e, context);
    }
    try {
      const s = await fh.stat();
      if (!s.isFile()) throw await notRegular(file, s, context);
      return new ExternalFile(file, fh, s.size);
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw fileError(file, e, context);
    }
  }

  /** A path that opens this very file (not whatever the name points to by then), for libraries that take paths. */
  get reopenPath(): string {
    return PROC_FD ? `/proc/self/fd/${this.fh.fd}` : this.file;
  }

  /** Up to `length` bytes from `position`, never past the size at open (short when the file shrank). */
  async read(position: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    const n = Math.max(0, Math.min(length, this.size - position));
    const buf = Buffer.allocUnsafe(n);
    let got = 0;
    try {
      while (got < n) {
        signal?.throwIfAborted();
        const { bytesRead } = await this.fh.read(buf, got, Math.min(READ_CHUNK, n - got), position + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
    } catch (e) {
      if ((e as Error)?.name === 'AbortError') throw e;
      throw fileError(this.file, e);
    }
    return got === n ? buf : buf.subarray(0, got);
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}

export interface ReadExternalOptions {
  signal?: AbortSignal;
  /** Refuse (E_LIMIT) a file larger than this many bytes. */
  maxBytes?: number;
  /** What needs the file, for messages. */
  context?: string;
}

/** The whole of a regular file, as it was when opened, and at most `maxBytes`. */
export async function readExternalFile(file: string, opts: ReadExternalOptions = {}): Promise<Buffer> {
  const f = await ExternalFile.open(file, opts.context);
  try {
    if (opts.maxBytes !== undefined && f.size > opts.maxBytes) {
      throw new PackStreamError('E_LIMIT', `external file ${file} is ${f.size} bytes, more than the limit of ${opts.maxBytes} bytes per datum (--max-datum-bytes)${neededBy(opts.context)}`, { subject: file });
    }
    return await f.read(0, f.size, opts.signal);
  } finally {
    await f.close();
  }
}
