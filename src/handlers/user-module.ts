/**
 * User handlers from JS/TS modules: `--handler SPEC=./my-handler.js`, the
 * counterpart of databroker-pack's `--handler-registry` (which imports Python
 * handler classes by dotted path). `--handler SPEC=BUILTIN` still maps a spec
 * onto a built-in.
 *
 * The module exports, as `default`, `handler` or under the spec's own name,
 * either a factory `(filePath, resourceKwargs) => handler` or a class built
 * with `new Cls(filePath, resourceKwargs)`, like a Python handler. The handler
 * has `read(datumKwargs)` returning the datum's data (an `NdArray`, a typed
 * array, numbers or nested lists), and may have `filesForDatum(datumKwargs)`,
 * `resourceFiles()` (needed to list or copy files) and `close()`.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { NdArray } from '../codec/ndarray.js';
import type { Doc, Value } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import type { HandlerRegistry } from '../transforms/handlers.js';
import { BUILTIN_HANDLERS } from './builtin.js';
import { forEachDatumFile } from '../transforms/resources.js';
import { checkRegularFile } from './external-file.js';
import type { FileList, Handler, HandlerFactory, HandlerLimits, ReadContext } from './types.js';

type UserHandler = Partial<Handler> & Record<string, unknown>;
type UserExport = ((filePath: string, rk: Doc) => UserHandler) | (new (filePath: string, rk: Doc) => UserHandler);

function isClass(f: unknown): boolean {
  return typeof f === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(f));
}

/** What a user read() returned, as a document value (typed arrays become 1-d NdArrays). */
function asValue(v: unknown, spec: string): Value {
  if (ArrayBuffer.isView(v) && !(v instanceof DataView) && !Buffer.isBuffer(v)) {
    return NdArray.fromTypedArray(v as Parameters<typeof NdArray.fromTypedArray>[0]);
  }
  if (v === undefined) throw new PackStreamError('E_HANDLER', `the handler for ${spec} returned nothing`);
  return v as Value;
}

/** Every file of a datum's list is (a link to) a regular file. */
async function checkListedFiles(list: FileList | Promise<FileList>, limits: HandlerLimits): Promise<void> {
  const files: string[] = [];
  await forEachDatumFile(list, limits.filesPerDatum, (f) => files.push(f));
  for (const f of files) await checkRegularFile(f);
}

function wrap(h: UserHandler, spec: string, where: string, limits: HandlerLimits): Handler {
  if (h === null || typeof h !== 'object') throw new PackStreamError('E_HANDLER', `${where} did not build a handler object for ${spec}`);
  const noList = (): never => {
    throw new PackStreamError('E_HANDLER', `the ${spec} handler from ${where} cannot list files (it has no filesForDatum); use --fill-external or --ignore-external, or add filesForDatum(datumKwargs)`);
  };
  const out: Handler = {
    filesForDatum: typeof h.filesForDatum === 'function' ? (dk) => h.filesForDatum!.call(h, dk) : noList,
    resourceFiles: typeof h.resourceFiles === 'function' ? () => h.resourceFiles!.call(h) : () => [],
  };
  if (typeof h.read === 'function') {
    const read = h.read;
    const lists = typeof h.filesForDatum === 'function';
    out.read = async (dk: Doc, ctx: ReadContext) => {
      // The module reads files its own way; what it says it reads must at least be regular files.
      if (lists) await checkListedFiles(out.filesForDatum(dk), limits);
      return asValue(await read.call(h, dk, ctx), spec);
    };
  }
  if (typeof h.close === 'function') out.close = () => h.close!.call(h);
  return out;
}

/** Import a handler module and return its factory for `spec`. */
export async function loadHandlerModule(spec: string, target: string, cwd = process.cwd()): Promise<HandlerFactory> {
  const file = path.resolve(cwd, target);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    throw new PackStreamError('E_USAGE', `--handler ${spec}=${target}: cannot load ${file}: ${(e as Error).message ?? String(e)}`, { subject: file, cause: e });
  }
  const exp = (mod[spec] ?? mod.handler ?? mod.default) as UserExport | undefined;
  if (typeof exp !== 'function') {
    throw new PackStreamError('E_USAGE', `--handler ${spec}=${target}: ${file} exports no handler (export a factory or class as default, as 'handler' or as '${spec}')`, { subject: file });
  }
  const construct = isClass(exp);
  return (filePath, rk, limits) => {
    const h = construct ? new (exp as new (fp: string, rk: Doc) => UserHandler)(filePath, rk) : (exp as (fp: string, rk: Doc) => UserHandler)(filePath, rk);
    return wrap(h, spec, file, limits);
  };
}

/** True when `--handler SPEC=TARGET` names a module file rather than a built-in. */
export function isModulePath(target: string): boolean {
  return target.includes('/') || target.includes('\\') || /\.(?:m?[jt]s|cjs|cts)$/.test(target);
}

/** Apply `--handler SPEC=BUILTIN|PATH` options (in order) to a registry. */
export async function applyHandlerOptions(registry: HandlerRegistry, options: readonly string[], cwd = process.cwd()): Promise<HandlerRegistry> {
  for (const h of options) {
    const eq = h.indexOf('=');
    if (eq <= 0 || eq === h.length - 1) throw new PackStreamError('E_USAGE', `--handler takes SPEC=BUILTIN or SPEC=./module.js, got '${h}'`);
    const spec = h.slice(0, eq);
    const target = h.slice(eq + 1);
    if (!isModulePath(target) || target in BUILTIN_HANDLERS) registry.alias(spec, target);
    else registry.register(spec, await loadHandlerModule(spec, target, cwd));
  }
  return registry;
}
