/**
 * Which files a resource and its datums refer to, per handler spec, as the
 * Python handlers' `get_file_list` computes them (formats.md §6). The path a
 * handler receives is `join(root, resource_path)` where root is the source's
 * root_map applied to the resource's root; an absolute resource_path wins.
 *
 * Site-specific specs (e.g. `AD_HDF5_lambda`) map onto a built-in rule with
 * `--handler SPEC=BUILTIN`.
 */
import { glob } from 'node:fs/promises';
import path from 'node:path';
import { field, isPlainDoc, toNumber, type Doc, type Value } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import { pyPercentFormat, type FormatArg } from './pyformat.js';

export interface FileLister {
  /** Files needed by one datum (its datum_kwargs). */
  filesForDatum(kwargs: Doc): Promise<string[]> | string[];
  /** Files needed by the resource whatever its datums (single-file formats). */
  resourceFiles(): string[];
}

export type ListerFactory = (filePath: string, resourceKwargs: Doc) => FileLister;

function kw(doc: Doc, key: string, dflt?: Value): Value {
  const v = field(doc, key);
  if (v === undefined) {
    if (dflt === undefined) throw new PackStreamError('E_HANDLER', `missing keyword argument '${key}'`);
    return dflt;
  }
  return v;
}

function int(v: Value, what: string): number {
  const n = toNumber(v);
  if (n === undefined || !Number.isFinite(n)) throw new PackStreamError('E_HANDLER', `${what} must be a number, got ${JSON.stringify(v)}`);
  return Math.trunc(n);
}

function fmtArg(v: Value): FormatArg {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint') return v;
  const n = toNumber(v);
  if (n !== undefined) return n;
  return String(v);
}

/** os.path.join(p, ''): one trailing separator. */
function withSep(p: string): string {
  return p.endsWith('/') ? p : `${p}/`;
}

const singleFile: ListerFactory = (fp) => ({ filesForDatum: () => [fp], resourceFiles: () => [fp] });

/** One file per frame j in [pn*fpp, (pn+1)*fpp): template % (dir/, filename, j). */
const perFrame: ListerFactory = (fp, rk) => {
  const template = String(kw(rk, 'template'));
  const filename = fmtArg(kw(rk, 'filename'));
  const fpp = int(kw(rk, 'frame_per_point', 1), 'frame_per_point');
  return {
    resourceFiles: () => [],
    filesForDatum: (dk) => {
      const pn = int(kw(dk, 'point_number'), 'point_number');
      const out: string[] = [];
      for (let j = pn * fpp; j < (pn + 1) * fpp; j++) out.push(pyPercentFormat(template, [withSep(fp), filename, j]));
      return out;
    },
  };
};

export const BUILTIN_LISTERS: Record<string, ListerFactory> = {
  NPY_SEQ: (fp) => ({
    resourceFiles: () => [],
    filesForDatum: (dk) => [`${fp}_${fmtArg(kw(dk, 'index'))}.npy`],
  }),
  npy: singleFile,
  AD_HDF5: singleFile,
  AD_HDF5_SWMR: singleFile,
  AD_HDF5_TS: singleFile,
  AD_HDF5_SWMR_TS: singleFile,
  AD_HDF5_ND_TS: singleFile,
  TPX_HDF5: singleFile,
  AD_HDF5_SINGLE: perFrame,
  SPECS_HDF5_SINGLE_DATAFRAME: perFrame,
  AD_TIFF: perFrame,
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
  AD_EIGER: (fp) => ({
    resourceFiles: () => [],
    filesForDatum: async (dk) => {
      const seq = fmtArg(kw(dk, 'seq_id'));
      const pattern = `${fp}_${seq}*`.replace(/[[\]{}?]/g, '[$&]');
      const out: string[] = [];
      for await (const f of glob(pattern)) out.push(path.resolve(f));
      return out.sort();
    },
  }),
};
BUILTIN_LISTERS.AD_EIGER2 = BUILTIN_LISTERS.AD_EIGER!;
BUILTIN_LISTERS.AD_EIGER_SLICE = BUILTIN_LISTERS.AD_EIGER!;

export class HandlerRegistry {
  private readonly rules = new Map<string, ListerFactory>(Object.entries(BUILTIN_LISTERS));
  private readonly aliases = new Map<string, string>();

  /** `--handler SPEC=BUILTIN`. */
  alias(spec: string, builtin: string): void {
    const f = BUILTIN_LISTERS[builtin];
    if (!f) throw new PackStreamError('E_USAGE', `--handler ${spec}=${builtin}: '${builtin}' is not a built-in handler (built-ins: ${Object.keys(BUILTIN_LISTERS).join(', ')})`, { subject: builtin });
    this.rules.set(spec, f);
    this.aliases.set(spec, builtin);
  }

  register(spec: string, factory: ListerFactory): void {
    this.rules.set(spec, factory);
  }

  has(spec: string): boolean {
    return this.rules.has(spec);
  }

  lister(resource: Doc, filePath: string): FileLister {
    const spec = String(resource.spec ?? '');
    const f = this.rules.get(spec);
    if (!f) {
      throw new PackStreamError('E_NO_HANDLER', `no handler for resource spec '${spec}': map it onto a built-in rule with --handler ${spec}=BUILTIN (e.g. --handler ${spec}=AD_HDF5), or use --ignore-external`, { subject: spec });
    }
    const rk = isPlainDoc(resource.resource_kwargs) ? resource.resource_kwargs : {};
    try {
      return f(filePath, rk);
    } catch (e) {
      if (e instanceof PackStreamError) throw new PackStreamError(e.code, `resource ${String(resource.uid)} (spec ${spec}): ${e.message}`, { subject: String(resource.uid), cause: e });
      throw e;
    }
  }
}

/** Python's posixpath.join(a, b), which does not normalise. */
export function osPathJoin(a: string, b: string): string {
  if (b.startsWith('/')) return b;
  if (a === '' || a.endsWith('/')) return a + b;
  return `${a}/${b}`;
}

/** Filler.get_handler's path: root_map applied, then os.path.join(root, resource_path). */
export function resourceFilePath(resource: Doc, rootMap: Record<string, string>): { originalRoot: string; mappedRoot: string; filePath: string } {
  const originalRoot = typeof resource.root === 'string' ? resource.root : '';
  const mappedRoot = rootMap[originalRoot] ?? originalRoot;
  const rp = typeof resource.resource_path === 'string' ? resource.resource_path : '';
  const filePath = mappedRoot ? osPathJoin(mappedRoot, rp) : rp;
  return { originalRoot, mappedRoot, filePath };
}
