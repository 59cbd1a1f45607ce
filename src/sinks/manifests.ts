/**
 * Manifest files, split into chunks so a pack can be shipped in pieces.
 * Each chunk's contents follow databroker-pack: the documents manifest has one
 * path per line, each ending in a newline; an external-files manifest is sorted,
 * without duplicates, joined by newlines with none at the end.
 */
import path from 'node:path';
import { writeFileAtomic } from './pack-directory.js';

export const DEFAULT_MANIFEST_CHUNK = 10_000;

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Writes documents_manifest_N.txt files; returns their names. */
export async function writeDocumentsManifest(dir: string, relativePaths: string[], chunkSize = DEFAULT_MANIFEST_CHUNK): Promise<string[]> {
  const names: string[] = [];
  for (const [i, part] of chunks(relativePaths, Math.max(1, chunkSize)).entries()) {
    const name = `documents_manifest_${i}.txt`;
    await writeFileAtomic(path.join(dir, name), part.map((p) => `${p}\n`).join(''));
    names.push(name);
  }
  return names;
}

/** Writes external_files_manifest_<HASH>_N.txt files; returns their names. */
export async function writeExternalFilesManifest(dir: string, rootHash: string, files: Iterable<string>, chunkSize = DEFAULT_MANIFEST_CHUNK): Promise<string[]> {
  const sorted = [...new Set(files)].sort(byCodePoint);
  const names: string[] = [];
  for (const [i, part] of chunks(sorted, Math.max(1, chunkSize)).entries()) {
    const name = `external_files_manifest_${rootHash}_${i}.txt`;
    await writeFileAtomic(path.join(dir, name), part.join('\n'));
    names.push(name);
  }
  return names;
}

/** Python's str ordering (by code point), not UTF-16 units. */
export function byCodePoint(a: string, b: string): number {
  if (a === b) return 0;
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const cx = x.value.codePointAt(0)!;
    const cy = y.value.codePointAt(0)!;
    if (cx !== cy) return cx - cy;
  }
}
