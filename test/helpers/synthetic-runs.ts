/**
 * Synthetic runs for volume tests: a directory of msgpack run files (a valid
 * SOURCE) shaped like RunEngine output — one descriptor with scalar keys and
 * an external image key, a resource, datum pages of 5, one-row event pages,
 * floats that are whole numbers — written in canonical order.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MsgpackEncoder } from '../../src/codec/msgpack.js';
import { PyFloat } from '../../src/codec/values.js';

export interface SyntheticOptions {
  runs: number;
  events: number;
  /** uid prefix, so that several sets do not collide. */
  tag?: string;
}

/** Writes the run files; returns the number of documents each unpack stores (events and datums one per row). */
export function writeSyntheticRuns(dir: string, o: SyntheticOptions): { files: string[]; stored: number; uids: string[] } {
  mkdirSync(dir, { recursive: true });
  const tag = o.tag ?? 'syn';
  const files: string[] = [];
  const uids: string[] = [];
  let stored = 0;
  for (let r = 0; r < o.runs; r++) {
    const uid = `${tag}-${String(r).padStart(4, '0')}-0000-0000-000000000000`;
    uids.push(uid);
    const t0 = 1_600_000_000 + r * 10_000;
    const e = new MsgpackEncoder(1 << 20);
    const parts: Buffer[] = [];
    e.record('start', { uid, time: new PyFloat(t0), scan_id: r + 1, plan_name: 'count', detectors: ['det', 'cam'], num_points: o.events });
    e.record('descriptor', {
      run_start: uid, time: t0 + 0.5, uid: `${uid}-d`, name: 'primary', hints: {}, object_keys: {}, configuration: {},
      data_keys: {
        det: { source: 'SIM:det', dtype: 'number', shape: [], precision: 3 },
        cam_image: { source: 'SIM:cam', dtype: 'array', shape: [4, 4], external: 'FILESTORE:' },
      },
    });
    const res = `${uid}-res`;
    e.record('resource', { spec: 'NPY_SEQ', root: `/tmp/${tag}`, resource_path: `${uid}`, resource_kwargs: {}, path_semantics: 'posix', uid: res, run_start: uid });
    for (let i = 0; i < o.events; i += 5) {
      const ids: string[] = [];
      const idx: number[] = [];
      for (let j = i; j < Math.min(o.events, i + 5); j++) {
        ids.push(`${res}/${j}`);
        idx.push(j);
      }
      e.record('datum_page', { resource: res, datum_id: ids, datum_kwargs: { index: idx } });
    }
    for (let i = 0; i < o.events; i++) {
      const t = t0 + 1 + i * 0.25;
      e.record('event_page', {
        time: [Number.isInteger(t) ? new PyFloat(t) : t],
        uid: [`${uid}-e${String(i).padStart(7, '0')}`],
        seq_num: [i + 1],
        descriptor: `${uid}-d`,
        filled: { cam_image: [false] },
        data: { det: [i % 4 === 0 ? new PyFloat(i) : i + 0.5], cam_image: [`${res}/${i}`] },
        timestamps: { det: [t], cam_image: [t] },
      });
      if (e.length > 1 << 20) parts.push(e.take());
    }
    e.record('stop', { run_start: uid, time: t0 + 9999.5, uid: `${uid}-s`, exit_status: 'success', reason: '', num_events: { primary: o.events } });
    parts.push(e.take());
    const file = path.join(dir, `${uid}.msgpack`);
    writeFileSync(file, Buffer.concat(parts));
    files.push(file);
    stored += 4 + o.events * 2;
  }
  return { files, stored, uids };
}
