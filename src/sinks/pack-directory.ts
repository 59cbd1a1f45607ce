/**
 * The pack directory on disk. Every file is written under a temporary name
 * and renamed into place when whole, and catalog.yml (the file readers open)
 * is written last, so an interrupted pack never looks complete.
 */
import { constants } from 'node:fs';
import { copyFile, link, mkdir, open, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PackStreamError } from '../errors.js';
import { LOCK_NAME, PROBE_PREFIX, TargetLock, lockDebrisPid, pidAlive } from './lock.js';

export const PARTIAL_SUFFIX = '.partial';

/**
 * Create `dir`, or accept it if it exists and is empty; anything else is an
 * error. With `lock`, the target's lock (LOCK_NAME inside it) is taken first,
 * so of two processes given the same new directory exactly one goes on; the
 * lock is returned for the caller to release when the pack is done.
 */
export async function prepareTarget(dir: string, lock?: { command?: string; allowNonEmpty?: (entries: string[]) => boolean }): Promise<TargetLock | null> {
  const abs = path.resolve(dir);
  try {
    const st = await stat(abs);
    if (!st.isDirectory()) throw new PackStreamError('E_TARGET', `target ${dir} exists and is not a directory`, { subject: dir });
  } catch (e) {
    if (e instanceof PackStreamError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new PackStreamError('E_TARGET', `cannot use target ${dir}: ${(e as Error).message}`, { subject: dir, cause: e });
    }
  }
  try {
    await mkdir(abs, { recursive: true });
  } catch (e) {
    throw new PackStreamError('E_TARGET', `cannot create target ${dir}: ${(e as Error).message}`, { subject: dir, cause: e });
  }
  let held: TargetLock | null = null;
  if (lock) {
    try {
      held = await TargetLock.acquire(path.join(abs, LOCK_NAME), `target ${dir}`, lock.command);
    } catch (e) {
      if (e instanceof PackStreamError) throw e;
      throw new PackStreamError('E_TARGET', `cannot write to target ${dir}: ${(e as Error).message}`, { subject: dir, cause: e });
    }
  }
  try {
    // The lock and the protocol's own files are not content: a competitor's token is transient, and
    // what a killed writer left (token, probe) is removed, so a target holding only those is empty.
    const entries: string[] = [];
    for (const n of await readdir(abs)) {
      const pid = lockDebrisPid(n);
      if (pid === null) entries.push(n);
      // (a writer on another host whose token is removed here fails its link and stops: no damage)
      else if (pid !== 0 && pid !== process.pid && !pidAlive(pid)) await unlink(path.join(abs, n)).catch(() => {});
    }
    if (entries.length > 0 && !lock?.allowNonEmpty?.(entries)) {
      throw new PackStreamError('E_TARGET', `target ${dir} is not empty (${entries.length} entries); give a new or empty directory`, { subject: dir });
    }
    // Prove we can write before doing any work.
    const probe = path.join(abs, `${PROBE_PREFIX}${process.pid}`);
    try {
      await writeFile(probe, '');
      await unlink(probe);
    } catch (e) {
      throw new PackStreamError('E_TARGET', `cannot write to target ${dir}: ${(e as Error).message}`, { subject: dir, cause: e });
    }
  } catch (e) {
    await held?.release();
    throw e;
  }
  return held;
}

/** Write a whole file atomically: temp name, fsync-free rename. Fails if `file` exists. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}${PARTIAL_SUFFIX}`;
  try {
    await writeFile(tmp, data, { flag: 'wx' });
  } catch (e) {
    // A half-written temp file (disk full) must not stay behind; one that already existed is not ours.
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') await rm(tmp, { force: true });
    throw e;
  }
  await commitFile(tmp, file);
}

/** Move a finished temp file to its final name, refusing to overwrite. */
export async function commitFile(tmp: string, file: string): Promise<void> {
  try {
    await link(tmp, file);
    await unlink(tmp);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      await rm(tmp, { force: true });
      throw new PackStreamError('E_TARGET', `${file} already exists`, { subject: file, cause: e });
    }
    // Filesystems without hard links: a plain rename.
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EXDEV') {
      await rename(tmp, file);
      return;
    }
    throw e;
  }
}

/** Copy a file's contents (shutil.copyfile) via a temp name; reflinks where the filesystem has them. */
export async function copyFileAtomic(src: string, dest: string): Promise<void> {
  await mkdir(path.dirname(dest), { recursive: true });
  const tmp = `${dest}${PARTIAL_SUFFIX}`;
  try {
    await copyFile(src, tmp, constants.COPYFILE_FICLONE);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await rename(tmp, dest);
}

/**
 * Buffered writer for one document file: bytes go to `<file>.partial` in
 * chunks of at least `chunkBytes`, and `commit()` moves the file into place.
 */
export class AtomicFileWriter {
  private fh: Awaited<ReturnType<typeof open>> | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  bytesWritten = 0;
  readonly tmp: string;

  constructor(readonly file: string, private readonly chunkBytes = 256 * 1024) {
    this.tmp = `${file}${PARTIAL_SUFFIX}`;
  }

  async open(): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true });
    try {
      await stat(this.file);
      throw new PackStreamError('E_TARGET', `${this.file} already exists`, { subject: this.file });
    } catch (e) {
      if (e instanceof PackStreamError) throw e;
    }
    this.fh = await open(this.tmp, 'wx');
  }

  /** Queue bytes; resolves once they are handed to the OS when the buffer is full (backpressure). */
  async write(bytes: Buffer | readonly Buffer[]): Promise<void> {
    for (const b of Buffer.isBuffer(bytes) ? [bytes] : bytes) {
      this.pending.push(b);
      this.pendingBytes += b.length;
    }
    if (this.pendingBytes >= this.chunkBytes) await this.flush();
  }

  async flush(): Promise<void> {
    if (!this.fh || this.pendingBytes === 0) return;
    const total = this.pendingBytes;
    const pending = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    if (pending.length === 1) {
      await this.fh.write(pending[0]!, 0, total);
    } else {
      // Small records are joined; large buffers (detector frames) go to the OS as they are.
      const out: Buffer[] = [];
      let run: Buffer[] = [];
      let runBytes = 0;
      const close = () => {
        if (run.length) out.push(run.length === 1 ? run[0]! : Buffer.concat(run, runBytes));
        run = [];
        runBytes = 0;
      };
      for (const b of pending) {
        if (b.length >= 64 * 1024) {
          close();
          out.push(b);
        } else {
          run.push(b);
          runBytes += b.length;
        }
      }
      close();
      if (out.length === 1) await this.fh.write(out[0]!, 0, total);
      else await this.fh.writev(out);
    }
    this.bytesWritten += total;
  }

  async commit(): Promise<void> {
    await this.flush();
    await this.fh?.close();
    this.fh = null;
    await commitFile(this.tmp, this.file);
  }

  async abort(): Promise<void> {
    this.pending = [];
    try {
      await this.fh?.close();
    } catch {
      // already closed or broken; removing the temp file is what matters
    }
    this.fh = null;
    await rm(this.tmp, { force: true });
  }
}
