/**
 * `databroker-pack` and `databroker-unpack`: databroker-pack 0.3's two commands,
 * with its command lines (no subcommand; options before or after positionals;
 * `--list-catalogs` printing bare names; `Placed configuration file at ...` on
 * stdout; `-V`), run by pack-stream. The README's compatibility section lists
 * where they still differ from Python's, and why.
 */
import { Argument, type Command } from 'commander';
import { PackStreamError } from '../errors.js';
import { VERSION } from '../version.js';
import { addPackOptions, newProgram, runProgram } from './program.js';
import type { PackCliOptions } from './pack-command.js';

async function listCatalogs(name: string): Promise<void> {
  const { printCatalogList } = await import('./catalog-commands.js');
  process.exitCode = await printCatalogList({ bare: true, name });
}

export function buildDatabrokerPack(): Command {
  const program = newProgram('databroker-pack')
    .description('Pack up some Bluesky Runs into portable files (pack-stream, a drop-in for Python databroker-pack)')
    .version(VERSION, '-V, --version', 'show the version and exit')
    .argument('[catalog]', 'catalog name (also any pack-stream SOURCE: catalog YAML, pack directory, run files, mongodb:// URI)')
    .argument('[directory]', 'path to output directory (new or empty)');
  addPackOptions(program).action(async (catalog: string | undefined, directory: string | undefined, o: PackCliOptions & { listCatalogs?: boolean }) => {
    if (o.listCatalogs) return listCatalogs('databroker-pack');
    if (catalog === undefined || directory === undefined) throw new PackStreamError('E_USAGE', 'the following arguments are required: catalog, directory');
    const { runPack } = await import('./pack-command.js');
    process.exitCode = await runPack('databroker-pack', catalog, directory, { ...o, nameFirst: true });
  });
  return program;
}

export function buildDatabrokerUnpack(): Command {
  const program = newProgram('databroker-unpack')
    .description('Install a Catalog of packed Bluesky Runs (pack-stream, a drop-in for Python databroker-unpack)')
    .version(VERSION, '-V, --version', 'show the version and exit')
    .addArgument(new Argument('[how]', 'read documents in place (from files) or load them into a database').choices(['inplace', 'mongo_normalized']))
    .argument('[path]', 'path to pack directory')
    .argument('[name]', 'name of new catalog')
    .option('--no-merge', 'fail if a catalog of that name exists, instead of merging into it')
    .option('--mongo-uri <uri>', "MongoDB URI; default 'mongodb://localhost:27017/{database}', {database} becoming databroker_NAME")
    .option('--list-catalogs', 'list allowed values for catalog and exit')
    .action(async (how: string | undefined, packPath: string | undefined, name: string | undefined, o: { merge: boolean; mongoUri?: string; listCatalogs?: boolean }) => {
      if (o.listCatalogs) return listCatalogs('databroker-unpack');
      if (how === undefined || packPath === undefined || name === undefined) {
        const missing = ['how', 'path', 'name'].filter((_, i) => [how, packPath, name][i] === undefined);
        throw new PackStreamError('E_USAGE', `the following arguments are required: ${missing.join(', ')}`);
      }
      const { runInplace, runMongo } = await import('./unpack-command.js');
      const opts = { merge: o.merge, placedLine: true };
      process.exitCode =
        how === 'inplace' ? await runInplace('databroker-unpack', packPath, name, opts) : await runMongo('databroker-unpack', packPath, name, { ...opts, mongoUri: o.mongoUri });
    });
  return program;
}

export function databrokerPackMain(argv: readonly string[] = process.argv): Promise<number> {
  return runProgram('databroker-pack', buildDatabrokerPack(), argv);
}

export function databrokerUnpackMain(argv: readonly string[] = process.argv): Promise<number> {
  return runProgram('databroker-unpack', buildDatabrokerUnpack(), argv);
}
