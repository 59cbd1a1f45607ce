/**
 * The pack as a directory: every file written under a temporary name and
 * linked into place when whole (sinks/pack-directory.ts), external files
 * copied with reflinks where the file system has them.
 */
import { readdir, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fsFault } from '../errors.js';
import type { TargetLock } from './lock.js';
import { AtomicFileWriter, copyFileAtomic, prepareTarget, writeFileAtomic } from './pack-directory.js';
import type { PackSink, RunFileWriter } from './sink.js';
import { resolveInside } from '../transforms/safe-names.js';

/** An external file copied from a descriptor we were handed (stdin, /proc/self/fd/N): name only the pack side. */
const FD_PATH = /^\/(proc\/self|dev)\/fd\//;

export class DirectorySink implements PackSink {
  readonly location: string;
  readonly packPath: string;
  readonly wholePack = true;

  constructor(readonly dest: string) {
    this.location = path.resolve(dest);
    this.packPath = this.location;
  }

  private lock: TargetLock | null = null;

  async open(): Promise<void> {
    // One writer per pack: the lock is held until finish or abort.
    this.lock = await prepareTarget(this.dest, {});
  }

  private file(name: string): string {
    // Names are built from input (uids, resource paths): a last guard that none leaves the pack.
    return resolveInside(this.location, path.join(...name.split('/')), 'pack file name');
  }

  async openRunFile(name: string): Promise<RunFileWriter> {
    const file = this.file(name);
    const w = new AtomicFileWriter(file);
    try {
      await w.open();
    } catch (e) {
      throw fsFault(e, 'create', file);
    }
    return {
      write: async (parts) => {
        try {
          await w.write(parts);
        } catch (e) {
          throw fsFault(e, 'write', file);
        }
      },
      commit: async () => {
        try {
          await w.commit();
        } catch (e) {
          throw fsFault(e, 'write', file);
        }
      },
      abort: () => w.abort(),
    };
  }

  async addExternalFile(name: string, source: string): Promise<number> {
    const dest = this.file(name);
    let size: number;
    try {
      size = (await stat(source)).size;
    } catch (e) {
      throw fsFault(e, 'read', source);
    }
    try {
      await copyFileAtomic(source, dest);
    } catch (e) {
      throw fsFault(e, FD_PATH.test(source) ? 'copy into' : `copy ${source} to`, dest);
    }
    return size;
  }

  async writeFile(name: string, data: string | Uint8Array): Promise<string> {
    const file = this.file(name);
    try {
      await writeFileAtomic(file, data);
    } catch (e) {
      throw fsFault(e, 'write', file);
    }
    return file;
  }

  async finish(): Promise<void> {
    await this.lock?.release();
  }

  /** Remove the target again if nothing was written into it; a partly written pack has no catalog.yml. */
  async abort(): Promise<void> {
    await this.lock?.release();
    try {
      const left = await readdir(this.location);
      if (left.length === 0) await rmdir(this.location);
    } catch {
      // nothing to tidy
    }
  }
}
