/**
 * The shapes that flow between stages.
 *
 * A document travels as a DocPair `{name, doc}` (event-model's `(name, doc)`).
 * `raw` holds the exact bytes it was decoded from (a msgpack record, or a JSONL
 * line without its newline) while the document is unchanged; an encoder of the
 * same format copies them instead of re-encoding. A stage that changes a
 * document makes a new pair without `raw`, never mutates the old one.
 *
 * A run is a RunRef: its start document up front (for selection and naming)
 * and a way to stream its documents, which may be called more than once.
 */
import type { Doc } from './codec/values.js';

export type DocName =
  | 'start'
  | 'stop'
  | 'descriptor'
  | 'event'
  | 'event_page'
  | 'resource'
  | 'datum'
  | 'datum_page'
  | 'stream_resource'
  | 'stream_datum';

export const DOC_NAMES: ReadonlySet<string> = new Set<DocName>([
  'start', 'stop', 'descriptor', 'event', 'event_page', 'resource', 'datum', 'datum_page', 'stream_resource', 'stream_datum',
]);

export type Format = 'msgpack' | 'jsonl';

export interface DocPair {
  name: string;
  doc: Doc;
  raw?: Buffer | string;
  rawFormat?: Format;
}

export interface ReadOptions {
  signal?: AbortSignal;
  /**
   * Only the fields a scan needs: events keep time/uid/descriptor, datums
   * resource; other documents are whole. Skimmed pairs carry no `raw`.
   */
  skim?: boolean;
  /** With `skim`: the top-level fields to keep, by document name, instead of the scan's (others whole). */
  skimFields?: ReadonlyMap<string, ReadonlySet<string>>;
  /** Decode a msgpack document only when `doc` is first read (pass-through paths). */
  lazy?: boolean;
  /** Largest record (msgpack) or line (JSONL) accepted, in bytes; default `limits.maxRecordBytes`. */
  maxRecordBytes?: number;
}

export interface RunRef {
  uid: string;
  start: Doc;
  /** Where the run comes from, for messages (a file path, a URI). */
  location: string;
  /** Things the user should know about how this run was found (e.g. which of two copies was chosen). */
  notes?: string[];
  /** The run's documents in stored order; each call starts a fresh pass. */
  records(opts?: ReadOptions): AsyncIterable<DocPair>;
  /** The run's documents in databroker's canonical order (what a pack holds). */
  documents(opts?: ReadOptions): AsyncIterable<DocPair>;
}

/** A place runs come from: a file catalog, a pack, MongoDB. */
export interface Catalog {
  /** A short description for messages, e.g. the YAML path or directory. */
  readonly description: string;
  /** root_map of the source: original resource root → where the files are now. */
  readonly rootMap: Record<string, string>;
  /** Every run, in catalog order, optionally only those whose start matches `query`. */
  runs(opts?: { query?: Doc; signal?: AbortSignal }): AsyncIterable<RunRef>;
  /** databroker's `catalog[key]`: full uid, unique prefix, scan_id, or negative index. */
  lookup(key: string, opts?: { query?: Doc }): Promise<RunRef>;
  close?(): Promise<void>;
  /** External files are on a server, not here: list them without checking they exist locally. */
  readonly remoteFiles?: boolean;
  /** Extra `metadata` for the pack's catalog.yml (e.g. which runs were rebuilt, and from what). */
  packMetadata?(): Record<string, unknown>;
}
