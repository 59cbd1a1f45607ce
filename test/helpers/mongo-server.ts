/**
 * A real MongoDB-wire server for tests.
 *
 * - If `MONGODB_URI` is set, that server is used as is (`kind: 'external'`);
 *   `stop()`, `kill()` and `restart()` do not touch it.
 * - Otherwise FerretDB (built by `scripts/ferretdb.sh`, SQLite backend) is started
 *   on 127.0.0.1 on a free port, with its data, state and log in a fresh temp dir
 *   (`kind: 'ferretdb'`).
 *
 * The FerretDB process runs in its own process group under a tiny `sh` watchdog
 * that SIGKILLs it when the test process's end of a pipe closes, so the server
 * dies with the test process even if that is SIGKILLed. An `exit` hook and
 * SIGINT/SIGTERM/SIGHUP hooks kill it as well.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, openSync, closeSync, rmSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MongoClient } from 'mongodb';

export type MongoServerKind = 'ferretdb' | 'external';

export interface MongoServer {
  /** Server URI without a database name, e.g. `mongodb://127.0.0.1:41234/`. */
  uri: string;
  /** The same server with `name` as the database in the path. */
  dbUri(name: string): string;
  /** SIGKILL the server (if ours) and remove its temp dir. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL the server (if ours), keeping its data, for "server goes away" tests. */
  kill(): void;
  /** (Re)start the server on the same port and data dir; kills it first if running. */
  restart(): Promise<void>;
  kind: MongoServerKind;
  /** FerretDB only: the temp dir (data in `data/`, log in `ferretdb.log`). */
  dir?: string;
  /** FerretDB only: path of the server log file. */
  logFile?: string;
  /** FerretDB only: the pid of the FerretDB process group leader, while running. */
  readonly pid?: number | undefined;
}

export interface StartMongoOptions {
  /** Ignore `MONGODB_URI` even if set (always start FerretDB). */
  ignoreEnvUri?: boolean;
  /** FerretDB binary; default `$FERRETDB_BIN`, else the scripts/ferretdb.sh cache location. */
  binary?: string;
  /** How long to wait for `ping` to succeed; default 30 s. */
  startTimeoutMs?: number;
  /** FerretDB `--log-level`; default `info`. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Extra FerretDB command-line flags. */
  extraArgs?: string[];
}

const DEFAULT_START_TIMEOUT_MS = 30_000;

/** Where scripts/ferretdb.sh puts the binary. */
export function defaultFerretdbPath(): string {
  const cache = process.env.PACK_STREAM_CACHE || path.join(os.homedir(), '.cache', 'pack-stream');
  return path.join(cache, 'bin', 'ferretdb');
}

/** The FerretDB binary to use: `$FERRETDB_BIN`, else the scripts/ferretdb.sh location. */
export function ferretdbBinary(): string {
  return process.env.FERRETDB_BIN || defaultFerretdbPath();
}

function isExecutable(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why Mongo tests cannot run, or `false` if they can (`MONGODB_URI` is set or the
 * FerretDB binary exists). Usable directly as a tap `skip` option:
 * `t.test('x', { skip: mongoSkipReason() }, ...)`.
 */
export function mongoSkipReason(): string | false {
  if (process.env.MONGODB_URI) return false;
  const bin = ferretdbBinary();
  if (isExecutable(bin)) return false;
  return `no MongoDB server: set MONGODB_URI, or run scripts/ferretdb.sh to build FerretDB (looked for ${bin})`;
}

export function mongoAvailable(): boolean {
  return mongoSkipReason() === false;
}

/**
 * Call at the top of a test file: if no server is available, marks the whole
 * file as skipped (`t.plan(0, reason)`) and returns false.
 */
export function skipUnlessMongo(t: { plan(n: number, comment?: string): void }): boolean {
  const reason = mongoSkipReason();
  if (reason === false) return true;
  t.plan(0, reason);
  return false;
}

/** Put `name` as the database of a `mongodb://` / `mongodb+srv://` URI (keeps the query). */
export function withDatabase(uri: string, name: string): string {
  const m = /^(mongodb(?:\+srv)?:\/\/)([^/?#]*)(\/[^?#]*)?(\?[^#]*)?$/.exec(uri);
  if (!m) throw new Error(`not a mongodb:// URI: ${uri}`);
  return `${m[1]}${m[2]}/${encodeURIComponent(name)}${m[4] ?? ''}`;
}

// ---------------------------------------------------------------------------
// Child-process bookkeeping: never let a server outlive the test process.

const liveGroups = new Set<number>();
/** Temp dirs of servers not stop()ped yet; removed when the process exits. */
const liveDirs = new Set<string>();
let hooksInstalled = false;

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function killAllServers(): void {
  for (const pid of liveGroups) killGroup(pid);
  liveGroups.clear();
  for (const dir of liveDirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
    } catch {
      // best effort
    }
  }
  liveDirs.clear();
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllServers);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllServers();
      // `once` already removed us; if nobody else handles the signal, die of it as usual.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.once(sig, onSignal);
  }
}

