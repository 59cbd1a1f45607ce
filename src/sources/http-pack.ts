/**
 * A pack served over HTTP(S): the directory that holds catalog.yml, as a
 * static file server or an object store's HTTP endpoint serves it. HTTP has
 * no directory listing, so the pack's own lists are followed: catalog.yml
 * (format, root_map), the documents manifests (the run files), and for each
 * root mapped into the pack (`external_files/<HASH>`) its external-files
 * manifests.
 *
 * The files are landed in a temporary directory, document files and
 * external files alike streamed to disk through one p-limit of parallel
 * downloads, each resumed with a Range request after a drop and checked
 * against its announced size (src/net/http.ts). The landed directory is then
 * an ordinary local pack, so every option that works on a pack works on a URL.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pLimit from 'p-limit';
import { parse } from 'yaml';
import { PackStreamError } from '../errors.js';
import { HttpClient, safeUrl, urlJoin, type HttpClientOptions } from '../net/http.js';
import { safeEntryParts } from './tar-extract.js';

export interface HttpPackOptions extends HttpClientOptions {
  /** Parallel downloads (default 4). */
  concurrency?: number;
  tmpDir?: string;
  signal?: AbortSignal;
  /** Most manifest chunks looked for per manifest (a bound against a server that answers everything). */
  maxManifestChunks?: number;
  onFile?: (name: string, bytes: number) => void;
}

export interface LandedHttpPack {
  dir: string;
  files: number;
  bytes: number;
  client: HttpClient;
  cleanup(): Promise<void>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The chunks of one manifest: NAME_0.txt, NAME_1.txt, … until the first that does not exist. */
async function readManifest(client: HttpClient, base: string, stem: string, max: number, into: string, signal?: AbortSignal): Promise<string[] | null> {
  const lines: string[] = [];
  for (let i = 0; i < max; i++) {
    const name = `${stem}_${i}.txt`;
    const text = await getIfThere(client, urlJoin(base, name), signal);
    if (text === null) return i === 0 ? null : lines;
    await writeFile(path.join(into, name), text);
    lines.push(...text.split('\n').filter((l) => l.trim() !== ''));
  }
  throw new PackStreamError('E_LIMIT', `${safeUrl(urlJoin(base, stem))}: more than ${max} manifest chunks`);
}

/** A small file's text, or null when the server has no such file (404). */
async function getIfThere(client: HttpClient, url: string, signal?: AbortSignal): Promise<string | null> {
  try {
    return await client.getText(url, signal ? { signal } : {});
  } catch (e) {
    if (e instanceof PackStreamError && e.code === 'E_HTTP' && /HTTP 404/.test(e.message)) return null;
    throw e;
  }
}

/** A pack-relative name from a manifest or catalog, checked like an archive entry (no absolute names, no `..`). */
function safeRel(name: string): string {
  return safeEntryParts(name).join('/');
}

export async function landHttpPack(url: string, opts: HttpPackOptions = {}): Promise<LandedHttpPack> {
  const base = url.endsWith('/catalog.yml') ? url.slice(0, -'catalog.yml'.length) : url.endsWith('/') ? url : `${url}/`;
  const client = new HttpClient(opts);
  const signal = opts.signal;
  const tmp = await mkdtemp(path.join(opts.tmpDir ?? os.tmpdir(), 'pack-stream-http-'));
  const cleanup = async () => {
    await client.close().catch(() => {});
    await rm(tmp, { recursive: true, force: true });
  };
  try {
    const catalogText = await client.getText(urlJoin(base, 'catalog.yml'), { ...(signal ? { signal } : {}), maxBytes: 16 * 1024 * 1024 });
    let doc: unknown;
    try {
      doc = parse(catalogText, { version: '1.1' });
    } catch (e) {
      throw new PackStreamError('E_BAD_CATALOG', `${safeUrl(base)}catalog.yml cannot be parsed: ${(e as Error).message}`, { cause: e });
    }
    const source = isObj(doc) && isObj(doc.sources) ? Object.values(doc.sources).find(isObj) : undefined;
    if (!source) throw new PackStreamError('E_BAD_CATALOG', `${safeUrl(base)}catalog.yml has no source, so it is not a pack's catalog`);
    const args = isObj(source.args) ? source.args : {};
    const rootMap = isObj(args.root_map) ? (args.root_map as Record<string, unknown>) : {};
    const max = opts.maxManifestChunks ?? 10_000;

    const wanted = new Set<string>();
    const documents = await readManifest(client, base, 'documents_manifest', max, tmp, signal);
    if (!documents) throw new PackStreamError('E_NO_SOURCE', `${safeUrl(base)} has no documents_manifest_0.txt: a pack served over HTTP must carry its manifests`);
    for (const d of documents) wanted.add(safeRel(d));
    // Roots mapped into the pack were copied: their files are listed in the external-files manifests.
    // Roots left where they were (manifest mode) keep their manifests too (verify reads them); no files to fetch.
    for (const [key, value] of Object.entries(rootMap)) {
      const m = /^external_files\/([0-9a-f]{32})$/.exec(String(value));
      const hash = m?.[1] ?? (/^[0-9a-f]{32}$/.test(key) ? key : null);
      if (!hash) continue;
      const files = await readManifest(client, base, `external_files_manifest_${hash}`, max, tmp, signal);
      if (m) for (const f of files ?? []) wanted.add(safeRel(f));
    }

    const limit = pLimit(Math.max(1, opts.concurrency ?? 4));
    let bytes = 0;
    const list = [...wanted];
    // Bounded batches: never a promise per file of a huge pack at once.
    for (let i = 0; i < list.length; i += 256) {
      await Promise.all(
        list.slice(i, i + 256).map((rel) =>
          limit(async () => {
            const n = await client.download(urlJoin(base, rel), path.join(tmp, ...rel.split('/')), signal ? { signal } : {});
            bytes += n;
            opts.onFile?.(rel, n);
          }),
        ),
      );
    }
    const failures = await getIfThere(client, urlJoin(base, 'failures.tsv'), signal);
    if (failures !== null) await writeFile(path.join(tmp, 'failures.tsv'), failures);
    // catalog.yml last, as in any pack: its presence means the rest is here.
    await writeFile(path.join(tmp, 'catalog.yml'), catalogText);
    return { dir: tmp, files: list.length, bytes, client, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
