/**
 * A small catalog whose runs point at external files (NPY_SEQ), for the
 * tar, stream and HTTP tests: `runs/` holds the run files, `data/` the files.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './files.js';
import { makeArray, writeNpy } from './detector.js';
import { scalarRun, writeMsgpackRun } from './runs.js';

export function travelCatalog(opts: { runs?: number; events?: number; bigBytes?: number } = {}): { dir: string; runs: string; data: string } {
  const dir = tempDir();
  const runs = path.join(dir, 'runs');
  const data = path.join(dir, 'data');
  mkdirSync(runs);
  for (let i = 0; i < (opts.runs ?? 3); i++) {
    const uid = `run-${i}-${'x'.repeat(20)}`;
    const root = path.join(data, `root${i % 2}`);
    writeMsgpackRun(path.join(runs, `${uid}.msgpack`), scalarRun(uid, { scanId: i + 1, t0: 1600000000 + i * 100, events: opts.events ?? 3, resource: { root, path: `deep/${'long-directory-name-'.repeat(5)}/img${i}` } }));
    const n = opts.bigBytes ? Math.ceil(opts.bigBytes / 8) : 16 + i;
    writeNpy(path.join(root, 'deep', 'long-directory-name-'.repeat(5), `img${i}_0.npy`), makeArray('<f8', [n], (k) => k * (i + 1)));
  }
  writeFileSync(path.join(dir, 'README'), 'fixture\n');
  return { dir, runs, data };
}
