/**
 * NPY files and the handlers that read them: `NPY_SEQ` (ophyd.sim's
 * NumpySeqHandler, `{root/stem}_{index}.npy` per datum) and `npy`
 * (databroker's NpyHandler, one file per resource).
 *
 * The reader is our own: the NPY format is a magic string, a Python dict
 * literal (`descr`, `fortran_order`, `shape`) and the raw bytes, and we need
 * exactly those bytes with numpy's dtype string, which the npm NPY parsers
 * (typed arrays, fetch-based) do not keep. It returns what
 * `np.load(path, allow_pickle=False)` returns: the file's dtype (byte order
 * included) and shape, with Fortran-ordered data brought to C order.
 */
import { NdArray, parseDtype } from '../codec/ndarray.js';
import { PackStreamError } from '../errors.js';
import { fmtArg, kw, readWholeFile } from './kwargs.js';
import type { HandlerFactory } from './types.js';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

function bad(file: string, why: string): PackStreamError {
  return new PackStreamError('E_HANDLER', `${file} is not a readable NPY file: ${why}`, { subject: file });
}

/** Parse an NPY file's bytes into an NdArray (as np.load with allow_pickle=False). */
export function parseNpy(buf: Buffer, file = 'NPY data'): NdArray {
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw bad(file, 'no \\x93NUMPY magic');
  const major = buf[6]!;
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw bad(file, 'truncated header');
    headerLen = buf.readUInt32LE(8);
    start = 12;
  } else {
    throw bad(file, `format version ${major}.${buf[7]} is not supported`);
  }
  if (start + headerLen > buf.length) throw bad(file, 'truncated header');
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', start, start + headerLen);
  const descr = /['"]descr['"]\s*:\s*(['"])(.*?)\1/.exec(header);
  if (!descr) {
    if (/['"]descr['"]\s*:\s*\[/.test(header)) {
      throw new PackStreamError('E_UNSUPPORTED', `${file}: structured numpy dtypes are not supported`, { subject: file });
    }
    throw bad(file, `header has no descr: ${header.trim()}`);
  }
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header);
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header);
  if (!fortran || !shapeText) throw bad(file, `header lacks fortran_order or shape: ${header.trim()}`);
  const shape = shapeText[1]!.split(',').map((s) => s.trim()).filter((s) => s !== '').map((s) => {
    const n = Number(s.replace(/L$/, ''));
    if (!Number.isSafeInteger(n) || n < 0) throw bad(file, `bad shape (${shapeText[1]})`);
    return n;
  });
  const d = descr[2]!;
  if (d.endsWith('O')) {
    throw new PackStreamError('E_UNSUPPORTED', `${file}: object arrays cannot be loaded when allow_pickle=False`, { subject: file });
  }
  let itemsize: number;
  let dtype: string;
  try {
    const info = parseDtype(d);
    itemsize = info.itemsize;
    dtype = info.str;
  } catch (e) {
    throw new PackStreamError('E_UNSUPPORTED', `${file}: ${(e as Error).message}`, { subject: file, cause: e });
  }
  const offset = start + headerLen;
  const nbytes = itemsize * shape.reduce((a, b) => a * b, 1);
  if (buf.length < offset + nbytes) throw bad(file, `data is truncated (${buf.length - offset} of ${nbytes} bytes)`);
  const data = buf.subarray(offset, offset + nbytes);
  return fortran[1] === 'True' ? NdArray.fromFortranOrder(dtype, shape, data) : new NdArray(dtype, shape, data);
}

export async function readNpy(file: string, signal?: AbortSignal): Promise<NdArray> {
  return parseNpy(await readWholeFile(file, signal), file);
}

export const npyHandlers: Record<string, HandlerFactory> = {
  /** ophyd.sim.NumpySeqHandler: `np.load('{}_{}.npy'.format(root/stem, index))`. */
  NPY_SEQ: (fp) => {
    const fileFor = (dk: Parameters<typeof kw>[0]) => `${fp}_${fmtArg(kw(dk, 'index'))}.npy`;
    return {
      resourceFiles: () => [],
      filesForDatum: (dk) => [fileFor(dk)],
      read: (dk, ctx) => readNpy(fileFor(dk), ctx.signal),
    };
  },
  /** databroker.assets.handlers.NpyHandler: `np.load(filename)` for every datum. */
  npy: (fp) => ({
    resourceFiles: () => [fp],
    filesForDatum: () => [fp],
    read: (_dk, ctx) => readNpy(fp, ctx.signal),
  }),
};
