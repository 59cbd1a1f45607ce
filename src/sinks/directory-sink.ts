/**
 * The pack as a directory: every file written under a temporary name and
 * linked into place when whole (sinks/pack-directory.ts), external files
 * copied with reflinks where the file system has them.
 */
import { readdir, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { AtomicFileWriter, copyFileAtomic, prepareTarget, writeFileAtomic } from './pack-directory.js';
import type { PackSink, RunFileWriter } from './sink.js';
import { resolveInside } from '../transforms/safe-names.js';

export class DirectorySink implements PackSink {
  readonly location: string;
  readonly packPath: string;
  readonly wholePack = true;

  constructor(readonly dest: string) {
    this.location = path.resolve(dest);
    this.packPath = this.location;
  }

  async open(): Promise<void> {
    await prepareTarget(this.dest);
  }

  private file(name: string): string {
    // Names are built from input (uids, resource paths): a last guard that none leaves the pack.
    return resolveInside(this.location, path.join(...name.split('/')), 'pack file name');
  }

  async openRunFile(name: string): Promise<RunFileWriter> {
    const w = new AtomicFileWriter(this.file(name));
    await w.open();
    return w;
  }

  async addExternalFile(name: string, source: string): Promise<number> {
    const size = (await stat(source)).size;
    await copyFileAtomic(source, this.file(name));
    return size;
  }

  async writeFile(name: string, data: string | Uint8Array): Promise<string> {
    const file = this.file(name);
    await writeFileAtomic(file, data);
    return file;
  }

  async finish(): Promise<void> {}

  /** Remove the target again if nothing was written into it; a partly written pack has no catalog.yml. */
  async abort(): Promise<void> {
    try {
      const left = await readdir(this.location);
      if (left.length === 0) await rmdir(this.location);
    } catch {
      // nothing to tidy
    }
  }
}
