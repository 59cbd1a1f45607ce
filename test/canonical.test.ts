/**
 * databroker's canonical order (formats.md §4.3), checked on synthetic runs
 * whose stored order is scrambled in the ways real files can be.
 */
import t from 'tap';
import path from 'node:path';
import { PyFloat, type Doc, type Value } from '../src/codec/values.js';
import { canonicalDocuments } from '../src/transforms/canonical.js';
import { readMsgpackRecords } from '../src/sources/msgpack-records.js';
import type { DocPair } from '../src/types.js';
import { tempDir } from './helpers/files.js';
import { writeMsgpackRun, type Rec } from './helpers/runs.js';

function twoStreamRun(): Rec[] {
  const ev = (desc: string, uid: string, time: number, seq: number): Rec => ['event', { descriptor: desc, uid, time, seq_num: seq, data: { x: new PyFloat(seq) }, timestamps: { x: time }, filled: {} }];
  return [
    ['start', { uid: 'R', time: 1 }],
    ['descriptor', { run_start: 'R', time: 1.1, uid: 'D-base', name: 'baseline', data_keys: {} }],
    ['resource', { spec: 'NPY_SEQ', root: '/r', resource_path: 'a', resource_kwargs: {}, uid: 'RES1', run_start: 'R' }],
    ['event', { descriptor: 'D-base', uid: 'b1', time: 1.2, seq_num: 1, data: { x: 1 }, timestamps: { x: 1.2 } }],
    ['descriptor', { run_start: 'R', time: 1.3, uid: 'D-prim', name: 'primary', data_keys: {} }],
    ['resource', { spec: 'NPY_SEQ', root: '/r', resource_path: 'b', resource_kwargs: {}, uid: 'RES2', run_start: 'R' }],
    // datums interleaved across resources and with events
    ['datum', { resource: 'RES2', datum_id: 'RES2/0', datum_kwargs: { index: 0 } }],
    ev('D-prim', 'p3', 5, 3),
    ['datum_page', { resource: 'RES1', datum_id: ['RES1/0', 'RES1/1', 'RES1/2', 'RES1/3', 'RES1/4', 'RES1/5', 'RES1/6'], datum_kwargs: { index: [0, 1, 2, 3, 4, 5, 6] } }],
    ev('D-prim', 'p1', 2, 1),
    ['event_page', { time: [3, 4], uid: ['p2b', 'p2a'], seq_num: [2, 3], descriptor: 'D-base', data: { x: [2, 3] }, timestamps: { x: [3, 4] } }],
    ev('D-prim', 'p2', 4, 2),
    ['datum', { resource: 'RES2', datum_id: 'RES2/1', datum_kwargs: { index: 1 } }],
    ['datum', { resource: 'ORPHAN', datum_id: 'O/1', datum_kwargs: { index: 1 } }],
    ['descriptor', { run_start: 'R', time: 1.4, uid: 'D-noname', data_keys: {} }],
    ev('D-noname', 'n1', 1.5, 1),
    ['stop', { run_start: 'R', time: 9, uid: 'S', exit_status: 'success' }],
  ];
}

async function canon(recs: Rec[]): Promise<DocPair[]> {
  const file = path.join(tempDir(), 'run.msgpack');
  writeMsgpackRun(file, recs);
  const out: DocPair[] = [];
  for await (const p of canonicalDocuments(() => readMsgpackRecords(file))) out.push(p);
  return out;
}

