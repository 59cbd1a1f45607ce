#!/usr/bin/env node
/**
 * The `pack-stream` command: a thin shell over the library. Data goes to
 * stdout only; messages, progress and the summary go to stderr. Exit codes:
 * 0 success, 1 failure (including any failed run), 2 bad usage.
 *
 * Only the option definitions live here; every action imports what it needs
 * when it runs, so `--version` and `--help` load neither MongoDB nor HDF5.
 * The installed command is bin/pack-stream.cjs, which checks the Node version
 * before loading this module.
 */
import type { Command } from 'commander';
import { PackStreamError } from '../errors.js';
import { VERSION } from '../version.js';
import { parseByteSize, setLimits } from '../limits.js';
import { addPackOptions, collect, leaveSoon, newProgram, positiveInt, quietOnClosedStdout, runProgram } from './program.js';
import type { PackCliOptions } from './pack-command.js';

export function buildProgram(): Command {
  const program = newProgram('pack-stream')
    .description('Move Bluesky runs between catalogs, portable packs and MongoDB (a successor to databroker-pack)')
    .version(VERSION, '-V, --version')
    .option('--max-record-size <bytes>', 'largest msgpack record or JSONL line read from a run file, e.g. 512M or 4G (default 2G); larger ones fail their run with E_LIMIT', (v: string) => {
      const n = parseByteSize(v);
      if (n === undefined) throw new PackStreamError('E_USAGE', `--max-record-size: '${v}' is not a size such as 512M or 4G`);
      return n;
    })
    .hook('preAction', (cmd) => {
      const max = cmd.opts<{ maxRecordSize?: number }>().maxRecordSize;
      if (max !== undefined) setLimits({ maxRecordBytes: max });
    });

  addPackOptions(
    program
      .command('pack')
      .description('export runs from SOURCE (newest first) into a pack directory DEST, or as a tar stream (DEST -, or --tar FILE), or as a plain document stream (--documents-only)')
      .argument('[source]', 'catalog name, catalog YAML (FILE or FILE#NAME), pack directory, directory or glob of run files, mongodb://host/db URI, Tiled URL, or - (stdin)')
      .argument('[dest]', 'a new or empty directory; - for a tar stream on stdout'),
  )
    .option('--tar <file>', 'write the pack as one POSIX tar to FILE (- for stdout) instead of a directory')
    .option('--documents-only', 'write the plain document stream (JSONL lines or msgpack records, run after run) to DEST (- for stdout): no manifests, files or catalog.yml')
    .option('--pack-path <dir>', "for a tar: the directory catalog.yml names as the pack's place (where it will be extracted); default: the working directory")
    .option('--spool-cap <MiB>', 'for a tar or document stream: MiB of a run held in memory before it is spooled to a temporary file', positiveInt('--spool-cap'), 32)
    .action(async (source: string | undefined, dest: string | undefined, o: PackCliOptions & { listCatalogs?: boolean }) => {
    if (o.listCatalogs) {
      const { printCatalogList } = await import('./catalog-commands.js');
      process.exitCode = await printCatalogList();
      return;
    }
    if (source === undefined || (dest === undefined && o.tar === undefined)) throw new PackStreamError('E_USAGE', 'pack needs SOURCE and DEST, or SOURCE and --tar FILE (or --list-catalogs)');
    const { runPack } = await import('./pack-command.js');
    process.exitCode = await runPack('pack-stream', source, dest, o);
  });

  const unpack = program.command('unpack').description('make a pack known to databroker by name (databroker-unpack)');
  unpack
    .command('inplace')
    .description("read the pack's documents where they are: write databroker_unpack_NAME.yml into intake's user catalog directory")
    .argument('<path>', 'pack directory, or - for a tar pack on stdin (with --dir)')
    .argument('<name>', 'catalog name')
    .option('--no-merge', 'fail if a catalog of that name exists, instead of merging into it')
    .option('--dir <dir>', 'with PATH - or a URL: the new or empty directory the pack is extracted or downloaded into')
    .option('--header <header>', 'for a pack URL: a request header (repeatable; never printed)', collect)
    .action(async (packPath: string, name: string, o: { merge: boolean; dir?: string; header?: string[] }) => {
      const { runInplace } = await import('./unpack-command.js');
      process.exitCode = await runInplace('pack-stream', packPath, name, o);
    });
  unpack
    .command('mongo_normalized')
    .description("copy the pack's runs into MongoDB (idempotently) and write databroker_unpack_NAME.yml pointing at the database")
    .argument('<path>', 'pack directory (or any pack SOURCE: run files, catalog YAML or name, mongodb:// URI, pack URL, or - for a tar pack or document stream on stdin)')
    .argument('<name>', 'catalog name')
    .option('--mongo-uri <uri>', 'MongoDB URI naming a database; {database} becomes databroker_NAME (default mongodb://localhost:27017/{database})')
    .option('--no-merge', 'fail if a catalog of that name exists, instead of merging into it')
    .option('--strict', 'stop at the first run that fails')
    .option('--external-dir <dir>', "with PATH - or a URL: where the pack's external files are put (kept; root_map points there)")
    .option('--header <header>', 'for a pack URL: a request header (repeatable; never printed)', collect)
    .action(async (packPath: string, name: string, o: { mongoUri?: string; merge: boolean; strict?: boolean; externalDir?: string; header?: string[] }) => {
      const { runMongo } = await import('./unpack-command.js');
      process.exitCode = await runMongo('pack-stream', packPath, name, o);
    });

  program
    .command('list-catalogs')
    .description('list the catalogs Python databroker knows by name (intake catalog directories, INTAKE_PATH, databroker v0 configs)')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const { printCatalogList } = await import('./catalog-commands.js');
      process.exitCode = await printCatalogList(o);
    });

  program
    .command('inspect')
    .description('summarise the runs of a pack or any SOURCE: one line per run (newest first), then totals')
    .argument('<source>', 'pack directory, catalog name, catalog YAML, directory or glob of run files, pack URL, or - (a tar pack or document stream on stdin)')
    .option('--json', 'machine-readable output')
    .option('--handler <spec=builtin>', 'list files of resource spec SPEC with built-in rule BUILTIN; repeatable', collect)
    .option('--header <header>', 'for an http(s):// SOURCE: a request header (repeatable; never printed)', collect)
    .action(async (source: string, o: { json?: boolean; handler?: string[]; header?: string[] }) => {
      const { runInspect } = await import('./catalog-commands.js');
      process.exitCode = await runInspect(source, o);
    });

  program
    .command('verify')
    .description('check that a pack is whole: manifests, document files, runs, root_map, copied external files')
    .argument('<path>', 'pack directory, pack URL, or - for a tar pack on stdin')
    .option('--json', 'machine-readable report')
    .option('--handler <spec=builtin>', 'check copied files of resource spec SPEC with built-in rule BUILTIN; repeatable', collect)
    .option('--header <header>', 'for an http(s):// pack: a request header (repeatable; never printed)', collect)
    .option('--allow-failures', "runs listed in the pack's failures.tsv are warnings, not problems")
    .action(async (dir: string, o: { json?: boolean; handler?: string[]; header?: string[]; allowFailures?: boolean }) => {
      const { runVerify } = await import('./catalog-commands.js');
      process.exitCode = await runVerify(dir, o);
    });
  return program;
}

export function main(argv: readonly string[] = process.argv): Promise<number> {
  return runProgram('pack-stream', buildProgram(), argv);
}

// `node dist/cli/main.js ...` still works (the tests and benches run it so).
const invokedDirectly = process.argv[1] !== undefined && import.meta.url === new URL(`file://${(await import('node:fs')).realpathSync(process.argv[1])}`).href;
if (invokedDirectly) {
  quietOnClosedStdout('pack-stream');
  process.exitCode = await main();
  leaveSoon();
}
