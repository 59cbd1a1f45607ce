/**
 * A real Tiled server for the tests: `tiled serve config` from the pinned
 * virtualenv of scripts/tiled-env.sh (tiled 0.2.20, bluesky-tiled-plugins
 * 2.0.12, databroker 2.0.2), on 127.0.0.1 and a free port, with a SQLite
 * catalog, a file + DuckDB writable storage and a readable detector folder in a
 * temporary directory, an API key, and optionally bluesky-tiled-plugins'
 * json-seq exporter or databroker 2's MongoAdapter as the tree. Killed when
 * the test process exits.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from './files.js';
import { REPO } from './paths.js';
import { CACHE } from './python.js';

export const TILED_PYTHON = path.join(CACHE, 'tiled-venv', 'bin', 'python');

/**
 * The Tiled venv's python, built by scripts/tiled-env.sh when missing (a few
 * minutes, once); false (skip) only when there is no Python 3.11 to build it with.
 */
export function tiledPythonOrSkip(): string | false {
  const base = process.env.PACK_STREAM_PYTHON ?? 'python3.11';
  const probe = spawnSync(base, ['-c', 'import sys; sys.exit(sys.version_info[:2] != (3, 11))']);
  if (probe.status !== 0 && !existsSync(TILED_PYTHON)) return false;
  const out = execFileSync('bash', [path.join(REPO, 'scripts', 'tiled-env.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop()!;
}

export const TILED_SKIP = (): string | false => (tiledPythonOrSkip() ? false : 'no Python 3.11 to build the Tiled virtualenv (scripts/tiled-env.sh) with');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface TiledServerOptions {
  /** Configure bluesky-tiled-plugins' json-seq exporter for BlueskyRun nodes. */
  exporter?: boolean;
  /** `expose_raw_assets: false` (asset downloads answer 403). */
  noRawAssets?: boolean;
  /** Serve databroker 2's MongoAdapter over this MongoDB database URI instead of a SQL catalog. */
  mongoUri?: string;
  apiKey?: string;
}

export interface TiledServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  apiKey: string;
  dir: string;
  /** Detector files must be written here (a readable storage root). */
  detectorDir: string;
  python: string;
  log(): string;
  stop(): Promise<void>;
}

export async function startTiled(python: string, opts: TiledServerOptions = {}): Promise<TiledServer> {
  const dir = tempDir('pack-stream-tiled-');
  const detectorDir = path.join(dir, 'detectors');
  mkdirSync(path.join(dir, 'data'), { recursive: true });
  mkdirSync(detectorDir, { recursive: true });
  const apiKey = opts.apiKey ?? randomBytes(16).toString("hex"); // Tiled accepts only alphanumeric keys
  const tree = opts.mongoUri
    ? ['    tree: databroker.mongo_normalized:MongoAdapter.from_uri', '    args:', `      uri: ${JSON.stringify(opts.mongoUri)}`]
    : [
        '    tree: catalog',
        '    args:',
        `      uri: ${JSON.stringify(`sqlite:///${dir}/catalog.db`)}`,
        '      writable_storage:',
        `        - ${JSON.stringify(`file://${dir}/data`)}`,
        `        - ${JSON.stringify(`duckdb:///${dir}/storage.duckdb`)}`,
        '      readable_storage:',
        `        - ${JSON.stringify(detectorDir)}`,
        '      init_if_not_exists: true',
      ];
  const config = [
    'authentication:',
    `  single_user_api_key: ${JSON.stringify(apiKey)}`,
    '  allow_anonymous_access: false',
    'trees:',
    '  - path: /',
    ...tree,
    ...(opts.exporter ? ['media_types:', '  BlueskyRun:', '    application/json-seq: bluesky_tiled_plugins.exporters:json_seq_exporter'] : []),
    ...(opts.noRawAssets ? ['expose_raw_assets: false'] : []),
    '',
  ].join('\n');
  const configFile = path.join(dir, 'config.yml');
  writeFileSync(configFile, config);
  const port = await freePort();
  const tiled = path.join(path.dirname(python), 'tiled');
  const child = spawn(tiled, ['serve', 'config', configFile, '--host', '127.0.0.1', '--port', String(port)], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TMPDIR: dir, PYTHONWARNINGS: 'ignore' },
  });
  const kill = () => child.kill('SIGKILL');
  process.on('exit', kill);
  let log = '';
  const keep = (d: Buffer) => (log = (log + d).slice(-20000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (exited !== undefined) throw new Error(`tiled serve exited (${exited}): ${log}`);
    try {
      const r = await fetch(`${url}/api/v1/`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      kill();
      throw new Error(`tiled serve did not answer in 120 s: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    apiKey,
    dir,
    detectorDir,
    python,
    log: () => log,
    async stop() {
      if (exited === undefined) {
        const done = new Promise((r) => child.once('exit', r));
        kill();
        await done;
      }
      process.off('exit', kill);
    },
  };
}

export interface LoadedRun {
  uid: string;
  key: 'count_scalar' | 'scan_baseline' | 'count_npy' | 'scan_hdf5' | 'count_array';
  scan_id: number;
}

/** Write real RunEngine runs into the server through TiledWriter (scripts/tiled_load.py). */
export function loadRuns(server: TiledServer, opts: { repeat?: number; points?: number } = {}): LoadedRun[] {
  const args = [path.join(REPO, 'scripts', 'tiled_load.py'), server.url, '--api-key', server.apiKey, '--detector-dir', server.detectorDir];
  if (opts.repeat) args.push('--repeat', String(opts.repeat));
  if (opts.points) args.push('--points', String(opts.points));
  const r = spawnSync(server.python, args, { encoding: 'utf8', env: { ...process.env, PYTHONWARNINGS: 'ignore' }, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`tiled_load.py failed (${r.status}): ${r.stderr}\nserver log: ${server.log()}`);
  return (JSON.parse(r.stdout) as { runs: LoadedRun[] }).runs;
}

/** GET a Tiled route with the server's API key, as JSON. */
export async function tiledJson(server: TiledServer, route: string): Promise<Record<string, unknown>> {
  const r = await fetch(`${server.url}${route}`, { headers: { Authorization: `Apikey ${server.apiKey}` } });
  if (!r.ok) throw new Error(`GET ${route}: HTTP ${r.status} ${await r.text()}`);
  return (await r.json()) as Record<string, unknown>;
}

export interface RunDump {
  start: Record<string, unknown>;
  stop: Record<string, unknown>;
  streams: Record<string, { seq_num: number[]; time: number[]; data: Record<string, unknown>; timestamps: Record<string, unknown> }>;
}

function dump(python: string, args: string[], env: NodeJS.ProcessEnv = {}): Record<string, RunDump> {
  const r = spawnSync(python, [path.join(REPO, 'scripts', 'tiled_dump.py'), ...args], { encoding: 'utf8', env: { ...process.env, PYTHONWARNINGS: 'ignore', ...env }, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`tiled_dump.py ${args[0]} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, RunDump>;
}

/** The runs as the server holds them (tiled's Python client): start, stop, tables, arrays. */
export function dumpServer(server: TiledServer, uids: string[]): Record<string, RunDump> {
  return dump(server.python, ['server', server.url, server.apiKey, ...uids]);
}

/** The same runs as Python databroker 1.2.5 reads them from a pack (filled). */
export function dumpPack(python: string, catalogYml: string, uids: string[]): Record<string, RunDump> {
  return dump(python, ['pack', catalogYml, ...uids], { TMPDIR: path.dirname(catalogYml) });
}

export interface CuttingProxy {
  url: string;
  /** Responses cut so far. */
  cuts: number;
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of `target` that cuts the first response to every
 * URL matching `cut` after half its body (the socket is destroyed), as a
 * flaky network or a restarting load balancer would.
 */
export async function cuttingProxy(target: string, cut: RegExp): Promise<CuttingProxy> {
  const seen = new Set<string>();
  const state = { cuts: 0 };
  const server = http.createServer((req, res) => {
    const up = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      const key = `${req.url} ${req.headers.range ?? ''}`;
      if (!cut.test(req.url ?? '') || seen.has(key)) {
        upRes.pipe(res);
        return;
      }
      seen.add(key);
      const total = Number(upRes.headers['content-length'] ?? 0);
      let sent = 0;
      upRes.on('data', (chunk: Buffer) => {
        if (res.destroyed) return;
        const room = Math.max(1, Math.floor(total / 2)) - sent;
        if (total > 0 && chunk.length >= room) {
          res.write(chunk.subarray(0, Math.max(0, room)));
          state.cuts++;
          res.socket?.destroy();
          upRes.destroy();
          return;
        }
        sent += chunk.length;
        res.write(chunk);
        if (total === 0 && sent > 0) {
          // No length announced (a generated stream): cut after the first chunk.
          state.cuts++;
          res.socket?.destroy();
          upRes.destroy();
        }
      });
      upRes.on('end', () => res.end());
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get cuts() {
      return state.cuts;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
