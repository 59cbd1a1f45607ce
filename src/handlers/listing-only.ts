/**
 * Specs whose files pack-stream can list (for manifests and copies) but not
 * read: their formats (CBF, SPE, Xspress3 layouts, Eiger master files, IMM,
 * TIFF timestamp tags, NDArrayTimeStamp) have no built-in reader. Filling them
 * needs a user handler module (`--handler SPEC=./my-handler.js`).
 */
import { glob } from 'node:fs/promises';
import path from 'node:path';
import { pyPercentFormat } from '../transforms/pyformat.js';
import { fmtArg, frameFiles, int, kw, withSep } from './kwargs.js';
import type { HandlerFactory } from './types.js';

const singleFile: HandlerFactory = (fp) => ({ filesForDatum: () => [fp], resourceFiles: () => [fp] });

const perFrame: HandlerFactory = (fp, rk) => {
  const frames = frameFiles(fp, rk);
  return { resourceFiles: () => [], filesForDatum: (dk) => frames.forPoint(dk) };
};

const eiger: HandlerFactory = (fp) => ({
  resourceFiles: () => [],
  filesForDatum: async (dk) => {
    const seq = fmtArg(kw(dk, 'seq_id'));
    const pattern = `${fp}_${seq}*`.replace(/[[\]{}?]/g, '[$&]');
    const out: string[] = [];
    for await (const f of glob(pattern)) out.push(path.resolve(f));
    return out.sort();
  },
});

export const listingOnlyHandlers: Record<string, HandlerFactory> = {
  AD_HDF5_ND_TS: singleFile,
  SPECS_HDF5_SINGLE_DATAFRAME: perFrame,
  AD_TIFF_TS: perFrame,
  AD_TIFF_ND_TS: perFrame,
  AD_SPE: (fp, rk) => {
    const template = String(kw(rk, 'template'));
    const filename = fmtArg(kw(rk, 'filename'));
    return {
      resourceFiles: () => [],
      filesForDatum: (dk) => [pyPercentFormat(template, [withSep(fp), filename, int(kw(dk, 'point_number'), 'point_number')])],
    };
  },
  AD_CBF: (fp, rk) => {
    const template = String(kw(rk, 'template'));
    const filename = fmtArg(kw(rk, 'filename'));
    const fpp = int(kw(rk, 'frame_per_point', 1), 'frame_per_point');
    const initial = int(kw(rk, 'initial_number', 1), 'initial_number');
    return {
      resourceFiles: () => [],
      filesForDatum: (dk) => {
        const pn = int(kw(dk, 'point_number'), 'point_number');
        const out: string[] = [];
        // The Python handler's stop ignores initial_number; kept as is.
        for (let j = initial + pn * fpp; j < (pn + 2) * fpp; j++) out.push(pyPercentFormat(template, [withSep(fp), filename, j]));
        return out;
      },
    };
  },
  XSP3: singleFile,
  XSP3_FLY: singleFile,
  XPS3_FLY: singleFile,
  DEXELA_FLY_V1: singleFile,
  MERLIN_FLY_STREAM_V1: singleFile,
  MERLIN_FLY: singleFile,
  IMM: singleFile,
  AD_EIGER: eiger,
  AD_EIGER2: eiger,
  AD_EIGER_SLICE: eiger,
};
