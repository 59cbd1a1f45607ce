/**
 * Where the installed commands start (bin/*.cjs import this after checking the
 * Node version): picks the command's program, keeps `| head` quiet, and sets
 * the exit code.
 */
import { leaveSoon, quietOnClosedStdout } from './program.js';

export type CommandName = 'pack-stream' | 'databroker-pack' | 'databroker-unpack';

export async function run(command: CommandName, argv: readonly string[] = process.argv): Promise<void> {
  quietOnClosedStdout(command);
  let code: number;
  if (command === 'pack-stream') code = await (await import('./main.js')).main(argv);
  else if (command === 'databroker-pack') code = await (await import('./dropin.js')).databrokerPackMain(argv);
  else code = await (await import('./dropin.js')).databrokerUnpackMain(argv);
  process.exitCode = code;
  leaveSoon();
}
