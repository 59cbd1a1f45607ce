/**
 * `AD_TIFF` (area-detector-handlers' AreaDetectorTiffHandler): one TIFF per
 * frame from the template (`%s%s_%6.6d.tiff`), frames j in [pn*fpp, (pn+1)*fpp),
 * each read as `tifffile.TiffFile(f).asarray()` and stacked with np.array.
 *
 * Decoding is geotiff's (maintained, pure JS): uncompressed, LZW, Deflate,
 * PackBits, JPEG, LERC and Zstd; 8/16/32-bit integers and 32/64-bit floats; one
 * or more samples per pixel. Arrays come out as tifffile gives them: native
 * byte order, (H, W) for one sample, (H, W, S) for interleaved samples, (S, H, W)
 * for planar ones, and pages stacked in front when a file holds several.
 *
 * geotiff's raster loop reads pixel by pixel (about 10 MB/s on a 2048×2048
 * frame), so for the usual area-detector pages — interleaved samples of one
 * whole-byte type, with a default-parameter codec — the strips or tiles geotiff
 * decodes are copied into place row by row instead.
 */
import { endianness } from 'node:os';
import { NdArray, dtypeOfTypedArray } from '../codec/ndarray.js';
import { PackStreamError } from '../errors.js';
import { readExternalFile } from './external-file.js';
import { datumBudget, fileError, frameFiles, stack } from './kwargs.js';
import type { HandlerFactory } from './types.js';

type Raster = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

type GeoTiff = typeof import('geotiff');
type Image = Awaited<ReturnType<InstanceType<GeoTiff['GeoTIFF']>['getImage']>>;

let geotiff: Promise<GeoTiff> | undefined;

/** Compressions whose geotiff decoder takes the default parameters: none, LZW, Deflate, PackBits, Zstd. */
const PLAIN_CODECS = new Set([1, 5, 8, 32946, 32773, 50000]);

/** One page by copying decoded strips or tiles row by row, or null when the page needs geotiff's own raster loop. */
async function readPageByBlocks(lib: GeoTiff, image: Image, signal?: AbortSignal): Promise<NdArray | null> {
  if (endianness() !== 'LE' || image.planarConfiguration !== 1) return null;
  const dir = image.fileDirectory;
  const compression = Number(dir.getValue('Compression') ?? 1);
  const predictor = Number((await dir.loadValue('Predictor')) ?? 1);
  if (!PLAIN_CODECS.has(compression)) return null;
  const spp = image.getSamplesPerPixel();
  const bits = image.getBitsPerSample(0);
  const format = image.getSampleFormat(0);
  for (let i = 1; i < spp; i++) if (image.getBitsPerSample(i) !== bits || image.getSampleFormat(i) !== format) return null;
  const kind = format === 1 ? 'u' : format === 2 ? 'i' : format === 3 ? 'f' : null;
  if (kind === null || ![8, 16, 32, 64].includes(bits) || (kind === 'f' && bits < 32)) return null;
  const size = bits / 8;
  const bpp = spp * size;
  const w = image.getWidth();
  const h = image.getHeight();
  const tw = image.getTileWidth();
  const th = image.getTileHeight();
  const decoder = await lib.getDecoder(compression, { tileWidth: tw, tileHeight: th, planarConfiguration: 1, bitsPerSample: await dir.loadValue('BitsPerSample'), predictor } as never);
  const out = Buffer.allocUnsafe(w * h * bpp);
  for (let y = 0; y * th < h; y++) {
    for (let x = 0; x * tw < w; x++) {
      const block = await image.getTileOrStrip(x, y, 0, decoder, signal);
      const src = Buffer.from(block.data as ArrayBuffer);
      const rows = Math.min(image.getBlockHeight(y), h - y * th);
      const cols = Math.min(tw, w - x * tw);
      if (src.length < ((rows - 1) * tw + cols) * bpp) return null;
      for (let r = 0; r < rows; r++) src.copy(out, ((y * th + r) * w + x * tw) * bpp, r * tw * bpp, (r * tw + cols) * bpp);
    }
  }
  if (!image.littleEndian && size > 1) {
    if (size === 2) out.swap16();
    else if (size === 4) out.swap32();
    else out.swap64();
  }
  return new NdArray(`${size === 1 ? '|' : '<'}${kind}${size}`, spp > 1 ? [h, w, spp] : [h, w], out);
}