t.test('streams, resources, datum pages of 5 and merged one-row event pages', async (t) => {
  const out = await canon(twoStreamRun());
  const summary = out.map((p) => `${p.name}:${String(p.doc.uid ?? (p.name === 'datum_page' ? (p.doc.datum_id as string[]).join('|') : (p.doc.uid as unknown as string[] | undefined)?.[0]))}`);
  t.same(
    out.map((p) => p.name === 'event_page' ? `E:${(p.doc.uid as string[])[0]}` : p.name === 'datum_page' ? `DP:${(p.doc.datum_id as string[]).join(',')}` : `${p.name}:${String(p.doc.uid)}`),
    [
      'start:R',
      'descriptor:D-base',
      'resource:RES1',
      'resource:RES2',
      'DP:RES1/0,RES1/1,RES1/2,RES1/3,RES1/4',
      'DP:RES1/5,RES1/6',
      'DP:RES2/0,RES2/1',
      'descriptor:D-prim',
      // Python's heap merge: each descriptor's pages in stored order, streams merged by (time, uid)
      'E:b1',
      'E:p2b',
      'E:p2a',
      'E:p3',
      'E:p1',
      'E:p2',
      'stop:S',
    ],
    summary.join(' '),
  );
  const page = out.find((p) => p.name === 'event_page')!.doc;
  t.same(Object.keys(page), ['time', 'uid', 'seq_num', 'descriptor', 'filled', 'data', 'timestamps'], 'pack_event_page key order');
  t.same(page.filled, {}, 'an event without filled gets {}');
  const dp = out.find((p) => p.name === 'datum_page')!.doc;
  t.same(Object.keys(dp), ['resource', 'datum_id', 'datum_kwargs']);
  t.same((dp as Doc).datum_kwargs, { index: [0, 1, 2, 3, 4] });
});

t.test('across streams, ties on time sort by uid; within a descriptor, stored order', async (t) => {
  const recs: Rec[] = [
    ['start', { uid: 'R', time: 0 }],
    ['descriptor', { uid: 'D1', name: 'primary', run_start: 'R', time: 0, data_keys: {} }],
    ['descriptor', { uid: 'D2', name: 'other', run_start: 'R', time: 0, data_keys: {} }],
  ];
  for (const [d, u] of [['D1', 'c'], ['D1', 'a'], ['D2', 'b']]) recs.push(['event', { descriptor: d!, uid: u!, time: 1, seq_num: 1, data: {}, timestamps: {} }]);
  const out = await canon(recs);
  t.same(out.filter((p) => p.name === 'event_page').map((p) => (p.doc.uid as string[])[0]), ['b', 'c', 'a']);
  // already sorted input (the one-pass path) comes out as stored
  const sorted: Rec[] = [recs[0]!, recs[1]!, ...['a', 'b', 'c'].map((u, i): Rec => ['event', { descriptor: 'D1', uid: u, time: 1 + i, seq_num: 1, data: {}, timestamps: {} }])];
  const out2 = await canon(sorted);
  t.same(out2.filter((p) => p.name === 'event_page').map((p) => (p.doc.uid as string[])[0]), ['a', 'b', 'c']);
});

t.test('a run without descriptors yields start and stop only, as databroker does', async (t) => {
  const out = await canon([['start', { uid: 'R', time: 0 }], ['resource', { uid: 'X', spec: 'npy', root: '', resource_path: 'f', resource_kwargs: {} }], ['stop', { uid: 'S', run_start: 'R', time: 1, exit_status: 'abort' }]]);
  t.same(out.map((p) => p.name), ['start', 'stop']);
});

t.test('a run without a stop ends after its events', async (t) => {
  const run = twoStreamRun().slice(0, -1);
  const out = await canon(run);
  t.equal(out[out.length - 1]!.name, 'event_page');
});

t.test('an event whose data keys are integer-like keeps their order in its page', async (t) => {
  const data = new Map<string, Value>([['b', 1], ['0', 2]]);
  const out = await canon([
    ['start', { uid: 'R', time: 0 }],
    ['descriptor', { uid: 'D', name: 'primary', run_start: 'R', time: 0, data_keys: {} }],
    ['event', { descriptor: 'D', uid: 'e', time: 1, seq_num: 1, data: data as unknown as Doc, timestamps: { b: 1 } }],
  ]);
  const page = out.find((p) => p.name === 'event_page')!.doc;
  t.same([...(page.data as unknown as Map<string, Value>).keys()], ['b', '0']);
});
