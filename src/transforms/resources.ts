/**
 * Resource handling on the way into a pack: each resource's `root` is replaced
 * by md5(root + salt), so roots from different packs never collide once
 * unpacked together; and the files each resource's datums need are collected
 * per root, for the manifests and copies.
 */
import path from 'node:path';
import { isPlainDoc, withField, type Doc } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import type { DocPair } from '../types.js';
import { HandlerRegistry, resourceFilePath, type FileList, type FileLister } from './handlers.js';
import { unpackDatumPage, datumAsRow } from './pages.js';
import { rootHash } from './root-hash.js';
import { checkExternalPath, checkNoTemplate, quoted } from './safe-names.js';

/** A resource with its root replaced by the root's hash (a shallow copy, key order kept). */
export function rewriteRoot(pair: DocPair, salt: string): DocPair {
  const root = typeof pair.doc.root === 'string' ? pair.doc.root : '';
  return { name: 'resource', doc: withField(pair.doc, 'root', rootHash(root, salt)) };
}

/** Stage: rewriteRoot on every resource, other documents untouched. */
export async function* rewriteResourceRoots(docs: AsyncIterable<DocPair>, salt: string): AsyncGenerator<DocPair> {
  for await (const pair of docs) yield pair.name === 'resource' ? rewriteRoot(pair, salt) : pair;
}

export interface RootFiles {
  hash: string;
  originalRoot: string;
  mappedRoot: string;
  files: Set<string>;
  /** For one run's files: which datum (or resource) first needed each file, for messages. */
  needers?: Map<string, string>;
}

/**
 * Hand each file of one datum's list to `add`, refusing (E_LIMIT) more than
 * `limit` of them; the list is taken one file at a time, so a handler may
 * return a generator instead of building the whole array.
 */
export async function forEachDatumFile(list: FileList | Promise<FileList>, limit: number, add: (file: string) => void): Promise<void> {
  const files = await list;
  let n = 0;
  const take = (f: unknown): void => {
    if (++n > limit) throw new PackStreamError('E_LIMIT', `the handler lists more than ${limit} files for one datum (--max-files-per-datum)`);
    if (typeof f !== 'string') throw new PackStreamError('E_HANDLER', `the handler listed a file name that is not a string: ${String(f)}`);
    add(f);
  };
  if (Symbol.iterator in files) for (const f of files) take(f);
  else for await (const f of files) take(f);
}

/**
 * Collects external files per root as documents go by (resources come before
 * their datums in canonical order). Use `observe()` from any stage.
 */
export class ExternalFileCollector {
  readonly roots = new Map<string, RootFiles>();
  private readonly resources = new Map<string, { lister: FileLister; root: RootFiles; where: string; added: number }>();

  constructor(
    private readonly registry: HandlerRegistry,
    private readonly rootMap: Record<string, string>,
    private readonly salt: string,
  ) {}

  async observe(pair: DocPair): Promise<void> {
    if (pair.name === 'resource') {
      const { originalRoot, mappedRoot, filePath } = checkedResourcePath(pair.doc, this.rootMap);
      const hash = rootHash(originalRoot, this.salt);
      const lister = this.registry.lister(pair.doc, filePath);
      const files = lister.resourceFiles().map((f) => checkExternalPath(f, mappedRoot));
      let root = this.roots.get(hash);
      if (!root) this.roots.set(hash, (root = { hash, originalRoot, mappedRoot, files: new Set(), needers: new Map() }));
      const uid = String(pair.doc.uid ?? '');
      const r = { lister, root, where: `resource ${uid}, spec ${String(pair.doc.spec ?? '')}`, added: 0 };
      for (const f of files) this.add(r, f, `resource ${uid}`);
      this.resources.set(uid, r);
    } else if (pair.name === 'datum_page' || pair.name === 'datum') {
      const rows = pair.name === 'datum' ? [datumAsRow(pair.doc)] : unpackDatumPage(pair.doc);
      const limit = this.registry.limits.filesPerDatum;
      for (const row of rows) {
        const r = this.resources.get(String(row.resource ?? ''));
        if (!r) continue;
        const datum = `datum ${String(row.datum_id)}`;
        try {
          // What a template made of the kwargs goes into manifests and copy targets: it must stay in the root.
          await forEachDatumFile(r.lister.filesForDatum(isPlainDoc(row.datum_kwargs) ? row.datum_kwargs : ({} as Doc)), limit, (f) => this.add(r, checkExternalPath(f, r.root.mappedRoot), datum));
        } catch (e) {
          if (e instanceof PackStreamError) {
            throw new PackStreamError(e.code, `${datum} (${r.where}): ${e.message}`, { subject: String(row.datum_id), cause: e });
          }
          throw e;
        }
      }
    }
  }

  /** Note one file of a resource, counting the new ones against the per-resource limit. */
  private add(r: { root: RootFiles; added: number }, file: string, neededBy: string): void {
    const { files, needers } = r.root;
    if (files.has(file)) return;
    const limit = this.registry.limits.filesPerResource;
    if (++r.added > limit) throw new PackStreamError('E_LIMIT', `the resource's datums list more than ${limit} files (--max-files-per-resource)`);
    files.add(file);
    needers?.set(file, neededBy);
  }
}

/**
 * resourceFilePath, refused (E_UNSAFE_PATH, naming the resource) when the root
 * or resource_path hold control characters or the joined path leaves the root.
 */
export function checkedResourcePath(resource: Doc, rootMap: Record<string, string>): ReturnType<typeof resourceFilePath> {
  const r = resourceFilePath(resource, rootMap);
  try {
    checkExternalPath(r.originalRoot, '', 'resource root');
    // Roots become root_map keys and values in the pack's catalog.yml.
    checkNoTemplate(r.originalRoot, 'resource root');
    checkNoTemplate(r.mappedRoot, 'resource root');
    // The resource's own path may be the root itself (a handler that lists files under it).
    const isRoot = r.mappedRoot !== '' && path.resolve(r.filePath) === path.resolve(r.mappedRoot);
    checkExternalPath(r.filePath, isRoot ? '' : r.mappedRoot, 'resource path');
  } catch (e) {
    const err = e as PackStreamError;
    throw new PackStreamError(err.code, `resource ${quoted(String(resource.uid ?? ''))}: ${err.message}`, { subject: err.subject ?? '', cause: e });
  }
  return r;
}

/** Stage form of the collector: passes documents through unchanged. */
export async function* collectExternalFiles(docs: AsyncIterable<DocPair>, collector: ExternalFileCollector): AsyncGenerator<DocPair> {
  for await (const pair of docs) {
    await collector.observe(pair);
    yield pair;
  }
}
