/**
 * What the three commands (`pack-stream`, `databroker-pack`, `databroker-unpack`)
 * share: argparse-style option abbreviations, one-line usage errors, and the exit
 * codes (0 success, 1 failure, 2 usage). Only commander and the error types are
 * loaded here, so `--version` and `--help` start fast; each command loads the
 * library when its action runs.
 */
import { Command, CommanderError, Option } from 'commander';
import { PackStreamError, describeError } from '../errors.js';
import { printable } from '../transforms/safe-names.js';
import { DEFAULT_LIMITS as HANDLER_LIMITS } from '../handlers/types.js';

/** Error codes that mean "the command line asks for something impossible": exit 2. */
const USAGE_CODES = new Set(['E_USAGE', 'E_TARGET']);
const FROM_COMMAND_LINE = new WeakSet<object>();

export function usageError(message: string, subject?: string): PackStreamError {
  return new PackStreamError('E_USAGE', message, subject === undefined ? {} : { subject });
}

/**
 * Runs `fn` on a value the user typed (a `-q` query): whatever error it raises
 * keeps its code and message but exits 2, as bad usage. The same error raised by
 * a catalog's own YAML, or by a server, is a failure (exit 1).
 */
export function fromCommandLine<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof PackStreamError) FROM_COMMAND_LINE.add(e);
    throw e;
  }
}

function takesValue(o: Option): boolean {
  return o.required || o.optional;
}

function optionsOf(cmd: Command): Option[] {
  return cmd.options as Option[];
}

/**
 * Expands unambiguous prefixes of long options (`--copy` → `--copy-external`,
 * `--lim=2` → `--limit=2`) as Python's argparse does, walking into subcommands as
 * they appear. An ambiguous prefix is a usage error listing the candidates; an
 * unknown option is left for commander, which rejects it with a suggestion.
 */
export function expandAbbreviations(root: Command, args: readonly string[]): string[] {
  const out: string[] = [];
  let cmd = root;
  let valueNext = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (valueNext) {
      out.push(a);
      valueNext = false;
      continue;
    }
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    const opts = optionsOf(cmd);
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a : a.slice(0, eq);
      const longs = [...opts.map((o) => o.long).filter((l): l is string => Boolean(l)), '--help'];
      let long = longs.find((l) => l === name);
      if (!long) {
        const hits = [...new Set(longs.filter((l) => l.startsWith(name)))];
        if (hits.length > 1) throw usageError(`ambiguous option: ${name} could match ${hits.join(', ')}`, name);
        long = hits[0];
      }
      if (!long) {
        out.push(a);
        continue;
      }
      const opt = opts.find((o) => o.long === long);
      out.push(eq < 0 ? long : long + a.slice(eq));
      if (eq < 0 && opt && takesValue(opt)) valueNext = true;
      continue;
    }
    if (a.startsWith('-') && a.length === 2) {
      const opt = opts.find((o) => o.short === a);
      out.push(a);
      if (opt && takesValue(opt)) valueNext = true;
      continue;
    }
    const sub = cmd.commands.find((c) => c.name() === a || c.aliases().includes(a));
    if (sub) cmd = sub;
    out.push(a);
  }
  return out;
}

/** commander's "error: unknown option '--x'\n(Did you mean --y?)" as one line. */
function oneLine(text: string): string {
  return text
    .trim()
    .replace(/^error: /, '')
    .replace(/\s*\n\s*\(Did you mean/g, ' (did you mean')
    .replace(/\s*\n\s*/g, ' ');
}

/** Settings every command and subcommand gets: errors on one line, no help after them, no process.exit(). */
export function configure(cmd: Command, name: string): Command {
  cmd
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ outputError: (text, write) => write(`${name}: ${oneLine(text)}\n`) });
  return cmd;
}

/** Applies configure() to a command and every subcommand under it. */
export function configureAll(cmd: Command, name: string): Command {
  configure(cmd, name);
  for (const sub of cmd.commands) configureAll(sub, name);
  return cmd;
}

/**
 * Parses and runs a program; returns the exit code. Help and version exit 0;
 * usage errors (commander's, and PackStreamErrors with a usage code) exit 2; any
 * other failure prints one line and exits 1 (a stack trace only for a bug).
 */
