/**
 * PackSink: where a pack's files go. The exporter decides what the files are
 * and in which order (document files as runs finish, external files as they
 * are copied, then manifests, failures.tsv and catalog.yml last); a sink only
 * decides where bytes go. The directory (sinks/directory-sink.ts) and a tar
 * stream (sinks/tar-sink.ts) are two implementations; a new one is a file of
 * its own plus one line in `openSink` (sinks/open-sink.ts).
 *
 * Names are pack-relative POSIX paths (`documents/<uid>.msgpack`,
 * `external_files/<hash>/<rel>`, `catalog.yml`).
 */

/** One document file being written; nothing of it is visible until `commit()`. */
export interface RunFileWriter {
  /** Append encoded records; resolves when the sink can take more (back-pressure). */
  write(parts: Buffer | readonly Buffer[]): Promise<void>;
  commit(): Promise<void>;
  /** Drop what was written; never throws. */
  abort(): Promise<void>;
}

export interface PackSink {
  /** For messages and the summary: the directory, `stdout`, or a tar file's path. */
  readonly location: string;
  /** The directory that catalog.yml's absolute `paths` name (where the pack is, or will be once extracted). */
  readonly packPath: string;
  /** Whether the sink carries external files, manifests and catalog.yml (a plain document stream does not). */
  readonly wholePack: boolean;
  /** Refuse early (before any run is read) when the target cannot be used. */
  open(): Promise<void>;
  openRunFile(name: string): Promise<RunFileWriter>;
  /** Add a copy of local file `source` under `name`; resolves to the bytes written. Safe to call concurrently. */
  addExternalFile(name: string, source: string): Promise<number>;
  /** A small whole file: a manifest chunk, failures.tsv, catalog.yml. Returns where it went, for the summary. */
  writeFile(name: string, data: string | Uint8Array): Promise<string>;
  /** All written: flush and close. */
  finish(): Promise<void>;
  /** Give up: leave nothing that looks complete. Never throws. */
  abort(reason?: unknown): Promise<void>;
  /**
   * Set once the sink cannot take more (its reader went away): every later
   * call fails with it, and the exporter stops instead of failing run after run.
   */
  readonly broken?: Error | null;
}
