#!/usr/bin/env node
/**
 * The `pack-stream` command: a thin shell over the library. Data goes to
 * stdout only; messages, progress and the summary go to stderr. Exit codes:
 * 0 success, 1 failure (including any failed run), 2 bad usage.
 */
import { readFile } from 'node:fs/promises';
import { Command, CommanderError, Option } from 'commander';
import { PackStreamError, describeError } from '../errors.js';
import { exportCatalog, exportUids, type ExportOptions, type ExportSummary } from '../pipeline/export.js';
import { DirectorySink } from '../sinks/directory-sink.js';
import { openSink } from '../sinks/open-sink.js';
import { openSource } from '../sources/open.js';
import { parseHeaders } from '../net/http.js';
import { DEFAULT_LIMITS, HandlerRegistry } from '../transforms/handlers.js';
import { applyHandlerOptions } from '../handlers/user-module.js';
import { combineQueries, parseQuery, validateQuery } from '../transforms/query.js';
import type { Doc } from '../codec/values.js';
import { VERSION } from '../version.js';
import { printable } from '../transforms/safe-names.js';
import { parseByteSize, setLimits } from '../limits.js';
import { formatBytes, progressView } from './progress.js';
import { printCatalogList, registerCatalogCommands } from './catalog-commands.js';
import { registerUnpack } from './unpack-command.js';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new PackStreamError('E_USAGE', `${name} must be a positive integer, got '${v}'`);
    return n;
  };
}

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

interface PackCliOptions {
  listCatalogs?: boolean;
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
  concurrency: number;
  manifestChunk: number;
  apiKey?: string;
  tar?: string;
  documentsOnly?: boolean;
  packPath?: string;
  spoolCap?: number;
  header?: string[];
  maxFilesPerDatum: number;
  maxFilesPerResource: number;
  maxDatumBytes: number;
}

