/**
 * The fill stage on its own: which keys Python's Filler fills, what happens to
 * documents around the events, order kept under parallel reads, and the bound
 * on reads in flight and frames held ahead of a slow consumer.
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { NdArray } from '../src/codec/ndarray.js';
import { PyFloat, type Doc } from '../src/codec/values.js';
import { readNpy } from '../src/handlers/npy.js';
import { fillDocuments } from '../src/transforms/fill.js';
import { HandlerRegistry } from '../src/transforms/handlers.js';
import type { DocPair } from '../src/types.js';
import { makeArray, writeNpy } from './helpers/detector.js';
import { tempDir } from './helpers/files.js';

async function* from(docs: DocPair[]): AsyncGenerator<DocPair> {
  for (const d of docs) yield d;
}

async function all(it: AsyncIterable<DocPair>): Promise<DocPair[]> {
  const out: DocPair[] = [];
  for await (const d of it) out.push(d);
  return out;
}

function npyFixture(n: number): { dir: string; arrays: NdArray[] } {
  const dir = tempDir();
  const arrays = Array.from({ length: n }, (_, j) => makeArray('<u2', [4, 4], (i) => j * 16 + i));
  arrays.forEach((a, j) => writeNpy(path.join(dir, `frames_${j}.npy`), a));
  return { dir, arrays };
}

const descriptor = (externalKeys: string[]): DocPair => ({
  name: 'descriptor',
  doc: { uid: 'D', run_start: 'S', time: 1, name: 'primary', data_keys: Object.fromEntries(['img', 'det', ...externalKeys.filter((k) => k !== 'img')].map((k) => [k, { source: k, dtype: 'array', shape: [], ...(externalKeys.includes(k) ? { external: 'FILESTORE:' } : {}) }])) },
});

function run(dir: string, n: number, filled: (i: number) => Doc | undefined = () => ({ img: false })): DocPair[] {
  const docs: DocPair[] = [
    { name: 'start', doc: { uid: 'S', time: 0 } },
    descriptor(['img']),
    { name: 'resource', doc: { uid: 'R', spec: 'NPY_SEQ', root: dir, resource_path: 'frames', resource_kwargs: {}, path_semantics: 'posix' } },
    { name: 'datum_page', doc: { resource: 'R', datum_id: Array.from({ length: n }, (_, i) => `R/${i}`), datum_kwargs: { index: Array.from({ length: n }, (_, i) => i) } } },
  ];
  for (let i = 0; i < n; i++) {
    const f = filled(i);
    docs.push({
      name: 'event_page',
      doc: { time: [10 + i], uid: [`E${i}`], seq_num: [i + 1], descriptor: 'D', ...(f === undefined ? {} : { filled: Object.fromEntries(Object.entries(f).map(([k, v]) => [k, [v]])) }), data: { img: [`R/${i}`], det: [new PyFloat(i)] }, timestamps: { img: [10 + i], det: [10 + i] } },
    });
  }
  docs.push({ name: 'stop', doc: { uid: 'P', run_start: 'S', time: 99, exit_status: 'success' } });
  return docs;
}

t.test('events are filled as the Filler does; resources and datums are consumed', async (t) => {
  const { dir, arrays } = npyFixture(3);
  const out = await all(fillDocuments(from(run(dir, 3))));
  t.same(out.map((d) => d.name), ['start', 'descriptor', 'event_page', 'event_page', 'event_page', 'stop']);
  out.filter((d) => d.name === 'event_page').forEach((d, i) => {
    const data = d.doc.data as Doc;
    t.ok((data.img as NdArray[])[0]!.equals(arrays[i]!), `event ${i}: data.img is the frame`);
    t.same(d.doc.filled, { img: [`R/${i}`] }, `event ${i}: filled.img is the datum_id`);
    t.same(Object.keys(d.doc), ['time', 'uid', 'seq_num', 'descriptor', 'filled', 'data', 'timestamps'], 'pack_event_page key order');
    t.equal(d.raw, undefined, 'a changed document carries no raw bytes');
  });
});

t.test("which keys are filled (event-model's rules)", async (t) => {
  const { dir, arrays } = npyFixture(4);
  // filled false → filled; true → left; {} (no entry, value still a datum_id) → filled; a page without filled → filled
  const states: (Doc | undefined)[] = [{ img: false }, { img: true }, {}, undefined];
  const out = (await all(fillDocuments(from(run(dir, 4, (i) => states[i]))))).filter((d) => d.name === 'event_page');
  const img = (i: number) => (out[i]!.doc.data as Doc).img as unknown[];
  t.ok(img(0)[0] instanceof NdArray && (img(0)[0] as NdArray).equals(arrays[0]!));
  t.same(img(1), ['R/1'], 'filled: true is left alone');
  t.ok(img(2)[0] instanceof NdArray, 'an external key missing from filled is filled');
  t.same(out[2]!.doc.filled, { img: ['R/2'] });
  t.ok(img(3)[0] instanceof NdArray, 'a page without filled is filled');

  // a plain event without `filled`: every external key of the descriptor
  const ev: DocPair = { name: 'event', doc: { uid: 'E', time: 1, seq_num: 1, descriptor: 'D', data: { img: 'R/1', det: 1 }, timestamps: { img: 1, det: 1 } } };
  const docs = run(dir, 0).slice(0, 4);
  (docs[3]!.doc as Doc).datum_id = ['R/1'];
  (docs[3]!.doc as Doc).datum_kwargs = { index: [1] };
  const [filledEvent] = (await all(fillDocuments(from([...docs, ev])))).filter((d) => d.name === 'event');
  t.ok(((filledEvent!.doc.data as Doc).img as NdArray).equals(arrays[1]!));
  t.same(filledEvent!.doc.filled, { img: 'R/1' });
  t.same(Object.keys(filledEvent!.doc), ['uid', 'time', 'seq_num', 'descriptor', 'data', 'timestamps', 'filled']);

  // an external key missing from filled whose value is no datum of the run is left alone (as Python leaves it)
  const odd = run(dir, 1, () => ({}));
  (odd[4]!.doc.data as Doc).img = ['not-a-datum'];
  const [kept] = (await all(fillDocuments(from(odd)))).filter((d) => d.name === 'event_page');
  t.same((kept!.doc.data as Doc).img, ['not-a-datum']);
  t.same(kept!.doc.filled, {});

  const bad = run(dir, 1);
  (bad[4]!.doc.data as Doc).img = ['R/404'];
  await t.rejects(all(fillDocuments(from(bad))), { code: 'E_BAD_RUN', message: /event E0: data key 'img' refers to datum "R\/404", which is not in the run/ });
});

t.test('parallel reads keep document order and stay within the bound', async (t) => {
  const n = 40;
  const { dir, arrays } = npyFixture(n);
  let active = 0;
  let maxActive = 0;
  let unconsumed = 0; // frames read but not yet taken by the consumer
  let maxUnconsumed = 0;
  const registry = new HandlerRegistry();
  // a real handler (NPY files) that takes a varying time per read
  registry.register('NPY_SEQ', (fp) => ({
    resourceFiles: () => [],
    filesForDatum: (dk) => [`${fp}_${String(dk.index)}.npy`],
    read: async (dk) => {
      active++;
      maxActive = Math.max(maxActive, active);
      await sleep(((Number(dk.index) * 7) % 5) + 1);
      const a = await readNpy(`${fp}_${String(dk.index)}.npy`);
      active--;
      unconsumed++;
      maxUnconsumed = Math.max(maxUnconsumed, unconsumed);
      return a;
    },
  }));
  const seen: number[] = [];
  for await (const d of fillDocuments(from(run(dir, n)), { registry, concurrency: 3 })) {
    if (d.name !== 'event_page') continue;
    unconsumed--;
    const i = Number(String((d.doc.uid as string[])[0]).slice(1));
    seen.push(i);
    t.ok(((d.doc.data as Doc).img as NdArray[])[0]!.equals(arrays[i]!), `event ${i} has its own frame`);
    await sleep(3); // a slow writer
  }
  t.same(seen, Array.from({ length: n }, (_, i) => i), 'events come out in input order');
  t.ok(maxActive > 1, `reads ran in parallel (${maxActive} at once)`);
  t.ok(maxActive <= 3, `at most 3 reads at once (${maxActive})`);
  t.ok(maxUnconsumed <= 3, `at most 3 frames held ahead of the consumer (${maxUnconsumed})`);
});

t.test('a failed read ends the stage and closes the handlers', async (t) => {
  const { dir } = npyFixture(5);
  let closed = 0;
  const registry = new HandlerRegistry();
  registry.register('NPY_SEQ', (fp) => ({
    resourceFiles: () => [],
    filesForDatum: () => [],
    read: (dk) => readNpy(`${fp}_${Number(dk.index) === 2 ? 'missing' : String(dk.index)}.npy`),
    close: () => {
      closed++;
    },
  }));
  const got: string[] = [];
  await t.rejects(
    (async () => {
      for await (const d of fillDocuments(from(run(dir, 5)), { registry, concurrency: 2 })) got.push(d.name);
    })(),
    { code: 'E_MISSING_FILE', message: /^datum R\/2 \(resource R, spec NPY_SEQ\): external file .*frames_missing\.npy is missing$/ },
  );
  t.same(got, ['start', 'descriptor', 'event_page', 'event_page'], 'documents before the failure were passed on');
  t.equal(closed, 1, 'the handler was closed');
});
