/**
 * databroker-pack's `--handler-registry "{'SPEC': 'package.module.Class'}"`: a Python
 * dict literal naming handler classes by import path. pack-stream cannot import
 * Python, so each class it knows is mapped onto the built-in reader that does what
 * the class does; any other class is refused, naming the `--handler` alternative.
 */
import type { Value } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import type { HandlerRegistry } from '../transforms/handlers.js';
import { parseQuery } from '../transforms/query.js';

/** area-detector-handlers' classes (also exported under databroker.assets.handlers), by class name → built-in spec. */
const AREA_DETECTOR: Record<string, string> = {
  AreaDetectorHDF5Handler: 'AD_HDF5',
  AreaDetectorHDF5SWMRHandler: 'AD_HDF5_SWMR',
  AreaDetectorHDF5TimestampHandler: 'AD_HDF5_TS',
  AreaDetectorHDF5SWMRTimestampHandler: 'AD_HDF5_SWMR_TS',
  AreaDetectorTiffHandler: 'AD_TIFF',
  AreaDetectorSPEHandler: 'AD_SPE',
  PilatusCBFHandler: 'AD_CBF',
  Xspress3HDF5Handler: 'XSP3',
};

function withModules(modules: string[], classes: Record<string, string>): [string, string][] {
  return modules.flatMap((m) => Object.entries(classes).map(([cls, spec]): [string, string] => [`${m}.${cls}`, spec]));
}

/** Python handler class (dotted import path) → pack-stream built-in. */
export const PYTHON_HANDLER_CLASSES: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries([
    ['ophyd.sim.NumpySeqHandler', 'NPY_SEQ'],
    ['databroker.assets.handlers.NpyHandler', 'npy'],
    ...withModules(['area_detector_handlers.handlers', 'area_detector_handlers'], {
      ...AREA_DETECTOR,
      AreaDetectorHDF5SingleHandler: 'AD_HDF5_SINGLE',
      TimepixHDF5Handler: 'TPX_HDF5',
      IMMHandler: 'IMM',
      SpecsHDF5SingleHandlerDataFrame: 'SPECS_HDF5_SINGLE_DATAFRAME',
      BulkXSPRESS: 'XSP3_FLY',
    }),
    ['area_detector_handlers.eiger.EigerHandler', 'AD_EIGER'],
    ...withModules(['databroker.assets.handlers'], AREA_DETECTOR),
  ]),
);

/** Parses the option's value: a Python (or JSON) dict of spec → 'module.Class' (or 'module:Class'). */
export function parseHandlerRegistry(text: string): [spec: string, cls: string][] {
  let parsed: Value;
  try {
    parsed = parseQuery(text);
  } catch (e) {
    throw new PackStreamError('E_USAGE', `could not parse --handler-registry ${text}: a dict of strings is expected (${(e as Error).message})`, { subject: text });
  }
  const entries = parsed instanceof Map ? [...parsed.entries()] : Object.entries(parsed as Record<string, Value>);
  return entries.map(([spec, cls]) => {
    if (typeof spec !== 'string' || typeof cls !== 'string') {
      throw new PackStreamError('E_USAGE', `--handler-registry: a dict of strings is expected, got ${String(spec)}: ${JSON.stringify(cls)}`, { subject: text });
    }
    return [spec, cls];
  });
}

/**
 * Applies `--handler-registry` to a registry: every class must be one pack-stream
 * knows. Unlike databroker-pack, this works in every external mode (listing and
 * copying files need the handler too), not only with --fill-external.
 */
export function applyHandlerRegistry(registry: HandlerRegistry, text: string): HandlerRegistry {
  for (const [spec, cls] of parseHandlerRegistry(text)) {
    const dotted = cls.replace(/:/g, '.');
    const builtin = PYTHON_HANDLER_CLASSES[dotted];
    if (!builtin) {
      throw new PackStreamError(
        'E_USAGE',
        `--handler-registry: no built-in reader does what Python's ${cls} does (spec ${spec}); give one with --handler ${spec}=BUILTIN or --handler ${spec}=./my-handler.js`,
        { subject: cls },
      );
    }
    registry.alias(spec, builtin);
  }
  return registry;
}
