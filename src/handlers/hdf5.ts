/**
 * Area-detector HDF5 handlers (bluesky/area-detector-handlers, handlers.py):
 * - `AD_HDF5`, `AD_HDF5_SWMR`, `TPX_HDF5`: one file for the resource; a datum is
 *   rows [pn*fpp, (pn+1)*fpp) of `/entry/data/data` (Timepix:
 *   `/entry/instrument/detector/data`), leading axis kept. An empty slice is an
 *   error, as in Python. The file is opened once per resource, as the Python
 *   handler opens it in its constructor. SWMR files are read like any other:
 *   at pack time they are complete.
 * - `AD_HDF5_TS`, `AD_HDF5_SWMR_TS`: `NDArrayEpicsTSSec + NDArrayEpicsTSnSec * 1e-9`
 *   over the same rows, squeezed; numpy's type rules decide float64 or float32,
 *   and a single value is a Python float (a numpy scalar for float32).
 * - `AD_HDF5_SINGLE`: one file per frame from the template, each file's whole
 *   `/entry/data/data`, stacked.
 */
import { NdArray, NdScalar } from '../codec/ndarray.js';
import { pyFloat, type Value } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import { closeH5, openH5, readRows } from './h5lib.js';
import { datumBudget, frameFiles, pointFrames, stack } from './kwargs.js';
import type { Handler, HandlerFactory } from './types.js';

type H5File = Awaited<ReturnType<typeof openH5>>;

/** One open file per resource, opened on the first read and closed with the run. */
function fileOnce(file: string): { get(): Promise<H5File>; close(): void } {
  let f: Promise<H5File> | undefined;
  return {
    get: () => (f ??= openH5(file).catch((e) => { f = undefined; throw e; })),
    close: () => {
      const p = f;
      f = undefined;
      void p?.then(closeH5, () => undefined);
    },
  };
}

function sliceHandler(key: string): HandlerFactory {
  return (fp, rk): Handler => {
    const frames = pointFrames(rk);
    const file = fileOnce(fp);
    return {
      resourceFiles: () => [fp],
      filesForDatum: () => [fp],
      read: async (dk, ctx) => {
        const { pn, start, stop } = frames.of(dk);
        const rows = readRows(await file.get(), key, fp, start, stop, ctx.maxBytes);
        if (rows.shape[0] === 0) {
          throw new PackStreamError('E_HANDLER', `${fp}: point_number ${pn} with frame_per_point ${frames.fpp} is beyond the end of ${key} (Invalid slicing bounds)`, { subject: fp });
        }
        return rows;
      },
      close: () => file.close(),
    };
  };
}

const TS_SEC = '/entry/instrument/NDAttributes/NDArrayEpicsTSSec';
const TS_NSEC = '/entry/instrument/NDAttributes/NDArrayEpicsTSnSec';

function squeeze(shape: readonly number[]): number[] {
  return shape.filter((d) => d !== 1);
}

/** numpy: `sec + nsec * 1e-9` (Python float is a weak scalar), as float32 or float64. */
function timestampDtype(sec: NdArray, nsec: NdArray): 'f4' | 'f8' {
  const kindOf = (a: NdArray) => a.dtype[1]!;
  const sizeOf = (a: NdArray) => a.itemsize;
  const scaled = kindOf(nsec) === 'f' ? sizeOf(nsec) : 8; // an int array times a float is float64
  if (scaled === 8) return 'f8';
  if (kindOf(sec) === 'f') return sizeOf(sec) === 8 ? 'f8' : 'f4';
  return sizeOf(sec) <= 2 ? 'f4' : 'f8'; // int8/16 + float32 stays float32
}

export function epicsTimestamps(sec: NdArray, nsec: NdArray, file: string): Value {
  const shape = squeeze(sec.shape);
  const nshape = squeeze(nsec.shape);
  if (sec.size !== nsec.size && nsec.size !== 1 && sec.size !== 1) {
    throw new PackStreamError('E_HANDLER', `${file}: ${TS_SEC} and ${TS_NSEC} have different lengths`, { subject: file });
  }
  const outShape = sec.size >= nsec.size ? shape : nshape;
  const n = Math.max(sec.size, nsec.size);
  const f4 = timestampDtype(sec, nsec) === 'f4';
  const out = f4 ? new Float32Array(n) : new Float64Array(n);
  const nsecF4 = nsec.dtype.endsWith('f4');
  for (let i = 0; i < n; i++) {
    const s = Number(sec.item(sec.size === 1 ? 0 : i));
    const ns = Number(nsec.item(nsec.size === 1 ? 0 : i));
    out[i] = f4 ? Math.fround(Math.fround(s) + (nsecF4 ? Math.fround(ns * Math.fround(1e-9)) : ns * 1e-9)) : s + ns * 1e-9;
  }
  const arr = NdArray.fromTypedArray(out, outShape);
  if (outShape.length > 0) return arr;
  // a 0-d result is a numpy scalar: float64 is a Python float, float32 is msgpack-numpy's scalar map
  return f4 ? new NdScalar(arr.dtype, arr.data) : pyFloat(out[0]!);
}

const timestampHandler: HandlerFactory = (fp, rk) => {
  const frames = pointFrames(rk);
  const file = fileOnce(fp);
  return {
    resourceFiles: () => [fp],
    filesForDatum: () => [fp],
    read: async (dk, ctx) => {
      const { start, stop } = frames.of(dk);
      const f = await file.get();
      const sec = readRows(f, TS_SEC, fp, start, stop, ctx.maxBytes);
      const nsec = readRows(f, TS_NSEC, fp, start, stop, ctx.maxBytes);
      return epicsTimestamps(sec, nsec, fp);
    },
    close: () => file.close(),
  };
};

const singleHandler: HandlerFactory = (fp, rk, limits) => {
  const frames = frameFiles(fp, rk, limits);
  return {
    resourceFiles: () => [],
    filesForDatum: (dk) => frames.forPoint(dk),
    read: async (dk, ctx) => {
      const out: NdArray[] = [];
      let first: string | undefined;
      const budget = datumBudget(ctx.maxBytes, fp);
      for (const name of frames.forPoint(dk)) {
        first ??= name;
        const f = await openH5(name);
        try {
          const a = readRows(f, '/entry/data/data', name, undefined, undefined, ctx.maxBytes);
          budget(a.nbytes);
          out.push(a);
        } finally {
          closeH5(f);
        }
      }
      return stack(out, first ?? fp);
    },
  };
};

export const hdf5Handlers: Record<string, HandlerFactory> = {
  AD_HDF5: sliceHandler('/entry/data/data'),
  AD_HDF5_SWMR: sliceHandler('/entry/data/data'),
  TPX_HDF5: sliceHandler('/entry/instrument/detector/data'),
  AD_HDF5_TS: timestampHandler,
  AD_HDF5_SWMR_TS: timestampHandler,
  AD_HDF5_SINGLE: singleHandler,
};
