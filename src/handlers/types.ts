/**
 * What a handler is: the counterpart of a Python databroker handler, built per
 * resource as `Handler(path, **resource_kwargs)`. It lists the files a datum
 * needs (for manifests and copies) and, when it can, reads one datum's data as
 * `handler(**datum_kwargs)` returns it (for --fill-external).
 */
import type { Doc, Value } from '../codec/values.js';

export interface FileLister {
  /** Files needed by one datum (its datum_kwargs). */
  filesForDatum(kwargs: Doc): Promise<string[]> | string[];
  /** Files needed by the resource whatever its datums (single-file formats). */
  resourceFiles(): string[];
}

export interface ReadContext {
  signal?: AbortSignal;
}

export interface Handler extends FileLister {
  /**
   * The data of one datum (an NdArray, a float, ...), equal to what the Python
   * handler's `__call__(**datum_kwargs)` returns. Absent when pack-stream can
   * only list this spec's files.
   */
  read?(kwargs: Doc, ctx: ReadContext): Promise<Value> | Value;
  /** Release open files; called once the run is done. */
  close?(): void | Promise<void>;
}

/** Builds the handler of one resource from its file path (root_map applied) and resource_kwargs. */
export type HandlerFactory = (filePath: string, resourceKwargs: Doc) => Handler;
