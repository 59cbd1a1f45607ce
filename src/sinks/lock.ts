/**
 * One writer per target: an exclusive lock file, created atomically (written
 * under a private name, then hard-linked to the lock name, which fails if it
 * exists), holding who took it. A lock whose pid is gone on this host is stale
 * and is broken; a lock from another host is never broken (its pid means
 * nothing here), the message says how to clear it by hand.
 */
import { link, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PackStreamError } from '../errors.js';
import { printable } from '../transforms/safe-names.js';

export const LOCK_NAME = '.pack-stream.lock';

/** The name prefix of a writability probe prepareTarget writes and removes (`PREFIX<pid>`). */
export const PROBE_PREFIX = '.pack-stream-probe-';

/**
 * The lock, a competitor's private token (`.pack-stream-lock.<pid>.<rand>.tmp`), a stale lock moved
 * aside (`.pack-stream-lock.stale.<pid>.<rand>`) or a probe: files of the locking protocol, not content. Returns the pid
 * in the name (0 for the lock itself), or null when the name is not such a file.
 */
export function lockDebrisPid(name: string): number | null {
  if (name === LOCK_NAME) return 0;
  const m = /^\.pack-stream-lock\.(?:stale\.)?(\d+)\.[0-9a-z]+(?:\.tmp)?$/.exec(name) ?? /^\.pack-stream-probe-(\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

/** Whether a process of this pid exists on this host. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** A lock file is a few hundred bytes; a bigger one is not ours and is never parsed whole. */
const MAX_LOCK_BYTES = 64 * 1024;

export interface LockHolder {
  pid: number;
  host: string;
  started: string;
  command: string;
}

export class TargetLock {
  private released = false;

  private constructor(
    readonly file: string,
    private readonly token: string,
  ) {}

  /**
   * Take the lock at `file` for `what` (a name for messages). Fails with E_LOCKED
   * naming the holder when a live process (or one on another host) has it.
   */
  static async acquire(file: string, what: string, command = currentCommand()): Promise<TargetLock> {
    const holder: LockHolder = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), command };
    // Short private names beside the lock: a lock name near the file-name limit leaves no room for suffixes.
    const token = path.join(path.dirname(file), `.pack-stream-lock.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
    await writeFile(token, `${JSON.stringify(holder)}\n`, { flag: 'wx' });
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await link(token, file);
          return new TargetLock(file, holder.started);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
        const other = await readHolder(file);
        if (other === 'gone') continue; // released between our link and our read
        if (other !== null && !isStale(other)) throw lockedError(file, what, other);
        if (other === null && !(await olderThan(file, 10_000))) {
          // Unreadable and fresh: being written by its owner right now (or garbage); do not steal it.
          throw new PackStreamError('E_LOCKED', `${what} is locked (${file} cannot be read); if no pack-stream process is using it, remove ${file}`, { subject: file });
        }
        await breakStale(file, other);
      }
      throw new PackStreamError('E_LOCKED', `${what} is locked: ${file} keeps coming back; another process is competing for it`, { subject: file });
    } finally {
      await unlink(token).catch(() => {});
    }
  }

  /** Remove the lock if it is still ours; never throws. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const h = await readHolder(this.file);
    if (h !== null && h !== 'gone' && h.pid === process.pid && h.host === os.hostname() && h.started === this.token) {
      await rm(this.file, { force: true }).catch(() => {});
    }
  }
}

function currentCommand(): string {
  return process.argv.slice(1).map((a) => a.replace(/.*\//, '')).join(' ').slice(0, 200);
}

async function readHolder(file: string): Promise<LockHolder | null | 'gone'> {
  let text: string;
  try {
    const buf = await readFile(file);
    if (buf.length > MAX_LOCK_BYTES) return null;
    text = buf.toString('utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    return null;
  }
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    if (typeof h.pid === 'number' && Number.isInteger(h.pid) && h.pid > 0 && typeof h.host === 'string') {
      return { pid: h.pid, host: h.host, started: String(h.started ?? ''), command: String(h.command ?? '') };
    }
  } catch {
    // not JSON: treated as unreadable
  }
  return null;
}

async function olderThan(file: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(file)).mtimeMs > ms;
  } catch {
    return true;
  }
}

/** A holder on this host whose process no longer exists. */
function isStale(h: LockHolder): boolean {
  if (h.host !== os.hostname()) return false;
  if (h.pid === process.pid) return false;
  return !pidAlive(h.pid);
}

/**
 * Move the stale lock aside under a private name, then check that what was moved
 * is the one judged stale: if a live process took the lock in between, put it back.
 */
async function breakStale(file: string, judged: LockHolder | null): Promise<void> {
  const aside = path.join(path.dirname(file), `.pack-stream-lock.stale.${process.pid}.${Math.random().toString(36).slice(2)}`);
  try {
    await rename(file, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const moved = await readHolder(aside);
  const same = judged === null ? moved === null : moved !== null && moved !== 'gone' && moved.pid === judged.pid && moved.started === judged.started;
  if (!same) {
    // Someone else's fresh lock: give it back (link fails only if a third took the name, and then it is theirs).
    await link(aside, file).catch(() => {});
  }
  await unlink(aside).catch(() => {});
}

function lockedError(file: string, what: string, h: LockHolder): PackStreamError {
  const cmd = h.command ? ` (${printable(h.command)}` + (h.started ? `, since ${printable(h.started)})` : ')') : h.started ? ` (since ${printable(h.started)})` : '';
  return new PackStreamError(
    'E_LOCKED',
    `${what} is locked by pid ${h.pid} on ${printable(h.host)}${cmd}; if no such process is running, remove ${file}`,
    { subject: file },
  );
}
