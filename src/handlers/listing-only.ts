/**
 * Specs whose files pack-stream can list (for manifests and copies) but not
 * read: their formats (CBF, SPE, Xspress3 layouts, Eiger master files, IMM,
 * TIFF timestamp tags, NDArrayTimeStamp) have no built-in reader. Filling them
 * needs a user handler module (`--handler SPEC=./my-handler.js`).
 */
import { glob } from 'node:fs/promises';
import path from 'node:path';
import { checkFilesPerDatum, fmtArg, frameFiles, frameRange, intKwarg, kw, templatePath, withSep } from './kwargs.js';
import type { HandlerFactory } from './types.js';

const singleFile: HandlerFactory = (fp) => ({ filesForDatum: () => [fp], resourceFiles: () => [fp] });

const perFrame: HandlerFactory = (fp, rk, limits) => {
  const frames = frameFiles(fp, rk, limits);
  return { resourceFiles: () => [], filesForDatum: (dk) => frames.forPoint(dk) };
};

/**
 * Eiger: `glob(f'{prefix}_{seq_id}*')`. The prefix and seq_id are matched
 * literally (Node's glob would take `**` in a hostile path as "every directory
 * below"), and the listing stops at the per-datum limit.
 */
const eiger: HandlerFactory = (fp, _rk, limits) => ({
  resourceFiles: () => [],
  filesForDatum: async (dk) => {
    const seq = fmtArg(kw(dk, 'seq_id'));
    const pattern = `${`${fp}_${seq}`.replace(/[[\]{}?*!()+@]/g, '[$&]')}*`;
    const out: string[] = [];
    for await (const f of glob(pattern)) {
      out.push(path.resolve(f));
      checkFilesPerDatum(out.length, limits, `seq_id ${String(seq)}`);
    }
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
      // `%d` takes a float too (truncated), as in Python
      filesForDatum: (dk) => [templatePath(template, [withSep(fp), filename, fmtArg(kw(dk, 'point_number'))])],
    };
  },
  AD_CBF: (fp, rk, limits) => {
    const template = String(kw(rk, 'template'));
    const filename = fmtArg(kw(rk, 'filename'));
    const fpp = intKwarg(kw(rk, 'frame_per_point', 1), 'frame_per_point');
    const initial = intKwarg(kw(rk, 'initial_number', 1), 'initial_number');
    // The Python handler's range is [initial + pn*fpp, (pn+2)*fpp): its stop ignores
    // initial_number (kept as is), so every datum lists 2*fpp - initial files.
    checkFilesPerDatum(2 * fpp - initial, limits, `initial_number ${initial} with frame_per_point ${fpp}`);
    return {
      resourceFiles: () => [],
      filesForDatum: function* (dk) {
        const pn = intKwarg(kw(dk, 'point_number'), 'point_number');
        const [start, stop] = frameRange(initial + pn * fpp, (pn + 2) * fpp, pn, fpp);
        for (let j = start; j < stop; j++) yield templatePath(template, [withSep(fp), filename, j]);
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
