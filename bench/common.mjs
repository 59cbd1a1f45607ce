/** What every bench needs: its options, the built CLI, the cache dir, and timed child runs. */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(repo, 'dist', 'cli', 'main.js');
export const cache = process.env.PACK_STREAM_CACHE ?? path.join(os.homedir(), '.cache', 'pack-stream');

const args = process.argv.slice(2);
/** The value after `--name` on the command line, else `dflt`. */
export function opt(name, dflt) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
}

/** Run a command under /usr/bin/time: wall seconds, CPU seconds (user + system), peak RSS in MiB, and its stderr. Throws if it fails. */
export function timed(cmd, argv, env = {}) {
  const t = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', cmd, ...argv], { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, ...env } });
  const secs = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const [kb, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { secs, cpu: user + sys, rss: kb / 1024, stderr: r.stderr };
}
