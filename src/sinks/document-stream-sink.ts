/**
 * A plain document stream instead of a pack (`--documents-only`): each run's
 * document file, whole, one run after another — JSONL `[name, doc]` lines as
 * suitcase-jsonl writes them, or msgpack records back to back. No manifests,
 * no external files, no catalog.yml. A run is held (Spool, in StreamSink)
 * until it is whole, so a run that fails half-way puts nothing on the stream.
 */
import { PackStreamError } from '../errors.js';
import type { Spool } from './spool.js';
import { StreamSink, fileTarget, type StreamSinkOptions } from './stream-sink.js';

export class DocumentStreamSink extends StreamSink {
  readonly wholePack = false;
  readonly packPath = '';

  /** A stream written to a new `file` (renamed from `file.partial` when whole). */
  static toFile(file: string, opts: StreamSinkOptions = {}): DocumentStreamSink {
    const f = fileTarget(file, opts);
    return new DocumentStreamSink(f.target, f.location, f.opts);
  }

  protected async writeRun(_name: string, spool: Spool): Promise<void> {
    for await (const c of spool.read()) await this.out.write(c);
  }

  async addExternalFile(name: string): Promise<number> {
    throw new PackStreamError('E_USAGE', `a document stream carries no files (asked to add ${name})`);
  }

  /** Manifests, failures.tsv and catalog.yml have no place in a document stream. */
  async writeFile(): Promise<string> {
    return '';
  }
}
