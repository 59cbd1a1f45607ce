/**
 * Crash safety of `unpack mongo_normalized`: the process SIGKILLed part way,
 * or the server killed under it, and then the same command again: every
 * document ends up stored exactly once, and the runs read back equal the
 * source. While interrupted, a run that is visible (its start stored) is
 * already complete, because a run's start goes in last.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import t, { type Test } from 'tap';
import { MongoClient, type Db } from 'mongodb';
import { FileCatalog } from '../../src/sources/file-catalog.js';
import { MongoCatalog } from '../../src/sources/mongo-catalog.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/files.js';
import { docsOf, firstDifference, runsOf, sandbox, uniqueDb, type Sandbox } from '../helpers/mongo-fixtures.js';
import { skipUnlessMongo, startMongo } from '../helpers/mongo-server.js';
import { CLI } from '../helpers/paths.js';
import { writeSyntheticRuns } from '../helpers/synthetic-runs.js';

const RUNS = 6;
const EVENTS = 1500;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Documents in a collection, cheaply (collStats; FerretDB scans for count). */
async function stored(db: Db, coll: string): Promise<number> {
  try {
    return Number((await db.command({ collStats: coll })).count ?? 0);
  } catch {
    return db.collection(coll).estimatedDocumentCount();
  }
}

/** Start the unpack as a child process; call `interrupt` once `event` holds at least `atEvents` documents. */
function unpackInterrupted(sb: Sandbox, src: string, uri: string, db: Db, atEvents: number, interrupt: (child: ReturnType<typeof spawn>) => Promise<void>): Promise<CliResult & { eventsAtInterrupt: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'unpack', 'mongo_normalized', src, 'k', '--mongo-uri', uri], { env: { ...process.env, ...sb.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let eventsAtInterrupt = -1;
    let exited = false;
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      exited = true;
      resolve({ code, stdout, stderr, eventsAtInterrupt });
    });
    void (async () => {
      while (!exited) {
        const n = await stored(db, 'event').catch(() => 0);
        if (n >= atEvents) {
          eventsAtInterrupt = n;
          await interrupt(child);
          return;
        }
        await sleep(15);
      }
    })().catch(reject);
  });
}

async function checkComplete(t: Test, db: Db, uri: string, src: string): Promise<void> {
  t.equal(await db.collection('run_start').countDocuments(), RUNS, 'every start once');
  t.equal(await db.collection('run_stop').countDocuments(), RUNS, 'every stop once');
  t.equal(await db.collection('event_descriptor').countDocuments(), RUNS);
  t.equal(await db.collection('resource').countDocuments(), RUNS, 'no resource stored twice');
  t.equal(await db.collection('event').countDocuments(), RUNS * EVENTS, 'every event once');
  t.equal((await db.collection('event').distinct('uid')).length, RUNS * EVENTS);
  t.equal(await db.collection('datum').countDocuments(), RUNS * EVENTS, 'every datum once');
  const files = new FileCatalog({ patterns: [path.join(src, '*.msgpack')] });
  const mongo = MongoCatalog.fromUri(uri);
  try {
    for (const run of await runsOf(files)) {
      t.equal(firstDifference(await docsOf(run), await docsOf(await mongo.lookup(run.uid))), null, `run ${run.uid} reads back whole`);
    }
  } finally {
    await mongo.close();
  }
}

if (skipUnlessMongo(t)) {
  const server = await startMongo();
  t.teardown(() => server.stop());
  const client = new MongoClient(server.uri);
  t.teardown(() => client.close());
  const src = path.join(tempDir(), 'runs');
  writeSyntheticRuns(src, { runs: RUNS, events: EVENTS, tag: 'kill' });

  await t.test('the unpack process SIGKILLed part way, then run again', async (t) => {
    const sb = sandbox();
    const name = uniqueDb('kill');
    const db = client.db(name);
    t.teardown(() => db.dropDatabase().catch(() => {}));
    const uri = server.dbUri(name);
    const first = await unpackInterrupted(sb, src, uri, db, 2 * EVENTS, async (child) => {
      child.kill('SIGKILL');
    });
    t.equal(first.code, null, 'killed');
    const events = await db.collection('event').countDocuments();
    t.ok(events >= 2 * EVENTS && events < RUNS * EVENTS, `interrupted part way (${events} of ${RUNS * EVENTS} events stored)`);
    const visible = await db.collection('run_start').find({}).toArray();
    t.ok(visible.length < RUNS);
    for (const s of visible) {
      const d = await db.collection('event_descriptor').findOne({ run_start: s.uid });
      t.equal(await db.collection('event').countDocuments({ descriptor: d?.uid }), EVENTS, `visible run ${s.uid} is complete`);
    }

    const again = await runCli(['unpack', 'mongo_normalized', src, 'k', '--mongo-uri', uri], { env: sb.env });
    t.equal(again.code, 0, again.stderr);
    t.match(again.stderr, /already stored \(identical\)/);
    await checkComplete(t, db, uri, src);
  });

  await t.test('the server killed part way and restarted: the unpack waits for it and completes', { skip: server.kind === 'ferretdb' ? false : 'needs the local FerretDB' }, async (t) => {
    const sb = sandbox();
    const name = uniqueDb('srvkill');
    const db = client.db(name);
    t.teardown(() => db.dropDatabase().catch(() => {}));
    const uri = server.dbUri(name);
    const first = await unpackInterrupted(sb, src, uri, db, 2 * EVENTS, async () => {
      server.kill();
      await sleep(1500);
      await server.restart();
    });
    t.ok(first.eventsAtInterrupt >= 2 * EVENTS && first.eventsAtInterrupt < RUNS * EVENTS, `server killed part way (${first.eventsAtInterrupt} events stored)`);
    t.equal(first.code, 0, first.stderr);
    await checkComplete(t, db, uri, src);

    const again = await runCli(['unpack', 'mongo_normalized', src, 'k', '--mongo-uri', uri], { env: sb.env });
    t.equal(again.code, 0, again.stderr);
    t.match(again.stderr, / 0 documents inserted/, 'and a re-run is a no-op');
  });
}
