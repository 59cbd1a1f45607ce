/**
 * The pack action shared by `pack-stream pack` and the `databroker-pack` drop-in:
 * options in, a pack out, a summary on stderr, the exit code back. Loaded only
 * when a pack is asked for (it brings in the whole library).
 */
import { readFile } from 'node:fs/promises';
import { PackStreamError } from '../errors.js';
import { exportCatalog, exportUids, type ExportOptions, type ExportSummary } from '../pipeline/export.js';
import { DirectorySink } from '../sinks/directory-sink.js';
import { openSink } from '../sinks/open-sink.js';
import { openSource } from '../sources/open.js';
import { parseHeaders } from '../net/http.js';
import { setMongoWaitNotice } from '../sources/mongo-connection.js';
import { HandlerRegistry } from '../transforms/handlers.js';
import { applyHandlerOptions } from '../handlers/user-module.js';
import { applyHandlerRegistry } from '../handlers/python-registry.js';
import { combineQueries, parseQuery, validateQuery } from '../transforms/query.js';
import type { Doc } from '../codec/values.js';
import type { Catalog } from '../types.js';
import { printable } from '../transforms/safe-names.js';
import { fromCommandLine } from './program.js';
import { formatBytes, progressView } from './progress.js';

/** Lines of a --uids file: `#` comments and blank lines skipped. */
export function parseUidLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

async function readUids(sources: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const s of sources) {
    let text: string;
    if (s === '-') {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      text = Buffer.concat(chunks).toString('utf8');
    } else {
      try {
        text = await readFile(s, 'utf8');
      } catch (e) {
        throw new PackStreamError('E_USAGE', `cannot read uids file ${s}: ${(e as Error).message}`, { subject: s });
      }
    }
    out.push(...parseUidLines(text));
  }
  return out;
}

export interface PackCliOptions {
  all?: boolean;
  query?: string[];
  uids?: string[];
  copyExternal?: boolean;
  fillExternal?: boolean;
  ignoreExternal?: boolean;
  format: 'msgpack' | 'jsonl';
  documents: boolean;
  limit?: number;
  strict?: boolean;
  salt?: string;
  handler?: string[];
  handlerRegistry?: string;
  concurrency: number;
  manifestChunk: number;
  /** Open SOURCE as a catalog name before trying it as a path (databroker-pack's CATALOG is a name). */
  nameFirst?: boolean;
  apiKey?: string;
  header?: string[];
  tar?: string;
  documentsOnly?: boolean;
  packPath?: string;
  spoolCap?: number;
  maxFilesPerDatum?: number;
  maxFilesPerResource?: number;
  maxDatumBytes?: number;
}

/** How many runs the export will take, for the progress bars' totals (only asked for on a terminal). */
async function countRuns(catalog: Catalog, query: Doc | undefined, limit: number | undefined): Promise<number> {
  let n = 0;
  for await (const _ of catalog.runs(query ? { query } : {})) {
    if (limit !== undefined && n >= limit) break;
    n++;
  }
  return n;
}

export function packSummary(s: ExportSummary): string {
  return (
    `packed ${s.runsDone} run(s), ${s.documents} documents (${formatBytes(s.bytes)})` +
    (s.filesCopied ? `, copied ${s.filesCopied} external files (${formatBytes(s.bytesCopied)})` : '') +
    (s.datumsFilled ? `, filled ${s.datumsFilled} datums (${formatBytes(s.bytesFilled)})` : '') +
    ` into ${s.dir}`
  );
}

