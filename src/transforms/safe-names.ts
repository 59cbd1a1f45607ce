/**
 * Names and paths taken from input (run uids, resource paths and roots,
 * handler template results, catalog names, paths in a pack's catalog.yml) are
 * checked here before they touch the file system or a line-based file. Input
 * can come from a stranger's pack or from whatever a beamline wrote, so a name
 * must never climb out of its directory, smuggle a line break into a manifest,
 * or make a file name the file system refuses.
 *
 * The checks are lexical (no file is looked at), so a symlink inside a trusted
 * root is followed as Python follows it.
 */
import path from 'node:path';
import { PackStreamError } from '../errors.js';

/** Most POSIX file systems (ext4, XFS, APFS, NTFS as seen from POSIX): bytes per path component. */
export const MAX_COMPONENT_BYTES = 255;

// C0 controls, DEL and C1 controls: line breaks, terminal escapes, NUL.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const CONTROL_G = /[\u0000-\u001f\u007f-\u009f]/g;

// In a /u pattern a proper surrogate pair is one code point, so this matches lone halves only.
const LONE_SURROGATE = /\p{Surrogate}/u;
const LONE_SURROGATE_G = /\p{Surrogate}/gu;

/** String.prototype.isWellFormed (ES2024), for the ES2023 library this project compiles against. */
export function isWellFormed(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

/** True when `s` holds a control character (newline, tab, NUL, ESC, ...). */
export function hasControlChars(s: string): boolean {
  return CONTROL.test(s);
}

/**
 * `s` with control characters and lone surrogates written as escapes, for
 * one-line messages and TSV fields. Printable text is left as it is.
 */
export function printable(s: string): string {
  let out = s.replace(CONTROL_G, (c) => {
    const n = c.charCodeAt(0);
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\x${n.toString(16).padStart(2, '0')}`;
  });
  return out.replace(LONE_SURROGATE_G, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

/** `s` quoted for a message: JSON-style quotes, every control character escaped, cut at `max` characters. */
export function quoted(s: string, max = 120): string {
  // JSON.stringify escapes control characters and lone surrogates.
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

/** Why `name` is not a safe single path component (undefined when it is). */
export function componentProblem(name: unknown, reserveBytes = 0): string | undefined {
  if (typeof name !== 'string') return `is not a string (${typeof name})`;
  if (name === '') return 'is empty';
  if (name === '.' || name === '..') return 'is a relative directory reference';
  if (/[/\\]/.test(name)) return 'contains a path separator';
  if (hasControlChars(name)) return 'contains a control character';
  if (!isWellFormed(name)) return 'contains a lone surrogate (not valid Unicode)';
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes + reserveBytes > MAX_COMPONENT_BYTES) return `is too long for a file name (${bytes} bytes; at most ${MAX_COMPONENT_BYTES - reserveBytes})`;
  return undefined;
}

/**
 * Require `name` to be usable as one file name inside a directory: no
 * separators, no `.`/`..`, no control characters, valid Unicode, and short
 * enough once `reserveBytes` of suffix are added. Throws E_UNSAFE_PATH naming
 * `what` (e.g. "run uid").
 */
export function checkPathComponent(name: unknown, what: string, reserveBytes = 0): string {
  const problem = componentProblem(name, reserveBytes);
  if (problem !== undefined) {
    const shown = typeof name === 'string' ? quoted(name) : String(name);
    throw new PackStreamError('E_UNSAFE_PATH', `${what} ${shown} ${problem}, so it cannot be used as a file name`, { subject: typeof name === 'string' ? printable(name) : String(name) });
  }
  return name as string;
}

/** Require a path taken from input to be text a file system and a line-based manifest can hold. */
export function checkPathText(p: string, what: string): string {
  if (hasControlChars(p)) {
    throw new PackStreamError('E_UNSAFE_PATH', `${what} ${quoted(p)} contains a control character (a line break would split a manifest line), so it is refused`, { subject: printable(p) });
  }
  if (!isWellFormed(p)) {
    throw new PackStreamError('E_UNSAFE_PATH', `${what} ${quoted(p)} is not valid Unicode (a lone surrogate), so it is refused`, { subject: printable(p) });
  }
  return p;
}

/**
 * Refuse intake template markers (`{{`, `{%`) in a string that goes into a
 * catalog.yml: intake renders them when it opens the catalog, and its
 * templates can read the environment and run shell commands.
 */
export function checkNoTemplate(s: string, what: string): string {
  if (/\{\{|\{%/.test(s)) {
    throw new PackStreamError('E_UNSAFE_PATH', `${what} ${quoted(s)} holds an intake template marker ('{{' or '{%'), which intake would render when opening the pack, so it is refused`, { subject: printable(s) });
  }
  return s;
}

/**
 * Whether `p` lies strictly inside `root`, comparing the paths as written
 * (`.` and `..` resolved lexically, relative paths against the same working
 * directory). `root` itself is not inside.
 */
export function isInside(root: string, p: string): boolean {
  const rel = path.relative(path.resolve(root), path.resolve(p));
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/**
 * Require a file named by a resource (its root joined with resource_path, or
 * what a handler's template made of it) to be plain text and, when the root is
 * known (not ''), to stay inside it: `..` or an absolute resource_path must not
 * reach files elsewhere on the machine (the root itself is allowed). Without a
 * root, a `..` part is refused.
 */
export function checkExternalPath(file: string, root: string, what = 'external file'): string {
  checkPathText(file, what);
  if (root === '') {
    // No root to stay in (old databases name files by absolute path): at least no climbing.
    if (file.split(/[/\\]/).includes('..')) {
      throw new PackStreamError('E_UNSAFE_PATH', `${what} ${quoted(file)} has a '..' part and no resource root to stay in, so it is refused`, { subject: printable(file) });
    }
  } else {
    checkPathText(root, 'resource root');
    // A resource with an empty resource_path names its root itself (databroker's
    // tutorial 'newton' resources do); Python lists that path, so it is allowed.
    if (path.resolve(root) !== path.resolve(file) && !isInside(root, file)) {
      throw new PackStreamError('E_UNSAFE_PATH', `${what} ${quoted(file)} is not inside its resource root ${quoted(root)}, so it is refused`, { subject: printable(file) });
    }
  }
  return file;
}

/**
 * Require a relative path read from a file (a pack's `relative_paths`, a
 * root_map value) to stay inside `base` once joined; returns the joined,
 * normalised absolute path.
 */
export function resolveInside(base: string, rel: string, what: string): string {
  checkPathText(rel, what);
  if (path.isAbsolute(rel) || path.win32.isAbsolute(rel)) {
    throw new PackStreamError('E_UNSAFE_PATH', `${what} ${quoted(rel)} is absolute, but must be relative to ${quoted(base)}`, { subject: printable(rel) });
  }
  const abs = path.resolve(base, rel);
  if (!isInside(base, abs)) {
    throw new PackStreamError('E_UNSAFE_PATH', `${what} ${quoted(rel)} leads out of ${quoted(base)}, so it is refused`, { subject: printable(rel) });
  }
  return abs;
}
