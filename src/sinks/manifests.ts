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

/** One manifest file: its name in the pack and its text. */
export interface ManifestChunk {
  name: string;
  text: string;
}

/** The splitter stage for the documents manifest: documents_manifest_N.txt chunks, for any sink. */
export function* documentsManifestChunks(relativePaths: string[], chunkSize = DEFAULT_MANIFEST_CHUNK): Generator<ManifestChunk> {
  for (const [i, part] of chunks(relativePaths, Math.max(1, chunkSize)).entries()) {
    yield { name: `documents_manifest_${i}.txt`, text: part.map((p) => `${p}\n`).join('') };
  }
}

/** The splitter stage for one root's external files: external_files_manifest_<HASH>_N.txt chunks. */
export function* externalFilesManifestChunks(rootHash: string, files: Iterable<string>, chunkSize = DEFAULT_MANIFEST_CHUNK): Generator<ManifestChunk> {
  const sorted = [...new Set(files)].sort(byCodePoint);
  for (const [i, part] of chunks(sorted, Math.max(1, chunkSize)).entries()) {
    yield { name: `external_files_manifest_${rootHash}_${i}.txt`, text: part.join('\n') };
  }
}

async function writeChunks(dir: string, parts: Iterable<ManifestChunk>): Promise<string[]> {
  const names: string[] = [];
  for (const c of parts) {
    await writeFileAtomic(path.join(dir, c.name), c.text);
    names.push(c.name);
  }
  return names;
}

/** Writes documents_manifest_N.txt files into a directory; returns their names. */
export function writeDocumentsManifest(dir: string, relativePaths: string[], chunkSize = DEFAULT_MANIFEST_CHUNK): Promise<string[]> {
  return writeChunks(dir, documentsManifestChunks(relativePaths, chunkSize));
}

/** Writes external_files_manifest_<HASH>_N.txt files into a directory; returns their names. */
export function writeExternalFilesManifest(dir: string, rootHash: string, files: Iterable<string>, chunkSize = DEFAULT_MANIFEST_CHUNK): Promise<string[]> {
  return writeChunks(dir, externalFilesManifestChunks(rootHash, files, chunkSize));
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
