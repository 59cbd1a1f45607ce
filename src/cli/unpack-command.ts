/**
 * `pack-stream unpack inplace PATH NAME [--no-merge]` and
 * `pack-stream unpack mongo_normalized PATH NAME [--mongo-uri URI] [--no-merge]`:
 * databroker-unpack's two modes. The catalog YAML goes into intake's user
 * data directory; the pack is not touched. A taken name without merging exits
 * 1 and lists the catalogs that exist, as databroker-unpack does (on stderr
 * here). mongo_normalized prints conflicting documents with both versions.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { dumpYaml } from '../sinks/catalog-file.js';
import { loadYamlFile } from '../sources/catalog-yaml.js';
import type { BrokenRunRef } from '../sources/file-catalog.js';
import { landStream, peekStream, streamKind } from '../sources/stdin-source.js';
import { extractTar } from '../sources/tar-extract.js';
import { landHttpPack } from '../sources/http-pack.js';
import { isHttpUrl, parseHeaders } from '../net/http.js';
import { discoverCatalogs } from '../catalogs/discovery.js';
import { PackStreamError, describeError } from '../errors.js';
import { stringifyPyJson } from '../codec/pyjson.js';
import { checkName, unpackInplace } from '../pipeline/unpack-inplace.js';
import { DEFAULT_MONGO_URI, unpackMongoNormalized } from '../pipeline/unpack-mongo.js';
import { hidePassword, setMongoWaitNotice } from '../sources/mongo-connection.js';
import { printable } from '../transforms/safe-names.js';

/** A taken catalog name: list the names that exist, as databroker-unpack does (on stderr here). */
async function reportTaken(cmd: string, e: unknown, merge: boolean): Promise<number> {
  if (!(e instanceof PackStreamError) || e.code !== 'E_EXISTS') throw e;
  const names = (await discoverCatalogs()).catalogs.map((c) => c.name);
  process.stderr.write(
    `${cmd}: ${describeError(e)}\n` +
      `The catalogs that exist on this system are:\n${names.map((n) => `  ${n}\n`).join('')}` +
      (merge ? 'Unpack again with a new name.\n' : 'Unpack again with a new name, or without --no-merge to merge into it.\n'),
  );
  return 1;
}

export async function runInplace(cmd: string, packPath: string, name: string, o: UnpackCliOptions & { dir?: string; header?: string[] }): Promise<number> {
  if (isHttpUrl(packPath)) {
    if (!o.dir) throw new PackStreamError('E_USAGE', 'unpack inplace URL NAME needs --dir DIR: where to put the pack read over HTTP');
    checkName(name);
    packPath = await downloadPack(packPath, o.dir, parseHeaders(o.header));
    process.stderr.write(`${cmd}: downloaded the pack into ${packPath}\n`);
  } else if (packPath === '-') {
    if (!o.dir) throw new PackStreamError('E_USAGE', 'unpack inplace - NAME needs --dir DIR: where to extract the tar pack read from stdin');
    checkName(name);
    packPath = await extractPackFromStdin(o.dir);
    process.stderr.write(`${cmd}: extracted the pack from stdin into ${packPath}\n`);
  } else if (o.dir) {
    throw new PackStreamError('E_USAGE', '--dir is for a tar pack on stdin (PATH -) or a pack URL');
  }
  let result;
  try {
    result = await unpackInplace(packPath, name, { merge: o.merge });
  } catch (e) {
    return reportTaken(cmd, e, o.merge);
  }
  reportPlaced(cmd, o, result);
  return 0;
}

/** A tar pack on stdin, extracted into `dir` (new or empty) with every hostile-entry check; it must hold catalog.yml. */
async function extractPackFromStdin(dir: string): Promise<string> {
  const { head, all } = await peekStream(process.stdin as AsyncIterable<Buffer>, 512);
  if (streamKind(head) !== 'tar') throw new PackStreamError('E_USAGE', 'unpack inplace - reads a tar pack (pack-stream pack SRC -) from stdin, and stdin holds something else');
  const r = await extractTar(all, dir);
  if (!existsSync(path.join(r.dir, 'catalog.yml'))) {
    await rm(r.dir, { recursive: true, force: true });
    throw new PackStreamError('E_BAD_ARCHIVE', 'the archive on stdin holds no catalog.yml, so it is not a whole pack; nothing was kept');
  }
  return r.dir;
}