export async function runPack(name: string, source: string, dest: string | undefined, o: PackCliOptions): Promise<number> {
  if (o.tar !== undefined && dest !== undefined) throw new PackStreamError('E_USAGE', 'give either DEST or --tar FILE, not both');
  if (o.tar !== undefined && o.documentsOnly) throw new PackStreamError('E_USAGE', '--documents-only writes a document stream, not a tar; give DEST (- for stdout) instead of --tar');
  if (o.documentsOnly && o.copyExternal) throw new PackStreamError('E_USAGE', 'a document stream carries no files: --documents-only cannot be combined with --copy-external');
  if (o.documentsOnly && !o.documents) throw new PackStreamError('E_USAGE', '--documents-only and --no-documents contradict each other');
  const selections = [o.all, o.query?.length, o.uids?.length].filter(Boolean).length;
  if (selections !== 1) throw new PackStreamError('E_USAGE', 'choose exactly one of --all, -q/--query or --uids');
  const modes = [o.copyExternal, o.fillExternal, o.ignoreExternal].filter(Boolean).length;
  if (modes > 1) throw new PackStreamError('E_USAGE', 'choose at most one of --copy-external, --fill-external and --ignore-external');
  if (o.fillExternal && !o.documents) throw new PackStreamError('E_USAGE', '--fill-external puts the data into the documents; it cannot be combined with --no-documents');

  const handlers = new HandlerRegistry({
    ...(o.maxFilesPerDatum !== undefined ? { filesPerDatum: o.maxFilesPerDatum } : {}),
    ...(o.maxFilesPerResource !== undefined ? { filesPerResource: o.maxFilesPerResource } : {}),
    ...(o.maxDatumBytes !== undefined ? { datumBytes: o.maxDatumBytes } : {}),
  });
  if (o.handlerRegistry !== undefined) applyHandlerRegistry(handlers, o.handlerRegistry);
  await applyHandlerOptions(handlers, o.handler ?? []);
  let query: Doc | undefined;
  if (o.query?.length) {
    query = fromCommandLine(() => combineQueries(o.query!.map(parseQuery)));
  }
  const uids = o.uids?.length ? await readUids(o.uids) : undefined;
  if (uids && uids.length === 0) throw new PackStreamError('E_USAGE', 'the --uids input holds no uids (only blank lines and # comments)');

  setMongoWaitNotice((m) => process.stderr.write(`${name}: ${m}\n`));
  const external = o.copyExternal ? 'copy' : o.ignoreExternal ? 'ignore' : o.fillExternal ? 'fill' : 'manifest';
  const apiKey = o.apiKey ?? process.env.TILED_API_KEY;
  const catalog = await openSource(source, { external, concurrency: o.concurrency, ...(apiKey ? { apiKey } : {}), http: { headers: parseHeaders(o.header) }, ...(o.nameFirst ? { preferName: true } : {}) });
  let view;
  try {
    // $text and $where are for the server to judge when the source is MongoDB.
    if (query) fromCommandLine(() => validateQuery(query, !(catalog as { queriesOnServer?: boolean }).queriesOnServer));
    const total = !process.stderr.isTTY ? undefined : uids ? Math.min(uids.length, o.limit ?? Infinity) : await countRuns(catalog, query, o.limit);
    view = progressView(process.stderr, total, external);
  } catch (e) {
    await catalog.close?.();
    throw e;
  }
  const failed: { uid: string; message: string }[] = [];
  const opts: ExportOptions = {
    format: o.format,
    external,
    noDocuments: !o.documents,
    strict: Boolean(o.strict),
    handlers,
    concurrency: o.concurrency,
    manifestChunk: o.manifestChunk,
    onProgress: (p) => view.update(p),
    onRun: (r) => {
      if (r.error) failed.push(r.error);
    },
    ...(o.salt !== undefined ? { salt: o.salt } : {}),
    ...(o.limit !== undefined ? { limit: o.limit } : {}),
  };
  const sink = openSink(dest, {
    ...(o.tar !== undefined ? { tar: o.tar } : {}),
    documentsOnly: Boolean(o.documentsOnly),
    ...(o.packPath !== undefined ? { packPath: o.packPath } : {}),
    ...(o.spoolCap !== undefined ? { spoolCap: o.spoolCap * 1024 * 1024 } : {}),
  });
  let summary: ExportSummary;
  try {
    summary = uids ? await exportUids(catalog, uids, sink, opts) : await exportCatalog(catalog, sink, { ...opts, ...(query ? { query } : {}) });
  } catch (e) {
    // The export stopped (a full disk under the manifests, say): the runs that had failed before are news too.
    if (failed.length) {
      view.stop();
      process.stderr.write(`${name}: before it stopped, ${failed.length} run(s) had failed:\n`);
      for (const f of failed.slice(0, 50)) process.stderr.write(`  ${printable(f.uid)}: ${printable(f.message)}\n`);
      if (failed.length > 50) process.stderr.write(`  ... and ${failed.length - 50} more\n`);
    }
    throw e;
  } finally {
    view.stop();
    await catalog.close?.();
  }
  const err = process.stderr;
  for (const w of summary.warnings) err.write(`${name}: warning: ${printable(w)}\n`);
  err.write(`${name}: ${packSummary(summary)}\n`);
  if (summary.failures.length) {
    const where = sink instanceof DirectorySink ? ` (listed in ${summary.dir}/failures.tsv)` : sink.wholePack ? ' (listed in failures.tsv in the archive)' : '';
    err.write(`${name}: ${summary.failures.length} run(s) failed${where}:\n`);
    for (const f of summary.failures) err.write(`  ${printable(f.uid)}: ${printable(f.message)}\n`);
    return 1;
  }
  return 0;
}
