/**
 * The commands that look at catalogs and packs without changing them:
 * `list-catalogs` (what Python databroker knows by name), `inspect` (what a
 * source holds, run by run) and `verify` (is a pack whole). Data goes to
 * stdout (text, or JSON with --json); warnings and summaries go to stderr.
 */
import { discoverCatalogs, type DiscoveredCatalog } from '../catalogs/discovery.js';
import { PackStreamError } from '../errors.js';
import { InspectTotalizer, inspectCatalog, type RunSummary } from '../pipeline/inspect.js';
import { verifyPack, type VerifyProblem } from '../pipeline/verify.js';
import { openSource } from '../sources/open.js';
import { landTarPack } from '../sources/stdin-source.js';
import { landHttpPack } from '../sources/http-pack.js';
import { isHttpUrl, parseHeaders, safeUrl } from '../net/http.js';
import { setMongoWaitNotice } from '../sources/mongo-connection.js';
import { HandlerRegistry } from '../transforms/handlers.js';
import { applyHandlerOptions } from '../handlers/user-module.js';
import { printable } from '../transforms/safe-names.js';
import { formatBytes } from './progress.js';

/** `--handler SPEC=BUILTIN|./module.js` options as a registry. */
export function handlerRegistry(specs: string[] = []): Promise<HandlerRegistry> {
  return applyHandlerOptions(new HandlerRegistry(), specs);
}

function table(rows: string[][]): string {
  // Names come from YAML files anyone may have written: no terminal escapes or line breaks.
  rows = rows.map((r) => r.map(printable));
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd() + '\n').join('');
}

/** list-catalogs (and pack --list-catalogs): one line per catalog, name, driver, data location, defining file. */
export async function printCatalogList(opts: { json?: boolean; bare?: boolean; name?: string } = {}): Promise<number> {
  const found = await discoverCatalogs();
  for (const w of found.warnings) process.stderr.write(`${opts.name ?? 'pack-stream'}: warning: ${printable(w)}\n`);
  if (opts.bare) {
    // databroker-pack's --list-catalogs: bare names, one per line, for scripts to loop over.
    process.stdout.write(found.catalogs.map((c) => `${printable(c.name)}\n`).join(''));
    return 0;
  }
  if (opts.json) {
    const strip = (c: DiscoveredCatalog) => ({ name: c.name, driver: c.driver, kind: c.kind, location: c.location, file: c.file });
    process.stdout.write(`${JSON.stringify({ catalogs: found.catalogs.map(strip), shadowed: found.shadowed.map(strip), searched: found.searched }, null, 2)}\n`);
    return 0;
  }
  if (found.catalogs.length === 0) {
    const s = found.searched;
    process.stderr.write(`pack-stream: no catalogs found (searched ${[s.userDataDir, s.globalDataDir, ...s.catalogPath.filter(Boolean), ...s.v0ConfigDirs].join(', ')})\n`);
    return 0;
  }
  process.stdout.write(table(found.catalogs.map((c) => [c.name, c.driver, c.location || '-', c.file])));
  return 0;
}

/** One line per run; fields come from the run's documents, so control characters are shown escaped. */
function runLine(r: RunSummary): string {
  return printable(runText(r)) + '\n';
}

function runText(r: RunSummary): string {
  if (r.error && r.documents === 0) return `${r.uid}  ERROR ${r.error.message}`;
  const streams = Object.entries(r.streams).map(([k, n]) => `${k}:${n}`).join(',') || 'no-streams';
  const ext = r.external;
  let extText = `${ext.files} external file${ext.files === 1 ? '' : 's'} (${formatBytes(ext.bytes)})`;
  if (ext.missing) extText += `, ${ext.missing} missing`;
  if (ext.unlisted) extText += `, ${ext.unlisted} unlisted${ext.unknownSpecs.length ? ` (spec ${ext.unknownSpecs.join(', ')})` : ''}`;
  if (ext.unsafe) extText += `, ${ext.unsafe} refused (outside their root or with control characters)`;
  const fields = [
    r.uid,
    `scan_id=${r.scan_id ?? '-'}`,
    r.plan_name ?? '-',
    r.start_time ?? '-',
    streams,
    r.exit_status ?? 'no-stop',
    extText,
  ];
  return `${fields.join('  ')}${r.error ? `  ERROR ${r.error.message}` : ''}`;
}

interface InspectCliOptions {
  json?: boolean;
  handler?: string[];
  header?: string[];
  allowFailures?: boolean;
}

export async function runInspect(source: string, o: InspectCliOptions): Promise<number> {
  const handlers = await handlerRegistry(o.handler);
  setMongoWaitNotice((m) => process.stderr.write(`pack-stream: ${m}\n`));
  const catalog = await openSource(source, { http: { headers: parseHeaders(o.header) } });
  const total = new InspectTotalizer();
  const out = process.stdout;
  try {
    if (o.json) out.write(`{"source":${JSON.stringify(catalog.description)},"runs":[`);
    for await (const r of inspectCatalog(catalog, { handlers })) {
      if (o.json) out.write(`${total.totals.runs ? ',' : ''}\n${JSON.stringify(r)}`);
      else out.write(runLine(r));
      total.add(r);
    }
  } finally {
    await catalog.close?.();
  }
  const t = total.totals;
  if (o.json) out.write(`\n],"totals":${JSON.stringify(t)}}\n`);
  else {
    out.write(
      `total: ${t.runs} run${t.runs === 1 ? '' : 's'}, ${t.events} event${t.events === 1 ? '' : 's'}, ${t.documents} documents, ` +
        `${t.externalFiles} external file${t.externalFiles === 1 ? '' : 's'} (${formatBytes(t.externalBytes)})` +
        (t.missingExternalFiles ? `, ${t.missingExternalFiles} missing` : '') +
        (t.failedRuns ? `, ${t.failedRuns} unreadable run${t.failedRuns === 1 ? '' : 's'}` : '') +
        '\n',
    );
  }
  return t.failedRuns ? 1 : 0;
}

export async function runVerify(dir: string, o: InspectCliOptions): Promise<number> {
  const handlers = await handlerRegistry(o.handler);
  const onProblem = o.json ? undefined : (p: VerifyProblem) => process.stdout.write(`${p.kind}: ${printable(p.message)}\n`);
  const landed = dir === '-' ? await landTarPack(process.stdin) : isHttpUrl(dir) ? await landHttpPack(dir, { headers: parseHeaders(o.header) }) : null;
  let report;
  try {
    report = await verifyPack(landed?.dir ?? dir, { handlers, ...(onProblem ? { onProblem } : {}), ...(o.allowFailures ? { allowFailures: true } : {}) });
  } finally {
    await landed?.cleanup();
  }
  if (landed) report.pack = dir === '-' ? 'stdin' : safeUrl(dir);
  for (const w of report.warnings) process.stderr.write(`pack-stream: warning: ${printable(w)}\n`);
  if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  const outside = report.externalFilesOutside ? `; ${report.externalFilesOutside} listed outside the pack, not checked` : '';
  process.stderr.write(
    `pack-stream: ${report.pack}: ${report.runs} run(s) in ${report.documentFiles} document file(s), ${report.documents} documents, ` +
      `${report.externalFilesChecked} external file check(s)${outside}: ` +
      (report.ok ? 'OK\n' : `${report.problems.length} problem(s)\n`),
  );
  return report.ok ? 0 : 1;
}
