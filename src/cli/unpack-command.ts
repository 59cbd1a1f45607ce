/**
 * `pack-stream unpack inplace PATH NAME [--no-merge]` and
 * `pack-stream unpack mongo_normalized PATH NAME [--mongo-uri URI] [--no-merge]`:
 * databroker-unpack's two modes. The catalog YAML goes into intake's user
 * data directory; the pack is not touched. A taken name without merging exits
 * 1 and lists the catalogs that exist, as databroker-unpack does (on stderr
 * here). mongo_normalized prints conflicting documents with both versions.
 */
import type { Command } from 'commander';
import { discoverCatalogs } from '../catalogs/discovery.js';
import { PackStreamError, describeError } from '../errors.js';
import { stringifyPyJson } from '../codec/pyjson.js';
import { unpackInplace } from '../pipeline/unpack-inplace.js';
import { DEFAULT_MONGO_URI, unpackMongoNormalized } from '../pipeline/unpack-mongo.js';
import { hidePassword } from '../sources/mongo-connection.js';
import { printable } from '../transforms/safe-names.js';

/** A taken catalog name: list the names that exist, as databroker-unpack does (on stderr here). */
async function reportTaken(e: unknown, merge: boolean): Promise<number> {
  if (!(e instanceof PackStreamError) || e.code !== 'E_EXISTS') throw e;
  const names = (await discoverCatalogs()).catalogs.map((c) => c.name);
  process.stderr.write(
    `pack-stream: ${describeError(e)}\n` +
      `The catalogs that exist on this system are:\n${names.map((n) => `  ${n}\n`).join('')}` +
      (merge ? 'Unpack again with a new name.\n' : 'Unpack again with a new name, or without --no-merge to merge into it.\n'),
  );
  return 1;
}

async function runInplace(packPath: string, name: string, o: { merge: boolean }): Promise<number> {
  let result;
  try {
    result = await unpackInplace(packPath, name, { merge: o.merge });
  } catch (e) {
    return reportTaken(e, o.merge);
  }
  process.stderr.write(`pack-stream: ${result.merged ? 'merged the pack into' : 'placed'} catalog '${result.name}' at ${result.file}\n`);
  return 0;
}

/** Adds `unpack` (with its `inplace` subcommand) to the program; returns it so other modes can be added. */
export function registerUnpack(program: Command): Command {
  const unpack = program.command('unpack').description('make a pack known to databroker by name (databroker-unpack)');
  unpack
    .command('inplace')
    .description("read the pack's documents where they are: write databroker_unpack_NAME.yml into intake's user catalog directory")
    .argument('<path>', 'pack directory')
    .argument('<name>', 'catalog name')
    .option('--no-merge', 'fail if a catalog of that name exists, instead of merging into it')
    .action(async (packPath: string, name: string, o: { merge: boolean }) => {
      process.exitCode = await runInplace(packPath, name, o);
    });
  unpack
    .command('mongo_normalized')
    .description("copy the pack's runs into MongoDB (idempotently) and write databroker_unpack_NAME.yml pointing at the database")
    .argument('<path>', 'pack directory (or any pack SOURCE: run files, catalog YAML or name, mongodb:// URI)')
    .argument('<name>', 'catalog name')
    .option('--mongo-uri <uri>', 'MongoDB URI naming a database; {database} becomes databroker_NAME', DEFAULT_MONGO_URI)
    .option('--no-merge', 'fail if a catalog of that name exists, instead of merging into it')
    .option('--strict', 'stop at the first run that fails')
    .action(async (packPath: string, name: string, o: MongoCliOptions) => {
      process.exitCode = await runMongo(packPath, name, o);
    });
  return unpack;
}

interface MongoCliOptions {
  mongoUri: string;
  merge: boolean;
  strict?: boolean;
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

async function runMongo(source: string, name: string, o: MongoCliOptions): Promise<number> {
  const err = process.stderr;
  const status = statusLine(err);
  let result;
  try {
    result = await unpackMongoNormalized(source, name, {
      merge: o.merge,
      mongoUri: o.mongoUri,
      strict: Boolean(o.strict),
      onProgress: (p) => status.update(`unpacking: ${p.runsDone} run(s), ${p.inserted} documents inserted, ${p.duplicates} already stored${p.runsFailed ? `, ${p.runsFailed} failed` : ''}`),
    });
  } catch (e) {
    status.stop();
    return reportTaken(e, o.merge);
  }
  status.stop();
  for (const w of result.warnings) err.write(`pack-stream: warning: ${w}\n`);
  const t = result.totals;
  err.write(
    `pack-stream: stored ${result.runsDone} run(s) in ${hidePassword(result.uri)}: ${t.inserted} documents inserted, ${t.duplicates} already stored (identical)` +
      (t.dropped ? `, ${t.dropped} stream_resource/stream_datum documents dropped (mongo_normalized has no place for them)` : '') +
      '\n',
  );
  if (result.wroteCatalog) err.write(`pack-stream: ${result.merged ? 'merged into' : 'placed'} catalog '${result.name}' at ${result.file}\n`);
  for (const c of result.conflicts) {
    err.write(
      `pack-stream: conflict in ${c.collection} ${c.key}: a different document is stored\n` +
        `  stored:   ${c.existing ? stringifyPyJson(c.existing) : '(not found)'}\n` +
        `  incoming: ${stringifyPyJson(c.incoming)}\n`,
    );
  }
  if (result.failures.length) {
    err.write(`pack-stream: ${result.failures.length} run(s) failed:\n`);
    for (const f of result.failures) err.write(`  ${printable(f.uid)}: ${f.code}: ${printable(f.message.replace(/^E_[A-Z_]+: /, ''))}\n`);
    return 1;
  }
  return 0;
}
