/**
 * The built-in handlers by spec, one module per family: NPY (NPY_SEQ, npy),
 * area-detector HDF5, area-detector TIFF, and the specs that are listed only.
 */
import { hdf5Handlers } from './hdf5.js';
import { listingOnlyHandlers } from './listing-only.js';
import { npyHandlers } from './npy.js';
import { tiffHandlers } from './tiff.js';
import type { HandlerFactory } from './types.js';

export const BUILTIN_HANDLERS: Readonly<Record<string, HandlerFactory>> = Object.freeze({
  ...npyHandlers,
  ...hdf5Handlers,
  ...tiffHandlers,
  ...listingOnlyHandlers,
});

/** Specs whose data pack-stream can read (for --fill-external). */
export const READABLE_SPECS: readonly string[] = Object.freeze([...Object.keys(npyHandlers), ...Object.keys(hdf5Handlers), ...Object.keys(tiffHandlers)]);
