/**
 * Where Python databroker looks for catalogs, computed from the environment as
 * intake 0.6 (appdirs, intake's config file) and databroker 1.2's v0 config
 * search compute it (formats.md §7.8). pack-stream lists, resolves and writes
 * catalogs in exactly these places so both tools see the same names.
 *
 * Every function takes a `SearchEnv`, so tests (and embedding programs) can
 * pass their own environment instead of this process's.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadYamlFile } from '../sources/catalog-yaml.js';

export interface SearchEnv {
  /** Environment variables (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Platform rules to apply (default: process.platform). */
  platform?: NodeJS.Platform;
  /** Directory relative paths are resolved against (default: process.cwd()). */
  cwd?: string;
  /** Ask `conda info --json` for conda's prefix when conda is on PATH but no environment is active, as intake does (default true). */
  askConda?: boolean;
}

interface Resolved {
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  cwd: string;
  askConda: boolean;
}

function resolve(s: SearchEnv): Resolved {
  return { env: s.env ?? process.env, platform: s.platform ?? process.platform, cwd: s.cwd ?? process.cwd(), askConda: s.askConda ?? true };
}

function pathFor(platform: NodeJS.Platform): path.PlatformPath {
  return platform === 'win32' ? path.win32 : path.posix;
}

/** Python's os.path.expanduser('~') on POSIX: $HOME, else the password database. */
export function homeDir(s: SearchEnv = {}): string {
  const { env, platform } = resolve(s);
  if (platform === 'win32') return env.USERPROFILE || os.homedir();
  return env.HOME || os.homedir();
}

/** `~` and `~/x` expanded; anything else unchanged. */
export function expandUser(p: string, s: SearchEnv = {}): string {
  if (p === '~') return homeDir(s);
  if (p.startsWith('~/') || p.startsWith('~\\')) return pathFor(resolve(s).platform).join(homeDir(s), p.slice(2));
  return p;
}

/** A non-empty environment variable, else undefined (an empty XDG variable counts as unset, as the XDG spec says). */
function nonEmpty(env: NodeJS.ProcessEnv, key: string): string | undefined {
  const v = env[key];
  return v === undefined || v === '' ? undefined : v;
}

function absolute(p: string, r: Resolved): string {
  return pathFor(r.platform).resolve(r.cwd, p);
}

/**
 * intake's user_data_dir(): appdirs.user_data_dir('intake', 'intake').
 * This is databroker.catalog_search_path()[0], where databroker-unpack writes.
 */
export function userDataDir(s: SearchEnv = {}): string {
  const r = resolve(s);
  const p = pathFor(r.platform);
  if (r.platform === 'darwin') return p.join(homeDir(s), 'Library', 'Application Support', 'intake');
  if (r.platform === 'win32') {
    const local = nonEmpty(r.env, 'LOCALAPPDATA') ?? p.join(homeDir(s), 'AppData', 'Local');
    return p.join(local, 'intake', 'intake');
  }
  const base = nonEmpty(r.env, 'XDG_DATA_HOME') ?? p.join(homeDir(s), '.local', 'share');
  return absolute(p.join(base, 'intake'), r);
}

/** appdirs.site_data_dir('intake', 'intake'): the first entry of $XDG_DATA_DIRS on Linux. */
export function siteDataDir(s: SearchEnv = {}): string {
  const r = resolve(s);
  const p = pathFor(r.platform);
  if (r.platform === 'darwin') return '/Library/Application Support/intake';
  if (r.platform === 'win32') return p.join(nonEmpty(r.env, 'ProgramData') ?? 'C:\\ProgramData', 'intake', 'intake');
  const first = (nonEmpty(r.env, 'XDG_DATA_DIRS') ?? '/usr/local/share:/usr/share').split(':')[0]!;
  const trimmed = first.length > 1 ? first.replace(/\/+$/, '') : first;
  return absolute(p.join(expandUser(trimmed, s), 'intake'), r);
}

