/**
 * The HDF5 library: h5wasm (the HDF5 C library compiled to WebAssembly), with
 * the compression filters of h5wasm-plugins (LZ4, bitshuffle, Blosc, Zstd, ...)
 * on its plugin path. Loaded on first use, so packs without HDF5 data never
 * start the WebAssembly module.
 *
 * h5wasm reads synchronously on the main thread; `readRows` returns the exact
 * bytes h5py would return (h5wasm hands out little-endian data, so big-endian
 * datasets are swapped back and keep their `>` dtype, as numpy keeps it).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { NdArray } from '../codec/ndarray.js';
import { PackStreamError } from '../errors.js';
import { ExternalFile } from './external-file.js';

type H5 = typeof import('h5wasm/node');
type H5File = InstanceType<H5['File']>;
type H5Dataset = InstanceType<H5['Dataset']>;

/** Filters h5wasm has built in or h5wasm-plugins provides (HDF5 filter ids). */
export const KNOWN_FILTERS: Record<number, string> = {
  1: 'gzip', 2: 'shuffle', 3: 'fletcher32', 5: 'nbit', 6: 'scaleoffset',
  307: 'bzip2', 32000: 'lzf', 32001: 'blosc', 32004: 'lz4', 32008: 'bitshuffle',
  32013: 'zfp', 32015: 'zstd', 32019: 'jpeg', 32022: 'bitgroom', 32023: 'bitround', 32026: 'blosc2',
};

let loading: Promise<H5> | undefined;

/** h5wasm, ready, with the plugin directory of h5wasm-plugins searched first. */
export function h5wasm(): Promise<H5> {
  loading ??= (async () => {
    const h5 = await import('h5wasm/node');
    const Module = await h5.ready;
    const pkg = createRequire(import.meta.url).resolve('h5wasm-plugins/package.json');
    Module.insert_plugin_search_path(path.join(path.dirname(pkg), 'plugins'), 0);
    // HDF5 errors become exceptions (with HDF5's message) instead of bad return codes.
    (Module as unknown as { activate_throwing_error_handler?: () => void }).activate_throwing_error_handler?.();
    return h5;
  })();
  return loading;
}

/**
 * Open an HDF5 file for reading; a missing file is E_MISSING_FILE, and anything
 * but a regular file E_NOT_REGULAR. h5wasm reads through its own descriptor
 * (Node's fs, synchronously: a FIFO would block the whole process), so it is
 * handed the path of the descriptor that was checked.
 */
export async function openH5(file: string): Promise<H5File> {
  const h5 = await h5wasm();
  const checked = await ExternalFile.open(file);
  try {
    return new h5.File(checked.reopenPath, 'r');
  } catch (e) {
    throw new PackStreamError('E_HANDLER', `cannot open ${file} as HDF5: ${h5Message(e).replaceAll(checked.reopenPath, file)}`, { subject: file, cause: e });
  } finally {
    await checked.close();
  }
}

export function closeH5(f: H5File | undefined): void {
  try {
    f?.close();
  } catch {
    // closing twice or after a failed open: nothing left to release
  }
}

/**
 * HDF5's error stack in one line: the outermost and innermost messages, e.g.
 * `HDF5 2.0.0: unable to synchronously open dataset (bad version number for layout message)`.
 */
