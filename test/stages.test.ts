/**
 * The stages compose by hand and with stream.pipeline, as the README shows.
 */
import t from 'tap';
import { createWriteStream, readFileSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  openSource, collectExternalFiles, ExternalFileCollector, HandlerRegistry,
  rewriteResourceRoots, encodeDocuments, coalesce, readJsonlRecords, rootHash, decodeMsgpack,
} from '../src/index.js';
import { msgpackEncoder } from '../src/transforms/encode.js';
import { PyFloat } from '../src/codec/values.js';
import type { DocPair } from '../src/types.js';
import { tempDir } from './helpers/files.js';
import { REPO } from './helpers/paths.js';

t.test('the README pipeline', async (t) => {
  const out = tempDir();
  const catalog = await openSource(path.join(REPO, 'examples', 'catalog'));
  const collector = new ExternalFileCollector(new HandlerRegistry(), catalog.rootMap, 'my-salt');
  const uids: string[] = [];
  for await (const run of catalog.runs({ query: { plan_name: 'count' } })) {
    uids.push(run.uid);
    await pipeline(
      run.documents(),
      (docs: AsyncIterable<DocPair>) => collectExternalFiles(docs, collector),
      (docs: AsyncIterable<DocPair>) => rewriteResourceRoots(docs, 'my-salt'),
      (docs: AsyncIterable<DocPair>) => encodeDocuments(docs, 'jsonl'),
      (bufs: AsyncIterable<Buffer>) => coalesce(bufs),
      createWriteStream(path.join(out, `${run.uid}.jsonl`)),
    );
  }
  t.equal(uids.length, 2, 'two count runs');
  const roots = [...collector.roots.values()];
  t.equal(roots.length, 1);
  t.equal(roots[0]!.files.size, 4, 'the four image files of the image run');
  t.equal(roots[0]!.mappedRoot, path.join(REPO, 'examples', 'catalog', 'external'));
  let resources = 0;
  for (const uid of uids) {
    const names = [];
    for await (const r of readJsonlRecords(path.join(out, `${uid}.jsonl`))) {
      names.push(r.name);
      if (r.name === 'resource') {
        resources++;
        t.equal(r.doc.root, rootHash('/tmp/pack-stream-example-images', 'my-salt'));
      }
    }
    t.equal(names[0], 'start');
    t.equal(names[names.length - 1], 'stop');
  }
  t.equal(resources, 1);
  void readFileSync;
});

t.test('the msgpack encoder writes events and datums as one-row pages, like suitcase-msgpack', async (t) => {
  const enc = msgpackEncoder();
  const ev = decodeMsgpack(enc({ name: 'event', doc: { uid: 'e', time: 1.5, seq_num: 1, descriptor: 'd', data: { x: new PyFloat(1) }, timestamps: { x: 1.5 } } })) as [string, unknown];
  t.same(ev, ['event_page', { time: [1.5], uid: ['e'], seq_num: [1], descriptor: 'd', filled: {}, data: { x: [new PyFloat(1)] }, timestamps: { x: [1.5] } }]);
  const dt = decodeMsgpack(enc({ name: 'datum', doc: { datum_id: 'r/0', resource: 'r', datum_kwargs: { index: 0 } } })) as [string, unknown];
  t.same(dt, ['datum_page', { resource: 'r', datum_id: ['r/0'], datum_kwargs: { index: [0] } }]);
  t.equal(enc({ name: 'stream_resource', doc: { uid: 's' } }).length, 0, 'stream_resource dropped');
});
