#!/usr/bin/env node
/**
 * Packing from a Tiled server next to packing the same runs from local files.
 *
 * Starts `tiled serve catalog --temp` (the pinned Tiled virtualenv,
 * scripts/tiled-env.sh) on 127.0.0.1, loads it with scripts/tiled_load.py
 * (RunEngine runs through TiledWriter: scalars, a baseline stream, NPY_SEQ and
 * AD_HDF5 images; `--repeat` sets of 4 runs, `--points` events each), then:
 *   1. packs everything from Tiled over HTTP with --copy-external (runs rebuilt
 *      from the Arrow tables, assets downloaded);
 *   2. packs that pack again from local files with --copy-external.
 * Reports documents/s and MB/s (documents + external files) for both, and peak RSS.
 *
 *   npm run build && node bench/tiled.bench.mjs [--repeat 10] [--points 50] [--dir /tmp]
 *   (or give a running server: --url http://host:port --api-key KEY)
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CLI, opt, repo, timed } from './common.mjs';

const REPEAT = Number(opt('repeat', 10));
const POINTS = Number(opt('points', 50));
const BASE = opt('dir', os.tmpdir());

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function summary(stderr) {
  const m = /packed (\d+) run\(s\), (\d+) documents \(([\d.]+) (B|KiB|MiB|GiB)\)(?:, copied (\d+) external files \(([\d.]+) (B|KiB|MiB|GiB)\))?/.exec(stderr);
  if (!m) throw new Error(`no summary in: ${stderr}`);
  const unit = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };
  return { runs: Number(m[1]), docs: Number(m[2]), bytes: Number(m[3]) * unit[m[4]] + (m[5] ? Number(m[6]) * unit[m[7]] : 0), files: Number(m[5] ?? 0) };
}

const work = mkdtempSync(path.join(BASE, 'pack-stream-tiled-bench-'));
let server;
try {
  let url = opt('url');
  let key = opt('api-key');
  if (!url) {
    const python = spawnSync('bash', [path.join(repo, 'scripts', 'tiled-env.sh')], { encoding: 'utf8' }).stdout.trim().split('\n').pop();
    key = 'benchkey0123456789';
    const port = await freePort();
    const detectors = path.join(work, 'detectors');
    server = spawn(path.join(path.dirname(python), 'tiled'), ['serve', 'catalog', '--temp', '--api-key', key, '-r', detectors, '--host', '127.0.0.1', '--port', String(port)], { stdio: 'ignore', env: { ...process.env, TMPDIR: work } });
    url = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${url}/api/v1/`)).ok) break;
      } catch {}
      if (i > 480) throw new Error('tiled serve did not start');
      await new Promise((r) => setTimeout(r, 250));
    }
    const t0 = Date.now();
    const load = spawnSync(python, [path.join(repo, 'scripts', 'tiled_load.py'), url, '--api-key', key, '--detector-dir', detectors, '--repeat', String(REPEAT), '--points', String(POINTS)], { encoding: 'utf8', env: { ...process.env, PYTHONWARNINGS: 'ignore' } });
    if (load.status !== 0) throw new Error(load.stderr);
    console.log(`loaded ${REPEAT * 4} runs of ${POINTS} events through TiledWriter in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const env = { TILED_API_KEY: key };
  const fromTiled = path.join(work, 'from-tiled');
  const a = timed(process.execPath, [CLI, 'pack', `tiled+${url}`, fromTiled, '--all', '--copy-external', '--salt', 's'], env);
  const fromFiles = path.join(work, 'from-files');
  const b = timed(process.execPath, [CLI, 'pack', fromTiled, fromFiles, '--all', '--copy-external', '--salt', 's']);
  const row = (name, r) => {
    const s = summary(r.stderr);
    return `${name.padEnd(22)} ${String(s.runs).padStart(5)} ${String(s.docs).padStart(8)} ${(s.docs / r.secs).toFixed(0).padStart(9)} ${(s.bytes / 1e6 / r.secs).toFixed(2).padStart(8)} ${r.secs.toFixed(2).padStart(7)} ${r.rss.toFixed(0).padStart(8)}`;
  };
  console.log(`${'source'.padEnd(22)} ${'runs'.padStart(5)} ${'docs'.padStart(8)} ${'docs/s'.padStart(9)} ${'MB/s'.padStart(8)} ${'secs'.padStart(7)} ${'RSS MiB'.padStart(8)}`);
  console.log(row('Tiled over HTTP', a));
  console.log(row('local files (a pack)', b));
} finally {
  server?.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