async function runPack(source: string, dest: string | undefined, o: PackCliOptions): Promise<number> {
  if (o.tar !== undefined && dest !== undefined) throw new PackStreamError('E_USAGE', 'give either DEST or --tar FILE, not both');
  if (o.tar !== undefined && o.documentsOnly) throw new PackStreamError('E_USAGE', '--documents-only writes a document stream, not a tar; give DEST (- for stdout) instead of --tar');
  if (o.documentsOnly && o.copyExternal) throw new PackStreamError('E_USAGE', 'a document stream carries no files: --documents-only cannot be combined with --copy-external');
  if (o.documentsOnly && !o.documents) throw new PackStreamError('E_USAGE', '--documents-only and --no-documents contradict each other');
  const selections = [o.all, o.query?.length, o.uids?.length].filter(Boolean).length;
  if (selections !== 1) throw new PackStreamError('E_USAGE', 'choose exactly one of --all, -q/--query or --uids');
  const modes = [o.copyExternal, o.fillExternal, o.ignoreExternal].filter(Boolean).length;
  if (modes > 1) throw new PackStreamError('E_USAGE', 'choose at most one of --copy-external, --fill-external and --ignore-external');
  if (o.fillExternal && !o.documents) throw new PackStreamError('E_USAGE', '--fill-external puts the data into the documents; it cannot be combined with --no-documents');

  const limits = { filesPerDatum: o.maxFilesPerDatum, filesPerResource: o.maxFilesPerResource, datumBytes: o.maxDatumBytes };
  const handlers = await applyHandlerOptions(new HandlerRegistry(limits), o.handler ?? []);
  let query: Doc | undefined;
  if (o.query?.length) {
    query = combineQueries(o.query.map(parseQuery));
  }
  const uids = o.uids?.length ? await readUids(o.uids) : undefined;

  const external = o.copyExternal ? 'copy' : o.ignoreExternal ? 'ignore' : o.fillExternal ? 'fill' : 'manifest';
  const apiKey = o.apiKey ?? process.env.TILED_API_KEY;
  const catalog = await openSource(source, { external, concurrency: o.concurrency, ...(apiKey ? { apiKey } : {}), http: { headers: parseHeaders(o.header) } });
  if (query) {
    try {
      // $text and $where are for the server to judge when the source is MongoDB.
      validateQuery(query, !(catalog as { queriesOnServer?: boolean }).queriesOnServer);
    } catch (e) {
      await catalog.close?.();
      throw e;
    }
  }
  const view = progressView(process.stderr, uids?.length);
  const opts: ExportOptions = {
    format: o.format,
    external,
    noDocuments: !o.documents,
    strict: Boolean(o.strict),
    handlers,
    concurrency: o.concurrency,
    manifestChunk: o.manifestChunk,
    onProgress: (p) => view.update(p),
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
  } finally {
    view.stop();
    await catalog.close?.();
  }
  const err = process.stderr;
  for (const w of summary.warnings) err.write(`pack-stream: warning: ${w}\n`);
  err.write(
    `pack-stream: packed ${summary.runsDone} run(s), ${summary.documents} documents (${formatBytes(summary.bytes)})` +
      (summary.filesCopied ? `, copied ${summary.filesCopied} external files (${formatBytes(summary.bytesCopied)})` : '') +
      (summary.datumsFilled ? `, filled ${summary.datumsFilled} datums (${formatBytes(summary.bytesFilled)})` : '') +
      ` into ${summary.dir}\n`,
  );
  if (summary.failures.length) {
    const where = sink instanceof DirectorySink ? ` (listed in ${summary.dir}/failures.tsv)` : sink.wholePack ? ' (listed in failures.tsv in the archive)' : '';
    err.write(`pack-stream: ${summary.failures.length} run(s) failed${where}:\n`);
    for (const f of summary.failures) err.write(`  ${printable(f.uid)}: ${printable(f.message)}\n`);
    return 1;
  }
  return 0;
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('pack-stream')
    .description('Move Bluesky runs between catalogs, portable packs and MongoDB (a successor to databroker-pack)')
    .version(VERSION, '-V, --version')
    .showHelpAfterError()
    .exitOverride()
    .option('--max-record-size <bytes>', 'largest msgpack record or JSONL line read from a run file, e.g. 512M or 4G (default 2G); larger ones fail their run with E_LIMIT', (v: string) => {
      const n = parseByteSize(v);
      if (n === undefined) throw new PackStreamError('E_USAGE', `--max-record-size: '${v}' is not a size such as 512M or 4G`);
      return n;
    })
    .hook('preAction', (cmd) => {
      const max = cmd.opts<{ maxRecordSize?: number }>().maxRecordSize;
      if (max !== undefined) setLimits({ maxRecordBytes: max });
    });

  program
    .command('pack')
    .description('export runs from SOURCE into a pack directory DEST, or as a tar stream (DEST -, or --tar FILE), or as a plain document stream (--documents-only)')
    .argument('[source]', 'catalog name, catalog YAML (FILE or FILE#NAME), pack directory, directory or glob of run files, mongodb://host/db URI')
    .argument('[dest]', 'a new or empty directory; - for a tar stream on stdout')
    .option('--list-catalogs', 'list the catalogs Python databroker knows by name, and exit')
    .option('--all', 'every run in the catalog')
    .option('-q, --query <query>', 'a query (JSON or Python dict syntax, TimeRange(...)); repeatable, combined with $and', collect)
    .option('--uids <file>', 'file of uids (or - for stdin); partial uids, scan_ids and negative indexes work; repeatable', collect)
    .option('--copy-external', 'copy external files into the pack')
    .option('--fill-external', 'read external data (detector frames) into the events; no resources, datums or external files')
    .option('--ignore-external', 'neither list nor copy external files')
    .addOption(new Option('--format <format>', 'document file format').choices(['msgpack', 'jsonl']).default('msgpack').argParser((v) => v.toLowerCase()))
    .option('--no-documents', 'write no documents, only manifests and catalog.yml')
    .option('--limit <n>', 'at most N runs', positiveInt('--limit'))
    .option('--strict', 'stop at the first failure')
    .option('--salt <salt>', 'salt for the resource root hashes (random per pack by default)')
    .option('--handler <spec=builtin|module>', 'handle resource spec SPEC with built-in BUILTIN (e.g. AD_HDF5_lambda=AD_HDF5) or with the handler a JS/TS module exports (e.g. MY_SPEC=./my-handler.js); repeatable', collect)
    .option('--concurrency <n>', 'external file copies, or datum reads with --fill-external, in flight', positiveInt('--concurrency'), 4)
    .option('--manifest-chunk <n>', 'entries per manifest file', positiveInt('--manifest-chunk'), 10000)
    .option('--api-key <key>', 'API key for a Tiled SOURCE (default: $TILED_API_KEY); sent as a header, never printed')
    .option('--tar <file>', 'write the pack as one POSIX tar to FILE (- for stdout) instead of a directory')
    .option('--documents-only', 'write the plain document stream (JSONL lines or msgpack records, run after run) to DEST (- for stdout): no manifests, files or catalog.yml')
    .option('--pack-path <dir>', 'for a tar: the directory catalog.yml names as the pack\'s place (where it will be extracted); default: the working directory')
    .option('--header <header>', "for a SOURCE that is an http(s):// URL: a request header such as 'Authorization: Bearer …' (repeatable; never printed)", collect)
    .option('--spool-cap <MiB>', 'for a tar or document stream: MiB of a run held in memory before it is spooled to a temporary file', positiveInt('--spool-cap'), 32)
    .option('--max-files-per-datum <n>', 'refuse a datum whose resource kwargs list more files', positiveInt('--max-files-per-datum'), DEFAULT_LIMITS.filesPerDatum)
    .option('--max-files-per-resource <n>', "refuse a resource whose datums list more files", positiveInt('--max-files-per-resource'), DEFAULT_LIMITS.filesPerResource)
    .option('--max-datum-bytes <n>', 'with --fill-external, refuse a datum whose data is larger', positiveInt('--max-datum-bytes'), DEFAULT_LIMITS.datumBytes)
    .action(async (source: string | undefined, dest: string | undefined, o: PackCliOptions) => {
      if (o.listCatalogs) {
        process.exitCode = await printCatalogList();
        return;
      }
      if (source === undefined || (dest === undefined && o.tar === undefined)) throw new PackStreamError('E_USAGE', 'pack needs SOURCE and DEST, or SOURCE and --tar FILE (or --list-catalogs)');
      process.exitCode = await runPack(source, dest, o);
    });
  registerUnpack(program);
  registerCatalogCommands(program);
  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit 0; usage errors were already printed by commander
      return e.exitCode === 0 ? 0 : 2;
    }
    const usage = e instanceof PackStreamError && e.code === 'E_USAGE';
    process.stderr.write(`pack-stream: ${printable(describeError(e))}\n`);
    if (!(e instanceof PackStreamError)) process.stderr.write(`${(e as Error).stack ?? ''}\n`);
    return usage ? 2 : 1;
  }
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === new URL(`file://${(await import('node:fs')).realpathSync(process.argv[1])}`).href;
if (invokedDirectly) {
  // A reader that goes away (`| head`) is not an error: stop writing, quietly.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') process.stdout.destroy();
    else process.stderr.write(`pack-stream: stdout: ${e.message}\n`);
  });
  process.exitCode = await main();
  // Whatever is still pending (a read that will never be written, a copy queued behind a closed
  // pipe) must not keep a finished command alive: leave within a second.
  setTimeout(() => process.exit(), 1000).unref();
}
