/**
 * Helpers every handler family shares: reading keyword arguments the way the
 * Python handlers take them, the per-frame file names area-detector templates
 * give (within the per-datum limits), and np.stack of frames.
 */
import { NdArray } from '../codec/ndarray.js';
import { pyFloatRepr } from '../codec/pyjson.js';
import { field, PyFloat, toNumber, type Doc, type Value } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import { pyPercentFormat, shown, type FormatArg } from '../transforms/pyformat.js';
import type { HandlerLimits } from './types.js';

export { fileError } from './external-file.js';

export function kw(doc: Doc, key: string, dflt?: Value): Value {
  const v = field(doc, key);
  if (v === undefined) {
    if (dflt === undefined) throw new PackStreamError('E_HANDLER', `missing keyword argument '${key}'`);
    return dflt;
  }
  return v;
}

/** A value for messages, as Python would show it. */
function repr(v: Value): string {
  if (v instanceof PyFloat || typeof v === 'number') return pyFloatRepr(Number(v));
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/**
 * A kwarg the Python handlers use as an int (in `range()` or a slice): an int
 * or a bool. A float fails there with TypeError, so it fails here; ints beyond
 * 2^53 are refused as a limit (no real frame number comes near).
 */
export function intKwarg(v: Value, what: string): number {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new PackStreamError('E_LIMIT', `${what} ${v} is beyond 2^53, which pack-stream does not handle`);
    }
    return Number(v);
  }
  // numbers that are not safe integers are floats in the value model (ints beyond are bigints)
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  throw new PackStreamError('E_HANDLER', `${what} must be an integer, got ${repr(v)} (Python's handler fails on it too)`);
}

export function fmtArg(v: Value): FormatArg {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint') return v;
  const n = toNumber(v);
  if (n !== undefined) return n;
  return String(v);
}

/** os.path.join(p, ''): one trailing separator. */
export function withSep(p: string): string {
  return p.endsWith('/') ? p : `${p}/`;
}

/**
 * The frames of one point: [pn*fpp, (pn+1)*fpp), as the area-detector handlers
 * slice by `point_number` and `frame_per_point`.
 */
export interface PointFrames {
  fpp: number;
  of(datumKwargs: Doc): { pn: number; start: number; stop: number };
}

export function pointFrames(rk: Doc): PointFrames {
  const fpp = intKwarg(kw(rk, 'frame_per_point', 1), 'frame_per_point');
  return {
    fpp,
    of: (dk) => {
      const pn = intKwarg(kw(dk, 'point_number'), 'point_number');
      const [start, stop] = frameRange(pn * fpp, (pn + 1) * fpp, pn, fpp);
      return { pn, start, stop };
    },
  };
}

/** Linux's PATH_MAX: no file has a longer path, so a template that makes one is refused before it is built in bulk. */
export const PATH_MAX = 4096;

/** E_LIMIT when `count` files for one datum exceed the limit; `because` names the kwargs that make them. */
export function checkFilesPerDatum(count: number, limits: HandlerLimits, because: string): void {
  if (count > limits.filesPerDatum) {
    throw new PackStreamError('E_LIMIT', `${because} makes ${count} files per datum, more than the limit of ${limits.filesPerDatum} (--max-files-per-datum)`);
  }
}

/** Python's `template % args` for a file name, refused when longer than PATH_MAX. */
export function templatePath(template: string, args: FormatArg[]): string {
  const out = pyPercentFormat(template, args);
  if (out.length > PATH_MAX) {
    throw new PackStreamError('E_LIMIT', `template ${shown(template)} makes a path of ${out.length} characters, longer than any file path can be (${PATH_MAX})`);
  }
  return out;
}

/** [start, stop) of frame numbers, refused when beyond 2^53 (where floats lose integers). */
export function frameRange(start: number, stop: number, pn: number, fpp: number): [number, number] {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(stop)) {
    throw new PackStreamError('E_LIMIT', `point_number ${pn} with frame_per_point ${fpp} gives frame numbers beyond 2^53, which pack-stream does not handle`);
  }
  return [start, stop];
}

/**
 * Template-based per-frame files (AD_TIFF, AD_HDF5_SINGLE): j in [pn*fpp, (pn+1)*fpp),
 * produced one at a time; a frame_per_point beyond the per-datum limit is refused up front.
 */
export interface FrameFiles {
  fpp: number;
  forPoint(kwargs: Doc): Generator<string>;
}

export function frameFiles(filePath: string, rk: Doc, limits: HandlerLimits): FrameFiles {
  const template = String(kw(rk, 'template'));
  const filename = fmtArg(kw(rk, 'filename'));
  const frames = pointFrames(rk);
  checkFilesPerDatum(frames.fpp, limits, `frame_per_point ${frames.fpp}`);
  return {
    fpp: frames.fpp,
    forPoint: function* (dk) {
      const { start, stop } = frames.of(dk);
      for (let j = start; j < stop; j++) yield templatePath(template, [withSep(filePath), filename, j]);
    },
  };
}

/**
 * Counts the bytes of one datum's data as its frames or pages are read,
 * refusing (E_LIMIT) more than `maxBytes` in all.
 */
export function datumBudget(maxBytes: number | undefined, what: string): (bytes: number) => void {
  let total = 0;
  return (bytes) => {
    total += bytes;
    if (maxBytes !== undefined && total > maxBytes) {
      throw new PackStreamError('E_LIMIT', `${what}: the datum's data exceeds the limit of ${maxBytes} bytes per datum (--max-datum-bytes)`, { subject: what });
    }
  };
}

/** np.stack of equally shaped arrays. */
export function stack(arrays: NdArray[], what: string): NdArray {
  const first = arrays[0];
  if (!first) throw new PackStreamError('E_HANDLER', `${what}: no frames to stack (frame_per_point is 0?)`);
  for (const a of arrays) {
    if (a.dtype !== first.dtype || a.shape.join() !== first.shape.join()) {
      throw new PackStreamError('E_HANDLER', `${what}: frames differ in dtype or shape (${first.dtype} [${first.shape.join(', ')}] vs ${a.dtype} [${a.shape.join(', ')}]) and cannot be stacked`);
    }
  }
  return new NdArray(first.dtype, [arrays.length, ...first.shape], arrays.length === 1 ? first.data : Buffer.concat(arrays.map((a) => a.data)));
}
