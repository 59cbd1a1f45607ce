/**
 * `pack-stream unpack inplace PATH NAME [--no-merge]`: databroker-unpack's
 * inplace mode. The catalog YAML goes into intake's user data directory; the
 * pack is not touched. A taken name without merging exits 1 and lists the
 * catalogs that exist, as databroker-unpack does (on stderr here).
 */
import type { Command } from 'commander';
import { discoverCatalogs } from '../catalogs/discovery.js';
import { PackStreamError, describeError } from '../errors.js';
import { unpackInplace } from '../pipeline/unpack-inplace.js';

async function runInplace(packPath: string, name: string, o: { merge: boolean }): Promise<number> {
  let result;
  try {
    result = await unpackInplace(packPath, name, { merge: o.merge });
  } catch (e) {
    if (!(e instanceof PackStreamError) || e.code !== 'E_EXISTS') throw e;
    const names = (await discoverCatalogs()).catalogs.map((c) => c.name);
    process.stderr.write(
      `pack-stream: ${describeError(e)}\n` +
        `The catalogs that exist on this system are:\n${names.map((n) => `  ${n}\n`).join('')}` +
        (o.merge ? 'Unpack again with a new name.\n' : 'Unpack again with a new name, or without --no-merge to merge into it.\n'),
    );
    return 1;
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
  return unpack;
}