/**
 * Decode every page of a TIFF file as tifffile's `asarray()` would. The file is
 * read as it was when opened; each page's decoded size is added up before it is
 * decoded and refused beyond `maxBytes`, and a chain of pages that loops back
 * is refused (geotiff would follow it for ever).
 */
export async function readTiff(file: string, signal?: AbortSignal, maxBytes?: number): Promise<NdArray> {
  const buf = await readExternalFile(file, { ...(signal ? { signal } : {}), ...(maxBytes !== undefined ? { maxBytes } : {}) });
  const budget = datumBudget(maxBytes, file);
  const lib = await (geotiff ??= import('geotiff'));
  const { fromArrayBuffer } = lib;
  const ab = buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength ? (buf.buffer as ArrayBuffer) : buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  const pages: NdArray[] = [];
  try {
    const tiff = await fromArrayBuffer(ab, signal);
    const offsets = new Set<number>([tiff.firstIFDOffset]);
    for (let i = 0; ; i++) {
      if (i > 0) {
        const next = (await tiff.requestIFD(i - 1)).nextIFDByteOffset;
        if (next === 0) break;
        if (offsets.has(next)) throw new PackStreamError('E_HANDLER', `cannot decode TIFF ${file}: page ${i} points back to an earlier page`, { subject: file });
        offsets.add(next);
      }
      const image = await tiff.getImage(i);
      const w = image.getWidth();
      const h = image.getHeight();
      const spp = image.getSamplesPerPixel();
      const bits = image.getBitsPerSample(0);
      if (![8, 16, 32, 64].includes(bits)) {
        throw new PackStreamError('E_UNSUPPORTED', `${file}: TIFF page ${i} has ${bits}-bit samples, which pack-stream cannot read (8, 16, 32 or 64 bits only)`, { subject: file });
      }
      budget(w * h * spp * (bits / 8)); // before decoding: a small file can claim a huge page
      const fast = await readPageByBlocks(lib, image, signal);
      if (fast) {
        pages.push(fast);
        continue;
      }
      let data: Raster;
      let shape: number[];
      if (spp > 1 && image.planarConfiguration === 2) {
        const planes = (await image.readRasters({ interleave: false, ...(signal ? { signal } : {}) })) as unknown as Raster[];
        const first = planes[0]!;
        const all = new (first.constructor as new (n: number) => Raster)(first.length * planes.length);
        planes.forEach((p, k) => all.set(p as never, k * first.length));
        data = all;
        shape = [spp, h, w];
      } else {
        data = (await image.readRasters({ interleave: true, ...(signal ? { signal } : {}) })) as unknown as Raster;
        shape = spp > 1 ? [h, w, spp] : [h, w];
      }
      if (data.BYTES_PER_ELEMENT * 8 !== bits) {
        throw new PackStreamError('E_UNSUPPORTED', `${file}: TIFF page ${i} has ${bits}-bit samples of format ${image.getSampleFormat(0)}, decoded as ${dtypeOfTypedArray(data)}; pack-stream cannot reproduce tifffile's dtype for it`, { subject: file });
      }
      pages.push(NdArray.fromTypedArray(data, shape));
    }
  } catch (e) {
    if (e instanceof PackStreamError) throw e;
    throw new PackStreamError('E_HANDLER', `cannot decode TIFF ${file}: ${(e as Error).message ?? String(e)}`, { subject: file, cause: e });
  }
  if (pages.length === 0) throw fileError(file, new Error('no images in the file'));
  return pages.length === 1 ? pages[0]! : stack(pages, file);
}

const tiffSeries: HandlerFactory = (fp, rk, limits) => {
  const frames = frameFiles(fp, rk, limits);
  return {
    resourceFiles: () => [],
    filesForDatum: (dk) => frames.forPoint(dk),
    read: async (dk, ctx) => {
      const out: NdArray[] = [];
      let first: string | undefined;
      const budget = datumBudget(ctx.maxBytes, fp);
      for (const f of frames.forPoint(dk)) {
        first ??= f;
        const a = await readTiff(f, ctx.signal, ctx.maxBytes);
        budget(a.nbytes);
        out.push(a);
      }
      return stack(out, first ?? fp);
    },
  };
};

export const tiffHandlers: Record<string, HandlerFactory> = {
  AD_TIFF: tiffSeries,
};
