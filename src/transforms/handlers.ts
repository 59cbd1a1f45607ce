/**
 * Which files a resource and its datums refer to, per handler spec, as the
 * Python handlers' `get_file_list` computes them (formats.md §6). The path a
 * handler receives is `join(root, resource_path)` where root is the source's
 * root_map applied to the resource's root; an absolute resource_path wins.
 *
 * The handlers themselves live in `src/handlers/`, one module per spec family;
 * each lists a datum's files and, for the families pack-stream can decode, reads
 * its data (--fill-external). Site-specific specs (e.g. `AD_HDF5_lambda`) map
 * onto a built-in with `--handler SPEC=BUILTIN`, or onto a user module with
 * `--handler SPEC=./my-handler.js` (see `handlers/user-module.ts`).
 */
import { isPlainDoc, type Doc } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import { BUILTIN_HANDLERS, READABLE_SPECS } from '../handlers/builtin.js';
import { DEFAULT_LIMITS, type FileLister, type Handler, type HandlerFactory, type HandlerLimits } from '../handlers/types.js';

export type { FileList, FileLister, Handler, HandlerFactory, HandlerLimits, ReadContext } from '../handlers/types.js';
export { DEFAULT_LIMITS };
/** @deprecated the factories now build full handlers; kept for the 0.1 API. */
export type ListerFactory = HandlerFactory;
/** Every built-in handler by spec (listing for all, reading for READABLE_SPECS). */
export const BUILTIN_LISTERS: Readonly<Record<string, HandlerFactory>> = BUILTIN_HANDLERS;
export { BUILTIN_HANDLERS, READABLE_SPECS };

export class HandlerRegistry {
  private readonly rules = new Map<string, HandlerFactory>(Object.entries(BUILTIN_HANDLERS));
  private readonly aliases = new Map<string, string>();
  /** Bounds on file lists and datum reads (DEFAULT_LIMITS unless given). */
  readonly limits: Readonly<HandlerLimits>;

  constructor(limits: Partial<HandlerLimits> = {}) {
    this.limits = Object.freeze({ ...DEFAULT_LIMITS, ...limits });
  }

  /** `--handler SPEC=BUILTIN`. */
  alias(spec: string, builtin: string): void {
    const f = BUILTIN_HANDLERS[builtin];
    if (!f) throw new PackStreamError('E_USAGE', `--handler ${spec}=${builtin}: '${builtin}' is not a built-in handler (built-ins: ${Object.keys(BUILTIN_HANDLERS).join(', ')}; a handler module is given by its path, e.g. ./my-handler.js)`, { subject: builtin });
    this.rules.set(spec, f);
    this.aliases.set(spec, builtin);
  }

  /** A handler for `spec` (a user module, or code calling the library). */
  register(spec: string, factory: HandlerFactory): void {
    this.rules.set(spec, factory);
    this.aliases.delete(spec);
  }

  has(spec: string): boolean {
    return this.rules.has(spec);
  }

  /** Whether `spec` is handled by built-in code (not a user module), whose file names pack-stream can check before reading. */
  isBuiltin(spec: string): boolean {
    const f = this.rules.get(spec);
    return f !== undefined && Object.values(BUILTIN_HANDLERS).includes(f);
  }

  /** The handler of one resource, for `filePath` (root_map applied, joined with resource_path). */
  handler(resource: Doc, filePath: string): Handler {
    const spec = String(resource.spec ?? '');
    const f = this.rules.get(spec);
    if (!f) {
      throw new PackStreamError('E_NO_HANDLER', `no handler for resource spec '${spec}': map it onto a built-in with --handler ${spec}=BUILTIN (e.g. --handler ${spec}=AD_HDF5), load one with --handler ${spec}=./my-handler.js, or use --ignore-external`, { subject: spec });
    }
    const rk = isPlainDoc(resource.resource_kwargs) ? resource.resource_kwargs : {};
    try {
      return f(filePath, rk, this.limits);
    } catch (e) {
      if (e instanceof PackStreamError) throw new PackStreamError(e.code, `resource ${String(resource.uid)} (spec ${spec}): ${e.message}`, { subject: String(resource.uid), cause: e });
      throw new PackStreamError('E_HANDLER', `resource ${String(resource.uid)} (spec ${spec}): the handler failed to start: ${(e as Error).message ?? String(e)}`, { subject: String(resource.uid), cause: e });
    }
  }

  /** The file lister of one resource (every handler lists files). */
  lister(resource: Doc, filePath: string): FileLister {
    return this.handler(resource, filePath);
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
