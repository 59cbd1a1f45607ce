/**
 * Detector files and the runs that point at them, written with the libraries
 * pack-stream itself uses (h5wasm, geotiff) so the default suite covers
 * filling without Python: HDF5 in the area-detector layout (`/entry/data/data`,
 * several frames per file or one file per frame), TIFF series from a template,
 * NPY files; and msgpack run files with start, descriptor, resource, datum_page,
 * event_pages and stop as bluesky writes them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeArrayBuffer } from 'geotiff';
import { MsgpackEncoder } from '../../src/codec/msgpack.js';
import { NdArray } from '../../src/codec/ndarray.js';
import { PyFloat, type Doc, type Value } from '../../src/codec/values.js';
import { h5wasm } from '../../src/handlers/h5lib.js';

const STRUCT: Record<string, string> = { '|u1': '<B', '|i1': '<b', '<u2': '<H', '<i2': '<h', '<u4': '<I', '<i4': '<i', '<u8': '<Q', '<i8': '<q', '<f4': '<f', '<f8': '<d' };

export interface H5Dataset {
  path: string;
  data: NdArray;
  chunks?: number[];
  /** 'gzip', or an HDF5 filter id from h5wasm-plugins (32004 lz4, 32008 bitshuffle, ...). */
  compression?: 'gzip' | number;
  compression_opts?: number | number[];
}

/** An HDF5 file with the given datasets (groups created as needed). */
export async function writeH5(file: string, datasets: H5Dataset[]): Promise<void> {
  const h5 = await h5wasm();
  mkdirSync(path.dirname(file), { recursive: true });
  const f = new h5.File(file, 'w');
  try {
    for (const ds of datasets) {
      const parts = ds.path.split('/').filter(Boolean);
      let g = '';
      for (const p of parts.slice(0, -1)) {
        g += `/${p}`;
        if (!f.get(g)) f.create_group(g);
      }
      const dtype = STRUCT[ds.data.dtype];
      if (!dtype) throw new Error(`no h5wasm dtype for ${ds.data.dtype}`);
      const a = ds.data;
      const typed = typedView(a);
      f.create_dataset({
        name: ds.path,
        data: typed as never,
        shape: [...a.shape],
        dtype,
        ...(ds.chunks ? { chunks: ds.chunks } : {}),
        ...(ds.compression !== undefined ? { compression: ds.compression } : {}),
        ...(ds.compression_opts !== undefined ? { compression_opts: ds.compression_opts } : {}),
      });
    }
  } finally {
    f.close();
  }
}

/** A typed array holding a copy of an NdArray's (native-order) bytes, alone in its ArrayBuffer (h5wasm and geotiff read `.buffer` whole). */
export function typedView(a: NdArray): ArrayBufferView {
  const b = new Uint8Array(new ArrayBuffer(a.nbytes));
  b.set(a.data);
  const ctor: Record<string, new (buf: ArrayBufferLike, off: number, n: number) => ArrayBufferView> = {
    '|u1': Uint8Array, '|i1': Int8Array, '<u2': Uint16Array, '<i2': Int16Array, '<u4': Uint32Array, '<i4': Int32Array,
    '<u8': BigUint64Array, '<i8': BigInt64Array, '<f4': Float32Array, '<f8': Float64Array,
  } as never;
  const C = ctor[a.dtype];
  if (!C) throw new Error(`no typed array for ${a.dtype}`);
  return new C(b.buffer, b.byteOffset, a.size);
}

/** An array of `shape` whose element i is f(i), in dtype (native order). */
export function makeArray(dtype: string, shape: number[], f: (i: number) => number): NdArray {
  const n = shape.reduce((a, b) => a * b, 1);
  const C = { '|u1': Uint8Array, '|i1': Int8Array, '<u2': Uint16Array, '<i2': Int16Array, '<u4': Uint32Array, '<i4': Int32Array, '<f4': Float32Array, '<f8': Float64Array }[dtype];
  if (!C) throw new Error(`makeArray: ${dtype}`);
  const ta = new C(n);
  for (let i = 0; i < n; i++) ta[i] = f(i);
  return NdArray.fromTypedArray(ta, shape);
}

