/**
 * Extract a tar stream (a pack sent by `pack-stream pack SRC -`) into a new
 * directory, refusing anything that could write outside it: absolute names,
 * `..` components, symbolic and hard links, devices and FIFOs, an entry twice,
 * and an archive that ends early (no end-of-archive blocks). Entries are
 * written straight into the target's file system, in a hidden staging
 * directory inside the target (so only the target itself must be writable, as
 * for `--dir /data/packs/NAME` given to a user who cannot write /data/packs);
 * when the whole archive was accepted its top-level names are renamed into the
 * target, catalog.yml last, so nothing of a refused archive is ever found there.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { PackStreamError } from '../errors.js';
import { LOCK_NAME, TargetLock } from '../sinks/lock.js';

export interface ExtractResult {
  dir: string;
  files: number;
  bytes: number;
}

export interface ExtractOptions {
  signal?: AbortSignal;
  /** Longest entry name accepted (bytes). */
  maxNameBytes?: number;
}

function bad(entry: string, why: string): PackStreamError {
  const shown = JSON.stringify(entry.length > 200 ? `${entry.slice(0, 200)}…` : entry);
  return new PackStreamError('E_BAD_ARCHIVE', `archive entry ${shown} refused: ${why}`, { subject: entry });
}

/** The entry's path split into safe components, or an E_BAD_ARCHIVE error. */
export function safeEntryParts(name: string, maxBytes = 4096): string[] {
  if (name === '' || name.includes('\0')) throw bad(name, 'empty name or NUL byte');
  if (Buffer.byteLength(name) > maxBytes) throw bad(name, `name longer than ${maxBytes} bytes`);
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name) || name.startsWith('\\')) throw bad(name, 'absolute path');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw bad(name, "'..' component");
  if (parts.some((p) => p.includes('\\'))) throw bad(name, 'backslash in a name');
  if (parts.length === 0) throw bad(name, 'names no file');
  return parts;
}

/** Keeps the last `n` bytes that went through, to check the archive's end. */
function tailKeeper(n: number) {
  let tail = Buffer.alloc(0);
  return {
    async *pass(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
      for await (const c of src) {
        tail = c.length >= n ? Buffer.from(c.subarray(c.length - n)) : Buffer.concat([tail, c]).subarray(-n);
        yield c;
      }
    },
    get tail() {
      return tail;
    },
  };
}

/**
 * Extract `input` into `target`, which must not exist or be empty. Resolves
 * when every entry is on disk; on any refusal or error the staging directory
 * is removed and `target` is left as it was.
 */
export async function extractTar(input: Readable | AsyncIterable<Buffer>, target: string, opts: ExtractOptions = {}): Promise<ExtractResult> {
  const dest = path.resolve(target);
  let created = false;
  try {
    const st = await stat(dest);
    if (!st.isDirectory()) throw new PackStreamError('E_TARGET', `${dest} exists and is not a directory`, { subject: dest });
  } catch (e) {
    if (e instanceof PackStreamError) throw e;
    await mkdir(dest, { recursive: true });
    created = true;
  }
  // One extraction per target: a second one into the same DIR would rename its entries over ours.
  const lock = await TargetLock.acquire(path.join(dest, LOCK_NAME), `target ${dest}`);
  try {
    return await extractLocked(input, dest, created, opts);
  } finally {
    await lock.release();
  }
}

async function extractLocked(input: Readable | AsyncIterable<Buffer>, dest: string, created: boolean, opts: ExtractOptions): Promise<ExtractResult> {
  if ((await readdir(dest)).some((n) => n !== LOCK_NAME)) {
    if (created) await rmdir(dest).catch(() => {});
    throw new PackStreamError('E_TARGET', `${dest} is not empty; give a new or empty directory`, { subject: dest });
  }
  // Hidden, and a name no entry can take: entries are extracted inside it, never beside it.
  const staging = await mkdtemp(path.join(dest, '.pack-stream-extract-'));
  const seen = new Set<string>();
  let files = 0;
  let bytes = 0;
  const tail = tailKeeper(1024);
  const ex = tar.extract();
  const feed = pipeline(tail.pass(input as AsyncIterable<Buffer>), ex as unknown as NodeJS.WritableStream, opts.signal ? { signal: opts.signal } : {});
  feed.catch(() => {});
  // An archive cut inside an entry fails the feed, while the entry's reader waits for bytes that never come.
  const feedFailed = new Promise<never>((_, reject) => feed.catch(reject));
  feedFailed.catch(() => {});
  const orFeedFailure = <T>(p: Promise<T>) => Promise.race([p, feedFailed]);
  try {
    for await (const entry of ex) {
      const h = entry.header;
      const parts = safeEntryParts(h.name, opts.maxNameBytes);
      const rel = parts.join('/');
      if (h.type === 'directory') {
        await mkdir(path.join(staging, ...parts), { recursive: true });
        entry.resume();
        continue;
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') {
        throw bad(h.name, h.type === 'symlink' || h.type === 'link' ? `a ${h.type === 'link' ? 'hard' : 'symbolic'} link (to ${JSON.stringify(h.linkname)}); links are never extracted` : `a ${h.type ?? 'special'} entry; only files and directories are extracted`);
      }
      if (seen.has(rel)) throw bad(h.name, 'appears twice');
      seen.add(rel);
      const file = path.join(staging, ...parts);
      await mkdir(path.dirname(file), { recursive: true });
      // 'wx': never through something already there.
      await orFeedFailure(pipeline(entry, createWriteStream(file, { flags: 'wx', mode: 0o644 })));
      files++;
      bytes += h.size ?? 0;
    }
    await feed;
    if (!tail.tail.equals(Buffer.alloc(1024))) {
      throw new PackStreamError('E_BAD_ARCHIVE', 'the archive ends without its end-of-archive blocks: it was cut off', {});
    }
  } catch (e) {
    ex.destroy();
    await rm(staging, { recursive: true, force: true });
    // A target this call made goes too; one that was there (empty) is left empty.
    if (created) await rm(dest, { recursive: true, force: true }).catch(() => {});
    if (e instanceof PackStreamError) throw e;
    if (opts.signal?.aborted) throw e;
    const msg = (e as Error).message;
    if (/Unexpected end of data/.test(msg)) throw new PackStreamError('E_BAD_ARCHIVE', 'the archive ends inside an entry: it was cut off', { cause: e });
    throw new PackStreamError('E_BAD_ARCHIVE', `the archive cannot be read: ${msg}`, { cause: e });
  }
  // Accepted: the top-level names move into place (renames within one directory), catalog.yml, the file readers open, last.
  const top = (await readdir(staging)).filter((n) => n !== LOCK_NAME).sort((a, b) => Number(a === 'catalog.yml') - Number(b === 'catalog.yml'));
  for (const name of top) await rename(path.join(staging, name), path.join(dest, name));
  await rmdir(staging);
  return { dir: dest, files, bytes };
}