export async function runProgram(name: string, program: Command, argv: readonly string[]): Promise<number> {
  configureAll(program, name);
  process.exitCode = undefined;
  try {
    const args = expandAbbreviations(program, argv.slice(2));
    await program.parseAsync([...argv.slice(0, 2), ...args]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      if (e.code === 'commander.help' || e.code === 'commander.executeSubCommandAsync') return 2;
      return e.exitCode === 0 ? 0 : 2;
    }
    const usage = e instanceof PackStreamError && (USAGE_CODES.has(e.code) || FROM_COMMAND_LINE.has(e));
    process.stderr.write(`${name}: ${printable(describeError(e))}\n`);
    if (!(e instanceof PackStreamError)) process.stderr.write(`${(e as Error).stack ?? ''}\n`);
    return usage ? 2 : 1;
  }
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw usageError(`${name} must be a positive integer, got '${v}'`);
    return n;
  };
}

/** `--format`: msgpack or jsonl, any case (as databroker-pack's `type=str.lower`); anything else is refused. */
export function formatArg(v: string): 'msgpack' | 'jsonl' {
  const f = v.toLowerCase();
  if (f !== 'msgpack' && f !== 'jsonl') throw usageError(`--format must be msgpack or jsonl, got '${v}'`);
  return f;
}

/** A fresh Command with the shared settings. */
export function newProgram(name: string): Command {
  return configure(new Command(name), name);
}

/** Options shared by `pack-stream pack` and `databroker-pack`. */
export function addPackOptions(cmd: Command): Command {
  return cmd
    .option('--list-catalogs', 'list the catalogs Python databroker knows by name, and exit')
    .option('--all', 'every run in the catalog')
    .option('-q, --query <query>', 'a query (JSON or Python dict syntax, TimeRange(...)); repeatable, combined with $and', collect)
    .option('--uids <file>', 'file of uids (or - for stdin); partial uids, scan_ids and negative indexes work; repeatable', collect)
    .option('--copy-external', 'copy external files into the pack')
    .option('--fill-external', 'read external data (detector frames) into the events; no resources, datums or external files')
    .option('--ignore-external', 'neither list nor copy external files')
    .addOption(new Option('--format <format>', 'document file format: msgpack or jsonl').default('msgpack').argParser(formatArg))
    .option('--no-documents', 'write no documents, only manifests and catalog.yml')
    .option('--limit <n>', 'at most N runs (newest first)', positiveInt('--limit'))
    .option('--strict', 'stop at the first failure')
    .option('--salt <salt>', 'salt for the resource root hashes (random per pack by default)')
    .option('--handler-registry <dict>', "databroker-pack's form: \"{'SPEC': 'package.module.HandlerClass'}\"; known Python handler classes map onto the built-in readers")
    .option('--handler <spec=builtin|module>', 'handle resource spec SPEC with built-in BUILTIN (e.g. AD_HDF5_lambda=AD_HDF5) or with the handler a JS/TS module exports (e.g. MY_SPEC=./my-handler.js); repeatable', collect)
    .option('--concurrency <n>', 'external file copies, or datum reads with --fill-external, in flight', positiveInt('--concurrency'), 4)
    .option('--manifest-chunk <n>', 'entries per manifest file', positiveInt('--manifest-chunk'), 10000)
    .option('--api-key <key>', 'API key for a Tiled SOURCE (default: $TILED_API_KEY); sent as a header, never printed')
    .option('--header <header>', "for a SOURCE that is an http(s):// URL: a request header such as 'Authorization: Bearer …' (repeatable; never printed)", collect)
    .option('--max-files-per-datum <n>', 'refuse a datum whose resource kwargs list more files', positiveInt('--max-files-per-datum'), HANDLER_LIMITS.filesPerDatum)
    .option('--max-files-per-resource <n>', 'refuse a resource whose datums list more files', positiveInt('--max-files-per-resource'), HANDLER_LIMITS.filesPerResource)
    .option('--max-datum-bytes <n>', 'with --fill-external, refuse a datum whose data is larger', positiveInt('--max-datum-bytes'), HANDLER_LIMITS.datumBytes);
}

/** A reader that goes away (`| head`) is not an error: stop writing, quietly. */
export function quietOnClosedStdout(name: string): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') process.stdout.destroy();
    else process.stderr.write(`${name}: stdout: ${e.message}\n`);
  });
}

/**
 * Whatever is still pending once a command is done (a read that will never be
 * written, a copy queued behind a closed pipe) must not keep it alive: leave
 * within a second.
 */
export function leaveSoon(): void {
  setTimeout(() => process.exit(), 1000).unref();
}
