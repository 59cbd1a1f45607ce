/**
 * Helpers every handler family shares: reading keyword arguments the way the
 * Python handlers take them, the per-frame file names area-detector templates
 * give, np.stack of frames, and turning a file-system error into a message
 * that names the file.
 */
import { readFile } from 'node:fs/promises';
import { NdArray } from '../codec/ndarray.js';
import { field, toNumber, type Doc, type Value } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import { pyPercentFormat, type FormatArg } from '../transforms/pyformat.js';

export function kw(doc: Doc, key: string, dflt?: Value): Value {
  const v = field(doc, key);
  if (v === undefined) {
    if (dflt === undefined) throw new PackStreamError('E_HANDLER', `missing keyword argument '${key}'`);
    return dflt;
  }
  return v;
}

export function int(v: Value, what: string): number {
  const n = toNumber(v);
  if (n === undefined || !Number.isFinite(n)) throw new PackStreamError('E_HANDLER', `${what} must be a number, got ${JSON.stringify(v)}`);
  return Math.trunc(n);
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
  const fpp = int(kw(rk, 'frame_per_point', 1), 'frame_per_point');
  return {
    fpp,
    of: (dk) => {
      const pn = int(kw(dk, 'point_number'), 'point_number');
      return { pn, start: pn * fpp, stop: (pn + 1) * fpp };
    },
  };
}

/** Template-based per-frame files (AD_TIFF, AD_HDF5_SINGLE): j in [pn*fpp, (pn+1)*fpp). */
export interface FrameFiles {
  fpp: number;
  forPoint(kwargs: Doc): string[];
}

export function frameFiles(filePath: string, rk: Doc): FrameFiles {
  const template = String(kw(rk, 'template'));
  const filename = fmtArg(kw(rk, 'filename'));
  const frames = pointFrames(rk);
  return {
    fpp: frames.fpp,
    forPoint: (dk) => {
      const { start, stop } = frames.of(dk);
      const out: string[] = [];
      for (let j = start; j < stop; j++) out.push(pyPercentFormat(template, [withSep(filePath), filename, j]));
      return out;
    },
  };
}

/** A PackStreamError for a file that could not be opened or read. */
export function fileError(file: string, e: unknown): PackStreamError {
  if (e instanceof PackStreamError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new PackStreamError('E_MISSING_FILE', `${file} does not exist`, { subject: file, cause: e });
  const reason = e instanceof Error ? e.message : String(e);
  return new PackStreamError(code ? 'E_IO' : 'E_HANDLER', `cannot read ${file}: ${reason}`, { subject: file, cause: e });
}

export async function readWholeFile(file: string, signal?: AbortSignal): Promise<Buffer> {
  try {
    return await readFile(file, signal ? { signal } : {});
  } catch (e) {
    throw fileError(file, e);
  }
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