/** Python's shutil.which / distutils find_executable over $PATH. */
export async function which(program: string, s: SearchEnv = {}): Promise<string | undefined> {
  const r = resolve(s);
  const p = pathFor(r.platform);
  const dirs = (r.env.PATH ?? r.env.Path ?? '').split(r.platform === 'win32' ? ';' : ':').filter(Boolean);
  const names = r.platform === 'win32' ? [program, ...(r.env.PATHEXT ?? '.EXE;.BAT;.CMD').split(';').map((e) => program + e.toLowerCase())] : [program];
  for (const dir of dirs) {
    for (const name of names) {
      const candidate = p.resolve(r.cwd, dir, name);
      try {
        if (!(await stat(candidate)).isFile()) continue;
        await access(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/** `conda info --json`'s default_prefix, or undefined if conda cannot say. */
function condaPrefix(conda: string, r: Resolved): Promise<string | undefined> {
  return new Promise((done) => {
    execFile(conda, ['info', '--json'], { env: r.env, cwd: r.cwd, timeout: 30_000, maxBuffer: 16 << 20 }, (err, stdout) => {
      if (err) return done(undefined);
      try {
        const prefix = (JSON.parse(stdout) as { default_prefix?: unknown }).default_prefix;
        done(typeof prefix === 'string' && prefix !== '' ? prefix : undefined);
      } catch {
        done(undefined);
      }
    });
  });
}

/**
 * intake's global_data_dir(): `<prefix>/share/intake` for an active virtualenv
 * ($VIRTUAL_ENV) or conda environment ($CONDA_PREFIX, standing in for Python's
 * sys.prefix), or conda's default prefix when conda is on PATH; otherwise the
 * site data directory.
 */
export async function globalDataDir(s: SearchEnv = {}): Promise<string> {
  const r = resolve(s);
  const p = pathFor(r.platform);
  let prefix: string | undefined;
  if (r.env.VIRTUAL_ENV !== undefined) prefix = r.env.VIRTUAL_ENV || undefined;
  else if (r.env.CONDA_PREFIX !== undefined) prefix = r.env.CONDA_PREFIX || undefined;
  else if (r.askConda) {
    const conda = await which('conda', s);
    if (conda) prefix = await condaPrefix(conda, r);
  }
  return prefix ? absolute(p.join(prefix, 'share', 'intake'), r) : siteDataDir(s);
}

/** databroker.catalog_search_path(): (user data dir, global data dir). */
export async function catalogSearchPath(s: SearchEnv = {}): Promise<[string, string]> {
  return [userDataDir(s), await globalDataDir(s)];
}

/** intake's config file: $INTAKE_CONF_FILE, else $INTAKE_CONF_DIR/conf.yaml, else ~/.intake/conf.yaml. */
export function intakeConfigFile(s: SearchEnv = {}): string {
  const r = resolve(s);
  const p = pathFor(r.platform);
  if (r.env.INTAKE_CONF_FILE !== undefined) return absolute(r.env.INTAKE_CONF_FILE, r);
  const dir = r.env.INTAKE_CONF_DIR ?? p.join(homeDir(s), '.intake');
  return absolute(p.join(dir, 'conf.yaml'), r);
}

/** intake's make_path_posix: backslashes to slashes and `//` to `/`, URLs untouched. */
function makePathPosix(p: string): string {
  return p.includes('://') ? p : p.replace(/\\/g, '/').replace(/\/\//g, '/');
}

/** intake_path_dirs(): a string is split on `:` (not `::` or `:/`), or `;` on Windows. */
export function splitIntakePath(value: string, platform: NodeJS.Platform = process.platform): string[] {
  return value.split(platform === 'win32' ? ';' : /(?<!:):(?![:/])/);
}

export interface IntakeCatalogPath {
  /** Entries of intake's `catalog_path`, in order (directories or YAML file globs). */
  entries: string[];
  /** Where they came from: 'INTAKE_PATH', the config file, or 'default'. */
  from: string;
  /** A config file that exists but could not be read (intake logs and ignores it). */
  warning?: string;
}

/** intake's conf['catalog_path']: $INTAKE_PATH if set, else `catalog_path` in the config file. */
export async function intakeCatalogPath(s: SearchEnv = {}): Promise<IntakeCatalogPath> {
  const r = resolve(s);
  let value: unknown = [];
  let from = 'default';
  let warning: string | undefined;
  const file = intakeConfigFile(s);
  let fileExists = false;
  try {
    fileExists = (await stat(file)).isFile();
  } catch {
    // no config file: defaults
  }
  if (fileExists) {
    try {
      const conf = await loadYamlFile(file);
      if (conf !== null && typeof conf === 'object' && !Array.isArray(conf) && 'catalog_path' in conf) {
        value = (conf as Record<string, unknown>).catalog_path;
        from = file;
      }
    } catch (e) {
      warning = `intake config file ${file} was ignored: ${(e as Error).message}`;
    }
  }
  if (r.env.INTAKE_PATH !== undefined) {
    value = makePathPosix(r.env.INTAKE_PATH);
    from = 'INTAKE_PATH';
  }
  let entries: string[];
  if (Array.isArray(value)) entries = value.map(String);
  else if (typeof value === 'string') entries = splitIntakePath(value, r.platform);
  else entries = [];
  return { entries, from, ...(warning ? { warning } : {}) };
}

/**
 * databroker's v0 CONFIG_SEARCH_PATH: ~/.config/databroker, `<python prefix>/etc/databroker`,
 * /etc/databroker (Windows: %APPDATA%\databroker). Python's prefix is that of
 * the active virtualenv or conda environment, else of the `python3` on PATH.
 */
export async function v0ConfigDirs(s: SearchEnv = {}): Promise<string[]> {
  const r = resolve(s);
  const p = pathFor(r.platform);
  if (r.platform === 'win32') return [p.join(nonEmpty(r.env, 'APPDATA') ?? p.join(homeDir(s), 'AppData', 'Roaming'), 'databroker')];
  const dirs = [p.join(homeDir(s), '.config', 'databroker')];
  let prefix = nonEmpty(r.env, 'VIRTUAL_ENV') ?? nonEmpty(r.env, 'CONDA_PREFIX');
  if (!prefix) {
    const python = (await which('python3', s)) ?? (await which('python', s));
    if (python) prefix = p.dirname(p.dirname(python));
  }
  if (prefix) dirs.push(absolute(p.join(prefix, 'etc', 'databroker'), r));
  dirs.push('/etc/databroker');
  return [...new Set(dirs)];
}
