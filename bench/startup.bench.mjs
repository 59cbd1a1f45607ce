/**
 * Cold start of the installed commands next to `node -e 0` (the floor: Node itself).
 * `npm run bench:startup -- --runs 20`. Each command runs --runs times in a fresh
 * process; the median wall time and peak RSS are printed, with the ratio to Node's.
 * --version and --help load only commander and the option definitions (lazy imports),
 * so they should stay within a small multiple of the floor; `pack --all` on an empty
 * directory is shown for comparison: it loads the library (MongoDB driver, HDF5, YAML).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { opt, repo, timed } from './common.mjs';

const runs = Number(opt('runs', '20'));
const bin = (name) => path.join(repo, 'bin', `${name}.cjs`);
const empty = mkdtempSync(path.join(os.tmpdir(), 'startup-bench-'));
const cases = [
  ['node -e 0', ['-e', '0']],
  ['pack-stream --version', [bin('pack-stream'), '--version']],
  ['pack-stream pack --help', [bin('pack-stream'), 'pack', '--help']],
  ['databroker-pack -V', [bin('databroker-pack'), '-V']],
  ['databroker-unpack --help', [bin('databroker-unpack'), '--help']],
  ['pack-stream inspect EMPTY_DIR (loads the library)', [bin('pack-stream'), 'inspect', empty]],
];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
let floor;
console.log(`cold start, median of ${runs} runs (node ${process.version}, ${os.cpus().length} cores)`);
for (const [label, argv] of cases) {
  const secs = [];
  const rss = [];
  for (let i = 0; i < runs; i++) {
    const r = timed(process.execPath, argv);
    secs.push(r.secs);
    rss.push(r.rss);
  }
  const s = median(secs);
  floor ??= s;
  console.log(`${label.padEnd(50)} ${(s * 1000).toFixed(0).padStart(5)} ms  ${(s / floor).toFixed(2).padStart(5)}x  ${median(rss).toFixed(0).padStart(4)} MiB`);
}
rmSync(empty, { recursive: true, force: true });