/** Frames [start, stop) of a stack (rows of the first axis). */
export function rows(a: NdArray, start: number, stop: number): NdArray {
  const per = a.nbytes / a.shape[0]!;
  return new NdArray(a.dtype, [stop - start, ...a.shape.slice(1)], a.data.subarray(start * per, stop * per));
}

/** A single-sample TIFF (uint8, uint16 or float32) written by geotiff. */
export function writeTiff(file: string, a: NdArray): void {
  const [h, w] = a.shape as [number, number];
  const fmt = a.dtype.endsWith('f4') ? 3 : 1;
  const bits = a.itemsize * 8;
  const ab = writeArrayBuffer(typedView(a) as never, { width: w, height: h, BitsPerSample: [bits], SampleFormat: [fmt], SamplesPerPixel: 1, PhotometricInterpretation: 1 } as never);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, Buffer.from(ab));
}

/** An NPY v1.0 file as np.save writes it (header padded to 64 bytes, newline-terminated). */
export function writeNpy(file: string, a: NdArray, fortran = false): void {
  const shape = a.shape.length === 1 ? `(${a.shape[0]},)` : `(${a.shape.join(', ')})`;
  let header = `{'descr': '${a.dtype}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
  pre.writeUInt16LE(header.length, 8);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), a.data]));
}

export interface RunResource {
  spec: string;
  root: string;
  resource_path: string;
  resource_kwargs: Doc;
  /** datum_kwargs of each datum, in event order. */
  datums: Doc[];
}

/**
 * A msgpack run file `<dir>/<uid>.msgpack` with one stream whose external key
 * `key` takes one datum per event, across the given resources in order, plus a
 * scalar `det`. Returns the datum ids in event order.
 */
export function writeDetectorRun(dir: string, uid: string, resources: RunResource[], opts: { key?: string; filled?: 'false' | 'empty'; shape?: number[] } = {}): string[] {
  const key = opts.key ?? 'img';
  const e = new MsgpackEncoder();
  const t0 = 1700000000;
  const desc = `${uid}-desc`;
  e.record('start', { uid, time: new PyFloat(t0), scan_id: 1, plan_name: 'count' });
  e.record('descriptor', {
    run_start: uid, time: new PyFloat(t0 + 1), uid: desc, name: 'primary',
    data_keys: { [key]: { source: 'SIM:img', dtype: 'array', shape: opts.shape ?? [], external: 'FILESTORE:' }, det: { source: 'SIM:det', dtype: 'number', shape: [] } },
    configuration: {}, hints: {}, object_keys: { img: [key], det: ['det'] },
  });
  const ids: string[] = [];
  resources.forEach((r, ri) => {
    const ruid = `${uid}-res${ri}`;
    e.record('resource', { spec: r.spec, root: r.root, resource_path: r.resource_path, resource_kwargs: r.resource_kwargs, path_semantics: 'posix', uid: ruid, run_start: uid });
    const dids = r.datums.map((_, i) => `${ruid}/${i}`);
    const cols: Record<string, Value[]> = {};
    for (const dk of r.datums) for (const [k, v] of Object.entries(dk)) (cols[k] ??= []).push(v);
    e.record('datum_page', { resource: ruid, datum_id: dids, datum_kwargs: cols });
    ids.push(...dids);
  });
  ids.forEach((id, i) => {
    const page: Doc = {
      time: [t0 + 2 + i], uid: [`${uid}-ev${i}`], seq_num: [i + 1], descriptor: desc,
      filled: opts.filled === 'empty' ? {} : { [key]: [false] },
      data: { [key]: [id], det: [new PyFloat(i)] },
      timestamps: { [key]: [t0 + 2 + i], det: [t0 + 2 + i] },
    };
    e.record('event_page', page);
  });
  e.record('stop', { run_start: uid, time: t0 + 1000, uid: `${uid}-stop`, exit_status: 'success', reason: '', num_events: { primary: ids.length } });
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${uid}.msgpack`);
  writeFileSync(file, e.take());
  return ids;
}
