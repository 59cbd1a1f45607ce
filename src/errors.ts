/**
 * Typed errors with stable codes. Every error pack-stream raises on purpose is a
 * PackStreamError, so callers (and the CLI) can tell expected failures from bugs
 * and print one clear line.
 */
export type ErrorCode =
  | 'E_CORRUPT'          // a document file cannot be decoded
  | 'E_TRUNCATED'        // a document file ends in the middle of a record
  | 'E_BAD_RUN'          // a run's documents break event-model rules (first not start, ...)
  | 'E_BAD_QUERY'        // a query string cannot be parsed or uses an unsupported operator
  | 'E_NO_SOURCE'        // the named catalog / file / directory does not exist
  | 'E_BAD_CATALOG'      // a catalog YAML is malformed or has an unsupported driver
  | 'E_NOT_FOUND'        // a uid / scan_id lookup found nothing
  | 'E_AMBIGUOUS'        // a partial uid matched several runs
  | 'E_TARGET'           // the destination exists and is not empty, or cannot be written
  | 'E_MISSING_FILE'     // an external file a resource points to is missing
  | 'E_NO_HANDLER'       // no rule for a resource spec
  | 'E_HANDLER'          // a handler failed to list or read files
  | 'E_ENCODE'           // a value cannot be encoded in the requested format
  | 'E_USAGE'            // bad command-line usage
  | 'E_UNSUPPORTED'      // a feature that exists but is not available here
  | 'E_ABORTED'          // the operation was cancelled
  | 'E_EXISTS'           // a catalog name is taken (unpack without merging)
  | 'E_CONFLICT'         // a merge would mix drivers or collide root_map keys
  | 'E_IO'               // other I/O failure
  | 'E_UNSAFE_PATH'      // a name taken from input would escape its directory or is not a valid file name
  | 'E_NOT_REGULAR'      // an external file is a FIFO, device, directory or other non-regular file
  | 'E_LIMIT'            // an input exceeds a configured bound (record size, nesting depth, files per datum, ...)
  | 'E_DUPLICATE'        // two inputs claim the same run uid and cannot be reconciled
  | 'E_BAD_ARCHIVE'      // a tar archive entry is refused (absolute, .., link, device) or the archive is cut
  | 'E_NETWORK'          // a server could not be reached or kept failing after retries
  | 'E_HTTP'             // a server answered with an error status
  | 'E_AUTH'             // a server refused the credentials
  | 'E_LOCKED'           // another process holds the target's lock
  | 'E_NO_SPACE'         // the file system is full (ENOSPC) or over quota (EDQUOT)
  | 'E_PERMISSION';      // a file cannot be written or read: permission denied, read-only file system

export class PackStreamError extends Error {
  readonly code: ErrorCode;
  /** The thing the error is about: a path, a uid, a query. */
  readonly subject: string | undefined;
  constructor(code: ErrorCode, message: string, options: { subject?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PackStreamError';
    this.code = code;
    this.subject = options.subject;
  }
}

/**
 * A file-system error while doing `action` on `file`, as a typed error naming
 * the file: a full disk, an I/O error and a refused permission each get a code
 * of their own, so a run that fails for them says why in failures.tsv.
 */
export function fsFault(e: unknown, action: string, file: string): unknown {
  if (e instanceof PackStreamError || !(e instanceof Error)) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const mapped: ErrorCode | null =
    code === 'ENOSPC' || code === 'EDQUOT' ? 'E_NO_SPACE'
    : code === 'EIO' ? 'E_IO'
    : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'E_PERMISSION'
    : null;
  if (!mapped) return e;
  const why = code === 'ENOSPC' ? 'no space left on device' : code === 'EDQUOT' ? 'disk quota exceeded' : code === 'EIO' ? 'I/O error' : code === 'EROFS' ? 'read-only file system' : 'permission denied';
  return new PackStreamError(mapped, `cannot ${action} ${file}: ${why}`, { subject: file, cause: e });
}

export function isPackStreamError(e: unknown): e is PackStreamError {
  return e instanceof PackStreamError;
}

/** One line for humans: `CODE: message`. Never a stack trace for expected errors. */
export function describeError(e: unknown): string {
  if (e instanceof PackStreamError) return `${e.code}: ${e.message}`;
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}

export function errorCode(e: unknown): string {
  if (e instanceof PackStreamError) return e.code;
  if (e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string') return (e as NodeJS.ErrnoException).code!;
  return 'E_INTERNAL';
}
