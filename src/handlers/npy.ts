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
import { ExternalFile } from './external-file.js';
import { fmtArg, kw } from './kwargs.js';
import type { HandlerFactory } from './types.js';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

function bad(file: string, why: string): PackStreamError {
  return new PackStreamError('E_HANDLER', `${file} is not a readable NPY file: ${why}`, { subject: file });
}

/** numpy's default `max_header_size` for np.load without allow_pickle: a longer header is refused there too. */
const MAX_HEADER_SIZE = 10000;

interface NpyHeader {
  dtype: string;
  shape: number[];
  fortran: boolean;
  /** Where the data starts, and how many bytes of it the header promises. */
  offset: number;
  nbytes: number;
}

function tooLong(file: string, n: number): PackStreamError {
  return bad(file, `its header (${n}) is longer than numpy's max_header_size (${MAX_HEADER_SIZE})`);
}

/** The header length from the first 12 bytes: [header start, header length]. */
function headerSpan(head: Buffer, file: string): [number, number] {
  if (head.length < 10 || !head.subarray(0, 6).equals(MAGIC)) throw bad(file, 'no \\x93NUMPY magic');
  const major = head[6]!;
  let span: [number, number];
  if (major === 1) span = [10, head.readUInt16LE(8)];
  else if (major === 2 || major === 3) {
    if (head.length < 12) throw bad(file, 'truncated header');
    span = [12, head.readUInt32LE(8)];
  } else throw bad(file, `format version ${major}.${head[7]} is not supported`);
  // numpy counts characters; a UTF-8 character is at most 4 bytes
  if (span[1] > 4 * MAX_HEADER_SIZE) throw tooLong(file, span[1]);
  return span;
}

/** Parse the header dict (the bytes from the magic to the end of the header). */
function parseHeader(buf: Buffer, file: string): NpyHeader {
  const [start, headerLen] = headerSpan(buf, file);
  if (start + headerLen > buf.length) throw bad(file, 'truncated header');
  const header = buf.toString(buf[6] === 3 ? 'utf8' : 'latin1', start, start + headerLen);
  if (header.length > MAX_HEADER_SIZE) throw tooLong(file, header.length);
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
  // a float product: a hostile shape overflows to a huge number, which the size checks then refuse
  const nbytes = itemsize * shape.reduce((a, b) => a * b, 1);
  return { dtype, shape, fortran: fortran[1] === 'True', offset: start + headerLen, nbytes };
}

function toArray(h: NpyHeader, data: Buffer): NdArray {
  return h.fortran ? NdArray.fromFortranOrder(h.dtype, h.shape, data) : new NdArray(h.dtype, h.shape, data);
}

function truncated(file: string, have: number, h: NpyHeader): PackStreamError {
  return bad(file, `data is truncated (${Math.max(0, have)} of ${h.nbytes} bytes)`);
}

/** Parse an NPY file's bytes into an NdArray (as np.load with allow_pickle=False). */
export function parseNpy(buf: Buffer, file = 'NPY data'): NdArray {
  const h = parseHeader(buf, file);
  if (buf.length < h.offset + h.nbytes) throw truncated(file, buf.length - h.offset, h);
  return toArray(h, buf.subarray(h.offset, h.offset + h.nbytes));
}

/**
 * np.load of a file: the header first, then exactly the bytes it promises, once
 * they are known to be in the file and within `maxBytes`.
 */
export async function readNpy(file: string, signal?: AbortSignal, maxBytes?: number): Promise<NdArray> {
  const f = await ExternalFile.open(file);
  try {
    const head = await f.read(0, 12, signal);
    const [start, headerLen] = headerSpan(head, file);
    const h = parseHeader(await f.read(0, start + headerLen, signal), file);
    if (f.size - h.offset < h.nbytes) throw truncated(file, f.size - h.offset, h);
    if (maxBytes !== undefined && h.nbytes > maxBytes) {
      throw new PackStreamError('E_LIMIT', `${file}: the array of ${h.nbytes} bytes exceeds the limit of ${maxBytes} bytes per datum (--max-datum-bytes)`, { subject: file });
    }
    const data = await f.read(h.offset, h.nbytes, signal);
    if (data.length < h.nbytes) throw truncated(file, data.length, h);
    return toArray(h, data);
  } finally {
    await f.close();
  }
}

export const npyHandlers: Record<string, HandlerFactory> = {
  /** ophyd.sim.NumpySeqHandler: `np.load('{}_{}.npy'.format(root/stem, index))`. */
  NPY_SEQ: (fp) => {
    const fileFor = (dk: Parameters<typeof kw>[0]) => `${fp}_${fmtArg(kw(dk, 'index'))}.npy`;
    return {
      resourceFiles: () => [],
      filesForDatum: (dk) => [fileFor(dk)],
      read: (dk, ctx) => readNpy(fileFor(dk), ctx.signal, ctx.maxBytes),
    };
  },
  /** databroker.assets.handlers.NpyHandler: `np.load(filename)` for every datum. */
  npy: (fp) => ({
    resourceFiles: () => [fp],
    filesForDatum: () => [fp],
    read: (_dk, ctx) => readNpy(fp, ctx.signal, ctx.maxBytes),
  }),
};
