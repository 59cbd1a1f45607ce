/**
 * Bounds on what a reader accepts from a file, so a hostile or broken input
 * ends in a typed error instead of a crash or an unbounded allocation.
 * Defaults sit well above real Bluesky documents; the CLI can change them
 * (`--max-record-size`) for the whole process.
 */
import { PackStreamError } from './errors.js';

export interface Limits {
  /** Largest msgpack record or JSONL line, in bytes (filled frames can be large). */
  maxRecordBytes: number;
  /** Deepest nesting of arrays and maps in a document (Python's msgpack stops at 1024, its json near 1000). */
  maxDepth: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({ maxRecordBytes: 2 * 1024 ** 3, maxDepth: 1000 });

export const limits: Limits = { ...DEFAULT_LIMITS };

export function setLimits(l: Partial<Limits>): void {
  if (l.maxRecordBytes !== undefined) limits.maxRecordBytes = l.maxRecordBytes;
  if (l.maxDepth !== undefined) limits.maxDepth = l.maxDepth;
}

/** "2G", "512M", "64k" or a plain number of bytes. */
export function parseByteSize(s: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(s);
  if (!m) return undefined;
  const scale = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  const n = Math.floor(Number(m[1]) * scale);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** The typed error for nesting beyond `limits.maxDepth` (where recursion would overflow the stack). */
export function depthError(where: string): PackStreamError {
  return new PackStreamError('E_LIMIT', `nesting deeper than ${limits.maxDepth} levels ${where}`);
}
