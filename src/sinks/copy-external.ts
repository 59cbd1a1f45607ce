/**
 * Copy external files into `external_files/<HASH>/<path relative to root>`,
 * in parallel with a bounded number of copies in flight, each file once even
 * when several runs share it. Only regular files are copied (a FIFO would hang
 * the copy, /dev/zero never ends, /dev/null would become an empty "copy"), and
 * manifest mode checks the same of every listed file.
 */
import path from 'node:path';
import pLimit from 'p-limit';
import { PackStreamError } from '../errors.js';
import { checkRegularFile, ExternalFile } from '../handlers/external-file.js';
import { DirectorySink } from './directory-sink.js';
import type { PackSink } from './sink.js';
import { checkPathComponent, checkPathText, isInside, printable, quoted } from '../transforms/safe-names.js';
import type { RootFiles } from '../transforms/resources.js';

export interface CopyPlanItem {
  source: string;
  /** Relative to the pack directory: external_files/<hash>/<rel>. */
  target: string;
  /** Which datum or resource needs it, for messages. */
  neededBy?: string;
}

/** Where each file of a root goes in the pack; a file outside its root is an error (as in Python). */
export function planCopies(root: RootFiles): CopyPlanItem[] {
  return [...root.files].map((source) => {
    checkPathText(source, 'external file');
    if (root.mappedRoot === '' || !isInside(root.mappedRoot, source)) {
      throw new PackStreamError('E_MISSING_FILE', `external file ${quoted(source)} is not inside its resource root ${quoted(root.mappedRoot)}, so it cannot be copied`, { subject: printable(source) });
    }
    // The hash is ours (hex) and rel is inside the root, so the target stays inside external_files/<hash>/.
    const rel = path.relative(path.resolve(root.mappedRoot), path.resolve(source));
    const neededBy = root.needers?.get(source);
    return { source, target: path.join('external_files', checkPathComponent(root.hash, 'root hash'), rel), ...(neededBy ? { neededBy } : {}) };
  });
}

/**
 * Copies external files into a sink, a bounded number at once, each target
 * once. Errors name the source file; a broken sink's error passes as it is.
 */
export class ExternalFileCopier {
  private readonly limit;
  private readonly sink: PackSink;
  private readonly done = new Map<string, Promise<number>>();
  filesCopied = 0;
  bytesCopied = 0;

  /** `into` is a sink, or a pack directory (shorthand for a DirectorySink). */
  constructor(into: PackSink | string, concurrency = 4, private readonly onCopied?: (bytes: number) => void) {
    this.sink = typeof into === 'string' ? new DirectorySink(into) : into;
    this.limit = pLimit(Math.max(1, concurrency));
  }

  /** Copy one file unless it was copied (or is being copied) already. */
  copy(item: CopyPlanItem): Promise<number> {
    const dest = item.target;
    let p = this.done.get(dest);
    if (!p) {
      p = this.limit(async () => {
        const src = await ExternalFile.open(item.source, item.neededBy);
        let size: number;
        try {
          // the sink opens the file just checked (reopenPath), not whatever the name points to by now
          size = await this.sink.addExternalFile(item.target.split(path.sep).join('/'), src.reopenPath);
        } catch (e) {
          if (e instanceof PackStreamError || this.sink.broken) throw e;
          throw new PackStreamError('E_IO', `cannot copy external file ${item.source}: ${(e as Error).message}`, { subject: item.source, cause: e });
        } finally {
          await src.close();
        }
        this.filesCopied++;
        this.bytesCopied += size;
        this.onCopied?.(size);
        return size;
      });
      // A failed copy may be retried by a later run.
      p.catch(() => this.done.delete(dest));
      this.done.set(dest, p);
    }
    return p;
  }

  /** Copy many, never queueing more than a bounded batch at once. */
  async copyAll(items: CopyPlanItem[], batch = 256): Promise<void> {
    for (let i = 0; i < items.length; i += batch) {
      const results = await Promise.allSettled(items.slice(i, i + batch).map((it) => this.copy(it)));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
  }
}

/** The Python API's copy_external_files: copy one root's files into a pack directory. */
export async function copyExternalFiles(packDir: string, root: RootFiles, opts: { concurrency?: number } = {}): Promise<CopyPlanItem[]> {
  const plan = planCopies(root);
  await new ExternalFileCopier(packDir, opts.concurrency ?? 4).copyAll(plan);
  return plan;
}

/**
 * Check that files exist and are regular files (manifest mode), a bounded
 * number at a time; `neededBy` names the datum that needs each, for messages.
 */
export async function checkFilesExist(files: Iterable<string>, concurrency = 16, neededBy?: ReadonlyMap<string, string>): Promise<void> {
  const limit = pLimit(concurrency);
  const list = [...files];
  for (let i = 0; i < list.length; i += 1024) {
    await Promise.all(list.slice(i, i + 1024).map((f) => limit(() => checkRegularFile(f, neededBy?.get(f)))));
  }
}