/**
 * A pack over HTTP landed inside `dir` (new or empty), so every file is downloaded
 * straight onto the target's file system and only the target must be writable; its
 * top-level names are then renamed into `dir`, catalog.yml last.
 */
async function downloadPack(url: string, dir: string, headers: Record<string, string>): Promise<string> {
  const dest = path.resolve(dir);
  const there = await readdir(dest).catch(() => null);
  if (there && there.length) throw new PackStreamError('E_TARGET', `${dest} is not empty; give a new or empty directory`, { subject: dest });
  await mkdir(dest, { recursive: true });
  let landed;
  try {
    landed = await landHttpPack(url, { headers, tmpDir: dest });
  } catch (e) {
    if (!there) await rmdir(dest).catch(() => {});
    throw e;
  }
  try {
    const top = (await readdir(landed.dir)).sort((a, b) => Number(a === 'catalog.yml') - Number(b === 'catalog.yml'));
    for (const n of top) await rename(path.join(landed.dir, n), path.join(dest, n));
    await rmdir(landed.dir);
  } catch (e) {
    await landed.cleanup();
    throw new PackStreamError('E_TARGET', `cannot place the pack at ${dest}: ${(e as Error).message}`, { subject: dest, cause: e });
  }
  await landed.client.close().catch(() => {});
  return dest;
}

export interface UnpackCliOptions {
  merge: boolean;
  /** databroker-unpack's report: `Placed configuration file at PATH` on stdout. */
  placedLine?: boolean;
}

export interface MongoCliOptions extends UnpackCliOptions {
  mongoUri?: string | undefined;
  strict?: boolean;
  externalDir?: string;
  header?: string[];
}

/** The catalog file written: databroker-unpack's stdout line, or pack-stream's note on stderr. */
function reportPlaced(cmd: string, o: UnpackCliOptions, r: { merged: boolean; name: string; file: string }): void {
  if (o.placedLine) process.stdout.write(`Placed configuration file at ${r.file}\n`);
  else process.stderr.write(`${cmd}: ${r.merged ? 'merged the pack into' : 'placed'} catalog '${r.name}' at ${r.file}\n`);
}

/** One `\r`-rewritten status line on a terminal, nothing otherwise. */
function statusLine(stream: NodeJS.WriteStream): { update(text: string): void; stop(): void } {
  if (!stream.isTTY) return { update() {}, stop() {} };
  let last = 0;
  let shown = false;
  return {
    update(text) {
      const now = Date.now();
      if (now - last < 250) return;
      last = now;
      shown = true;
      stream.write(`\r\x1b[2K${text}`);
    },
    stop() {
      if (shown) stream.write('\r\x1b[2K');
    },
  };
}

export async function runMongo(cmd: string, source: string, name: string, o: MongoCliOptions): Promise<number> {
  if (source !== '-' && !isHttpUrl(source)) {
    if (o.externalDir) throw new PackStreamError('E_USAGE', '--external-dir is for a tar pack on stdin (PATH -) or a pack URL');
    return runMongoFrom(cmd, source, name, o, []);
  }
  checkName(name);
  // With --external-dir the pack is landed inside it, so its external files are extracted
  // straight onto that file system and placed by rename, never copied a second time.
  const ext = o.externalDir ? path.resolve(o.externalDir) : undefined;
  const madeExt = ext !== undefined && !existsSync(ext);
  if (ext) await mkdir(ext, { recursive: true });
  const tmp = ext ? { tmpDir: ext } : {};
  let landed;
  try {
    landed = source === '-' ? await landStream(process.stdin, tmp) : { ...(await landHttpPack(source, { headers: parseHeaders(o.header), ...tmp })), kind: 'http' as const, lost: [] };
  } catch (e) {
    if (madeExt) await rmdir(ext).catch(() => {});
    throw e;
  }
  try {
    if (landed.kind === 'tar' || landed.kind === 'http') await placeExternalFiles(landed.dir, o.externalDir);
    return await runMongoFrom(cmd, landed.dir, name, o, landed.lost);
  } finally {
    await landed.cleanup();
    if (madeExt && ext) await rmdir(ext).catch(() => {}); // only if nothing was placed there
  }
}