export function h5Message(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const frames = [...text.matchAll(/#\d+: .*? in [\w.]+\(\): (.*)$/gm)].map((m) => m[1]!.trim());
  if (frames.length === 0) return text.trim();
  const version = /Error detected in HDF5 \(([^)]+)\)/.exec(text)?.[1];
  const outer = frames[0]!;
  const inner = frames[frames.length - 1]!;
  return `${version ? `HDF5 ${version}: ` : ''}${outer}${inner !== outer ? ` (${inner})` : ''}`;
}

function dataset(f: H5File, key: string, file: string): H5Dataset {
  let entity;
  try {
    entity = f.get(key);
  } catch (e) {
    throw new PackStreamError('E_HANDLER', `${file} has no dataset ${key}: ${h5Message(e)}`, { subject: file, cause: e });
  }
  if (!entity || (entity as { type?: string }).type !== 'Dataset') {
    throw new PackStreamError('E_HANDLER', `${file} has no dataset ${key}`, { subject: file });
  }
  return entity as H5Dataset;
}

/** Why a read failed: an unsupported compression filter is named, else HDF5's own message. */
function readError(ds: H5Dataset, key: string, file: string, e: unknown): PackStreamError {
  let filters: { id: number; name: string }[] = [];
  try {
    filters = ds.filters as { id: number; name: string }[];
  } catch {
    // keep the read error
  }
  const unknown = filters.filter((f) => !(f.id in KNOWN_FILTERS));
  if (unknown.length) {
    const names = unknown.map((f) => `${f.name.split(';')[0]!.trim() || 'unnamed'} (filter id ${f.id})`).join(', ');
    return new PackStreamError('E_UNSUPPORTED', `${file}: dataset ${key} is compressed with ${names}, which pack-stream's HDF5 library (h5wasm with h5wasm-plugins) cannot decode; supported filters: ${Object.values(KNOWN_FILTERS).join(', ')}`, { subject: file, cause: e });
  }
  return new PackStreamError('E_HANDLER', `cannot read dataset ${key} of ${file}: ${h5Message(e)}`, { subject: file, cause: e });
}

/**
 * Rows [start, stop) of the first axis (numpy slice rules: clipped), or all rows.
 * The selection's size comes from the dataset's extents and is refused beyond
 * `maxBytes` before anything is read (a tiny file can declare a huge dataset).
 */
export function readRows(f: H5File, key: string, file: string, start?: number, stop?: number, maxBytes?: number): NdArray {
  const ds = dataset(f, key, file);
  const meta = ds.metadata;
  const shape = meta.shape ?? [];
  const kind = meta.type === 0 ? (meta.signed ? 'i' : 'u') : meta.type === 1 ? 'f' : null;
  if (kind === null || meta.vlen || ![1, 2, 4, 8].includes(meta.size) || (kind === 'f' && meta.size < 4)) {
    throw new PackStreamError('E_UNSUPPORTED', `${file}: dataset ${key} has an HDF5 type (class ${meta.type}, ${meta.size} bytes) pack-stream cannot read; only integer and float32/float64 data`, { subject: file });
  }
  const order = meta.size === 1 ? '|' : meta.littleEndian ? '<' : '>';
  const dtype = `${order}${kind}${meta.size}`;
  let outShape = [...shape];
  let ranges: ([] | [number, number])[] = [];
  if (start !== undefined && shape.length > 0) {
    const n = shape[0]!;
    const s = Math.min(Math.max(start, 0), n);
    const e = Math.min(Math.max(stop ?? n, s), n);
    outShape = [e - s, ...shape.slice(1)];
    ranges = [[s, e], ...shape.slice(1).map((): [] => [])];
  }
  if (outShape.some((d) => d === 0)) return new NdArray(dtype, outShape, Buffer.alloc(0));
  const nbytes = outShape.reduce((a, b) => a * b, meta.size);
  if (maxBytes !== undefined && nbytes > maxBytes) {
    throw new PackStreamError('E_LIMIT', `${file}: reading [${outShape.join(', ')}] of dataset ${key} takes ${nbytes} bytes, more than the limit of ${maxBytes} bytes per datum (--max-datum-bytes)`, { subject: file });
  }
  // HDF5 decodes whole chunks, however little of one is selected
  const chunkBytes = meta.chunks ? meta.chunks.reduce((a, b) => a * b, meta.size) : 0;
  if (maxBytes !== undefined && chunkBytes > maxBytes) {
    throw new PackStreamError('E_LIMIT', `${file}: dataset ${key} is stored in chunks of ${chunkBytes} bytes, more than the limit of ${maxBytes} bytes per datum (--max-datum-bytes)`, { subject: file });
  }
  let values: unknown;
  try {
    values = ranges.length ? ds.slice(ranges) : ds.value;
  } catch (e) {
    throw readError(ds, key, file, e);
  }
  if (!ArrayBuffer.isView(values)) {
    if (shape.length === 0 && (typeof values === 'number' || typeof values === 'bigint')) {
      // a scalar dataset: h5py gives a 0-d array
      const b = Buffer.alloc(meta.size);
      const v = new DataView(b.buffer);
      if (kind === 'f') (meta.size === 4 ? v.setFloat32(0, Number(values), true) : v.setFloat64(0, Number(values), true));
      else writeInt(v, meta.size, kind === 'i', values);
      return finish(dtype, [], b, meta.size, meta.littleEndian);
    }
    throw new PackStreamError('E_HANDLER', `cannot read dataset ${key} of ${file}: unexpected value from the HDF5 library`, { subject: file });
  }
  const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  return finish(dtype, outShape, bytes, meta.size, meta.littleEndian);
}

function writeInt(v: DataView, size: number, signed: boolean, x: number | bigint): void {
  if (size === 1) signed ? v.setInt8(0, Number(x)) : v.setUint8(0, Number(x));
  else if (size === 2) signed ? v.setInt16(0, Number(x), true) : v.setUint16(0, Number(x), true);
  else if (size === 4) signed ? v.setInt32(0, Number(x), true) : v.setUint32(0, Number(x), true);
  else signed ? v.setBigInt64(0, BigInt(x), true) : v.setBigUint64(0, BigInt(x), true);
}

/** h5wasm returns little-endian bytes; a big-endian dataset goes back to its own order. */
function finish(dtype: string, shape: number[], bytes: Buffer, size: number, littleEndian: boolean): NdArray {
  if (!littleEndian && size > 1) {
    if (size === 2) bytes.swap16();
    else if (size === 4) bytes.swap32();
    else bytes.swap64();
  }
  return new NdArray(dtype, shape, bytes);
}
