/** Build small synthetic run files for tests (real event-model shapes). */
import { writeFileSync } from 'node:fs';
import { MsgpackEncoder } from '../../src/codec/msgpack.js';
import { jsonlRecord } from '../../src/codec/pyjson.js';
import { PyFloat, type Doc } from '../../src/codec/values.js';

export type Rec = [string, Doc];

export function scalarRun(uid: string, opts: { events?: number; t0?: number; scanId?: number; plan?: string; resource?: { root: string; spec?: string; path?: string } } = {}): Rec[] {
  const t0 = opts.t0 ?? 1600000000.5;
  const desc = `${uid}-desc`;
  const recs: Rec[] = [
    ['start', { uid, time: t0, scan_id: opts.scanId ?? 1, plan_name: opts.plan ?? 'count', versions: { bluesky: '1.6.0' } }],
    ['descriptor', { run_start: uid, time: t0 + 0.1, data_keys: { det: { source: 'SIM:det', dtype: 'number', shape: [] } }, uid: desc, name: 'primary', configuration: {}, hints: {}, object_keys: { det: ['det'] } }],
  ];
  if (opts.resource) {
    const res = `${uid}-res`;
    recs.push(['resource', { spec: opts.resource.spec ?? 'NPY_SEQ', root: opts.resource.root, resource_path: opts.resource.path ?? 'img', resource_kwargs: {}, path_semantics: 'posix', uid: res, run_start: uid }]);
    recs.push(['datum_page', { resource: res, datum_id: [`${res}/0`], datum_kwargs: { index: [0] } }]);
  }
  for (let i = 0; i < (opts.events ?? 3); i++) {
    recs.push(['event_page', { time: [t0 + 1 + i], uid: [`${uid}-ev${i}`], seq_num: [i + 1], descriptor: desc, filled: {}, data: { det: [new PyFloat(i)] }, timestamps: { det: [t0 + 1 + i] } }]);
  }
  recs.push(['stop', { run_start: uid, time: t0 + 10, uid: `${uid}-stop`, exit_status: 'success', reason: '', num_events: { primary: opts.events ?? 3 } }]);
  return recs;
}

export function encodeMsgpack(recs: Rec[]): Buffer {
  const e = new MsgpackEncoder();
  for (const [n, d] of recs) e.record(n, d);
  return e.take();
}

export function writeMsgpackRun(file: string, recs: Rec[]): void {
  writeFileSync(file, encodeMsgpack(recs));
}

export function writeJsonlRun(file: string, recs: Rec[]): void {
  writeFileSync(file, recs.map(([n, d]) => jsonlRecord(n, d)).join(''));
}