/**
 * A landed tar pack's external files go to `externalDir` (they must outlive
 * the temporary directory), and its catalog.yml's root_map is pointed there.
 */
async function placeExternalFiles(packDir: string, externalDir: string | undefined): Promise<void> {
  const ext = path.join(packDir, 'external_files');
  if (!existsSync(ext)) return;
  if (!externalDir) throw new PackStreamError('E_USAGE', 'the pack on stdin carries external files; give --external-dir DIR to keep them');
  const target = path.resolve(externalDir);
  await mkdir(target, { recursive: true });
  const hashes = await readdir(ext);
  for (const h of hashes) {
    if (existsSync(path.join(target, h))) throw new PackStreamError('E_TARGET', `${path.join(target, h)} exists already; give an --external-dir without it`, { subject: target });
  }
  for (const h of hashes) await moveDir(path.join(ext, h), path.join(target, h));
  const file = path.join(packDir, 'catalog.yml');
  const doc = (await loadYamlFile(file)) as { sources?: { packed_catalog?: { args?: { root_map?: Record<string, string> } } } };
  const rootMap = doc.sources?.packed_catalog?.args?.root_map ?? {};
  for (const [k, v] of Object.entries(rootMap)) {
    const m = /^external_files\/([^/]+)$/.exec(String(v));
    if (m && hashes.includes(m[1]!)) rootMap[k] = path.join(target, m[1]!);
  }
  await writeFile(file, dumpYaml(doc));
}

/** rename, or copy and remove across file systems. */
async function moveDir(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await cp(from, to, { recursive: true, errorOnExist: true, force: false });
    await rm(from, { recursive: true, force: true });
  }
}

async function runMongoFrom(cmd: string, source: string, name: string, o: MongoCliOptions, lost: BrokenRunRef[]): Promise<number> {
  const err = process.stderr;
  const status = statusLine(err);
  setMongoWaitNotice((m) => err.write(`${cmd}: ${m}\n`));
  let result;
  try {
    result = await unpackMongoNormalized(source, name, {
      merge: o.merge,
      mongoUri: o.mongoUri ?? DEFAULT_MONGO_URI,
      strict: Boolean(o.strict),
      onProgress: (p) => status.update(`unpacking: ${p.runsDone} run(s), ${p.inserted} documents inserted, ${p.duplicates} already stored${p.runsFailed ? `, ${p.runsFailed} failed` : ''}`),
    });
  } catch (e) {
    status.stop();
    return reportTaken(cmd, e, o.merge);
  }
  status.stop();
  for (const w of result.warnings) err.write(`${cmd}: warning: ${w}\n`);
  const t = result.totals;
  err.write(
    `${cmd}: stored ${result.runsDone} run(s) in ${hidePassword(result.uri)}: ${t.inserted} documents inserted, ${t.duplicates} already stored (identical)` +
      (t.dropped ? `, ${t.dropped} stream_resource/stream_datum documents dropped (mongo_normalized has no place for them)` : '') +
      '\n',
  );
  if (result.wroteCatalog) reportPlaced(cmd, o, result);
  for (const c of result.conflicts) {
    err.write(
      `${cmd}: conflict in ${c.collection} ${c.key}: a different document is stored\n` +
        `  stored:   ${c.existing ? stringifyPyJson(c.existing) : '(not found)'}\n` +
        `  incoming: ${stringifyPyJson(c.incoming)}\n`,
    );
  }
  const failures = [...result.failures, ...lost.map((r) => ({ uid: r.uid, code: r.error.code, message: r.error.message }))];
  if (failures.length) {
    err.write(`${cmd}: ${failures.length} run(s) failed:\n`);
    for (const f of failures) err.write(`  ${printable(f.uid)}: ${f.code}: ${printable(f.message.replace(/^E_[A-Z_]+: /, ''))}\n`);
    return 1;
  }
  return 0;
}