// Runs "$@" (FerretDB) as its child and
// - SIGKILLs it when our stdin (a pipe from the test process) reaches EOF, i.e.
//   when the test process is gone, however it died;
// - SIGKILLs it on SIGUSR1 (that is how kill() works: FerretDB dies hard, but its
//   parent still reaps it, so no zombies are left to init).
const WATCHDOG = `
child=
trap 'kill -KILL "$child" 2>/dev/null' USR1
exec 3<&0
"$@" </dev/null &
child=$!
( while read -r _ <&3; do :; done; kill -KILL "$child" 2>/dev/null ) &
watcher=$!
exec 3<&-
while :; do
  wait "$child"
  status=$?
  kill -0 "$child" 2>/dev/null || break
done
kill "$watcher" 2>/dev/null
wait "$watcher" 2>/dev/null
exit "$status"
`;

// ---------------------------------------------------------------------------

async function readTail(file: string, maxBytes = 4000): Promise<string> {
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - maxBytes);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      return buf.toString('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    return `(could not read ${file}: ${(err as Error).message})`;
  }
}

async function readFrom(file: string, offset: number): Promise<string> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    if (size <= offset) return '';
    const buf = Buffer.alloc(size - offset);
    await fh.read(buf, 0, buf.length, offset);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function pingOnce(uri: string): Promise<void> {
  const client = new MongoClient(uri, {
    serverSelectionTimeoutMS: 1000,
    connectTimeoutMS: 1000,
    socketTimeoutMS: 2000,
  });
  try {
    await client.db('admin').command({ ping: 1 });
  } finally {
    await client.close().catch(() => {});
  }
}

export async function startMongo(opts: StartMongoOptions = {}): Promise<MongoServer> {
  const envUri = process.env.MONGODB_URI;
  if (envUri && !opts.ignoreEnvUri) {
    return {
      kind: 'external',
      uri: envUri,
      dbUri: (name) => withDatabase(envUri, name),
      stop: async () => {},
      kill: () => {},
      restart: async () => {},
    };
  }
  return startFerretdb(opts);
}

