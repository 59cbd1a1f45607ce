import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * sha256 of every file under dir, keyed by relative path, with its mtime (to
 * prove sources are untouched) unless `mtime: false` (to compare contents).
 */
export async function treeDigest(dir: string, opts: { mtime?: boolean } = {}): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else {
        const sha = createHash('sha256').update(await readFile(p)).digest('hex');
        out[path.relative(dir, p)] = opts.mtime === false ? sha : `${sha}:${(await stat(p)).mtimeMs}`;
      }
    }
  }
  await walk(dir);
  return out;
}

export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(path.relative(dir, p));
    }
  }
  await walk(dir);
  return out.sort();
}

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';

const made: string[] = [];
process.on('exit', () => {
  if (!process.env.PACK_STREAM_KEEP_TMP) for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the test process exits. */
export function tempDir(prefix = 'pack-stream-test-'): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}
