/**
 * A private HOME, XDG_DATA_HOME, global intake dir (VIRTUAL_ENV) and intake
 * config for one test, so catalog discovery and unpack never touch the real
 * user's directories.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './files.js';

export interface Sandbox {
  root: string;
  /** For child processes (CLI): undefined removes the variable. */
  env: Record<string, string | undefined>;
  /** For library calls (SearchEnv). */
  search: { env: NodeJS.ProcessEnv; platform: NodeJS.Platform; askConda: boolean };
  userDir: string;
  globalDir: string;
}

export function sandbox(): Sandbox {
  const root = tempDir();
  const home = path.join(root, 'home');
  const xdg = path.join(root, 'xdg');
  const venv = path.join(root, 'venv');
  const env: Record<string, string | undefined> = {
    HOME: home,
    XDG_DATA_HOME: xdg,
    XDG_DATA_DIRS: path.join(root, 'share'),
    VIRTUAL_ENV: venv,
    INTAKE_CONF_DIR: path.join(root, 'intake-conf'),
    CONDA_PREFIX: undefined,
    INTAKE_PATH: undefined,
    INTAKE_CONF_FILE: undefined,
    DATABROKER_TEST_MODE: undefined,
  };
  mkdirSync(home, { recursive: true });
  const search: NodeJS.ProcessEnv = { PATH: '' };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) search[k] = v;
  return {
    root,
    env,
    search: { env: search, platform: 'linux', askConda: false },
    userDir: path.join(xdg, 'intake'),
    globalDir: path.join(venv, 'share', 'intake'),
  };
}