async function startFerretdb(opts: StartMongoOptions): Promise<MongoServer> {
  const bin = opts.binary ?? ferretdbBinary();
  if (!isExecutable(bin)) {
    throw new Error(
      `FerretDB binary not found at ${bin}. Run scripts/ferretdb.sh to build it ` +
        `(or set FERRETDB_BIN to a FerretDB v1 binary, or MONGODB_URI to use an existing MongoDB server).`,
    );
  }
  const timeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  installExitHooks();

  const dir = await mkdtemp(path.join(os.tmpdir(), 'pack-stream-ferretdb-'));
  const dataDir = path.join(dir, 'data');
  await mkdir(dataDir);
  const logFile = path.join(dir, 'ferretdb.log');
  liveDirs.add(dir);

  let port = 0;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let exitInfo: string | undefined;
  let stopped = false;

  const uriFor = (p: number) => `mongodb://127.0.0.1:${p}/`;

  const launch = async (): Promise<void> => {
    const args = [
      '--handler=sqlite',
      `--sqlite-url=${pathToFileURL(dataDir).href}/`,
      `--state-dir=${dir}`,
      `--listen-addr=127.0.0.1:${port}`,
      '--debug-addr=-',
      '--telemetry=disable',
      `--log-level=${opts.logLevel ?? 'info'}`,
      '--log-format=console',
      ...(opts.extraArgs ?? []),
    ];
    const logOffset = fileSize(logFile);
    const logFd = openSync(logFile, 'a');
    // Drop FERRETDB_* variables so the caller's environment cannot change the setup.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRETDB_')));
    let proc: ChildProcess;
    try {
      proc = spawn('/bin/sh', ['-c', WATCHDOG, 'ferretdb-watchdog', bin, ...args], {
        cwd: dir,
        env,
        stdio: ['pipe', logFd, logFd],
        detached: true, // own process group, so kill(-pid) takes the watchdog and FerretDB
      });
    } finally {
      closeSync(logFd);
    }
    child = proc;
    exitInfo = undefined;
    const pid = proc.pid;
    if (pid === undefined) {
      const err = await new Promise<Error>((resolve) => proc.once('error', resolve));
      throw new Error(`failed to spawn FerretDB (${bin}): ${err.message}`);
    }
    liveGroups.add(pid);
    exited = new Promise<void>((resolve) => {
      proc.once('exit', (code, signal) => {
        // Anything left in the group (e.g. if the watchdog died before its trap was set).
        killGroup(pid);
        liveGroups.delete(pid);
        exitInfo = signal ? `signal ${signal}` : `exit code ${code}`;
        if (child === proc) child = undefined;
        resolve();
      });
    });
    // Do not keep the test process alive just because a server is running;
    // the exit hook / watchdog will kill it.
    proc.unref();
    (proc.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    proc.stdin?.on('error', () => {});

    const deadline = Date.now() + timeoutMs;
    const fail = async (why: string): Promise<never> => {
      killGroup(pid);
      proc.ref();
      await exited;
      const tail = await readTail(logFile);
      throw new Error(`FerretDB did not start: ${why}.\n--- ${logFile} (tail) ---\n${tail}`);
    };

    if (port === 0) {
      // Wait for "Listening on TCP 127.0.0.1:NNNN" to learn the port.
      for (;;) {
        if (exitInfo) return fail(`process exited (${exitInfo}) before listening`);
        const text = await readFrom(logFile, logOffset).catch(() => '');
        const m = /Listening on TCP 127\.0\.0\.1:(\d+)/.exec(text);
        if (m) {
          port = Number(m[1]);
          break;
        }
        if (Date.now() > deadline) return fail(`no "Listening on TCP" line within ${timeoutMs} ms`);
        await sleep(25);
      }
    }

    let lastErr: unknown;
    for (;;) {
      if (exitInfo) return fail(`process exited (${exitInfo})`);
      try {
        await pingOnce(uriFor(port));
        return;
      } catch (err) {
        lastErr = err;
      }
      if (Date.now() > deadline) {
        return fail(`ping on ${uriFor(port)} failed for ${timeoutMs} ms (last error: ${(lastErr as Error)?.message})`);
      }
      await sleep(50);
    }
  };

  const kill = (): void => {
    const pid = child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGUSR1'); // watchdog SIGKILLs FerretDB, reaps it and exits
    } catch {
      killGroup(pid);
    }
  };
  // The child is unref'd; ref it while we wait for its exit so the event loop stays up.
  const waitExit = async (): Promise<void> => {
    child?.ref();
    await exited;
  };

  try {
    await launch();
  } catch (err) {
    liveDirs.delete(dir);
    await rm(dir, { recursive: true, force: true }).catch(() => {});
    throw err;
  }

  const uri = uriFor(port);
  const server: MongoServer = {
    kind: 'ferretdb',
    uri,
    dbUri: (name) => withDatabase(uri, name),
    dir,
    logFile,
    get pid() {
      return child?.pid;
    },
    kill,
    restart: async () => {
      if (stopped) throw new Error('restart() after stop()');
      kill();
      await waitExit();
      await launch();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      kill();
      await waitExit();
      liveDirs.delete(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}
