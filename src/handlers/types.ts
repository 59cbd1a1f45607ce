/**
 * What a handler is: the counterpart of a Python databroker handler, built per
 * resource as `Handler(path, **resource_kwargs)`. It lists the files a datum
 * needs (for manifests and copies) and, when it can, reads one datum's data as
 * `handler(**datum_kwargs)` returns it (for --fill-external).
 */
import type { Doc, Value } from '../codec/values.js';

/** Files a datum needs: an array or a (lazy) iterable, so long lists need not be built whole. */
export type FileList = Iterable<string> | AsyncIterable<string>;

export interface FileLister {
  /** Files needed by one datum (its datum_kwargs). */
  filesForDatum(kwargs: Doc): FileList | Promise<FileList>;
  /** Files needed by the resource whatever its datums (single-file formats). */
  resourceFiles(): string[];
}

export interface ReadContext {
  signal?: AbortSignal;
  /** The most bytes one datum's data may take (HandlerLimits.datumBytes). */
  maxBytes?: number;
}

/**
 * Bounds on what one resource's kwargs can make pack-stream do, so a hostile
 * `frame_per_point` or `initial_number` cannot list a billion files, and a
 * hostile file header cannot make a read allocate without end.
 */
export interface HandlerLimits {
  /** Files one datum may list (`--max-files-per-datum`). */
  filesPerDatum: number;
  /** Distinct files the datums of one resource may list (`--max-files-per-resource`). */
  filesPerResource: number;
  /** Bytes one datum's data may take when read, e.g. a stack of frames (`--max-datum-bytes`). */
  datumBytes: number;
}

export const DEFAULT_LIMITS: Readonly<HandlerLimits> = Object.freeze({
  filesPerDatum: 100_000,
  filesPerResource: 1_000_000,
  datumBytes: 2 ** 31,
});

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

/** Builds the handler of one resource from its file path (root_map applied) and resource_kwargs, within `limits`. */
export type HandlerFactory = (filePath: string, resourceKwargs: Doc, limits: HandlerLimits) => Handler;
