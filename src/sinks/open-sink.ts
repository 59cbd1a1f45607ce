/**
 * Where sinks are chosen: a DEST argument (and options) to a PackSink. A new
 * kind of destination is a sink file of its own plus one line here.
 */
import type { Writable } from 'node:stream';
import { DirectorySink } from './directory-sink.js';
import { DocumentStreamSink } from './document-stream-sink.js';
import type { PackSink } from './sink.js';
import type { StreamSinkOptions } from './stream-sink.js';
import { TarSink } from './tar-sink.js';

export interface SinkChoice extends StreamSinkOptions {
  /** Write a tar to this file instead of DEST. */
  tar?: string;
  /** The plain document stream instead of a pack. */
  documentsOnly?: boolean;
  /** What `-` means (default: process.stdout). */
  stdout?: Writable;
}

export function openSink(dest: string | undefined, o: SinkChoice = {}): PackSink {
  const stdout = o.stdout ?? process.stdout;
  if (o.documentsOnly) return dest === '-' || dest === undefined ? new DocumentStreamSink(stdout, 'stdout', o) : DocumentStreamSink.toFile(dest, o);
  if (o.tar !== undefined) return o.tar === '-' ? new TarSink(stdout, 'stdout', o) : TarSink.toFile(o.tar, o);
  if (dest === '-') return new TarSink(stdout, 'stdout', o);
  return new DirectorySink(dest ?? '.');
}
