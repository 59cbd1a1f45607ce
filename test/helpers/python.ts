/** The pinned Python virtualenv (scripts/pyenv.sh) for interop tests. */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from './paths.js';

export const CACHE = process.env.PACK_STREAM_CACHE ?? path.join(os.homedir(), '.cache', 'pack-stream');
export const VENV_PYTHON = path.join(CACHE, 'venv', 'bin', 'python');

/** The venv's python, building the venv when PACK_STREAM_BUILD_VENV=1 (as .ci/run does). */
export function pythonOrSkip(): string | false {
  if (existsSync(VENV_PYTHON)) return VENV_PYTHON;
  if (process.env.PACK_STREAM_BUILD_VENV === '1') {
    const out = execFileSync('bash', [path.join(REPO, 'scripts', 'pyenv.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    return out.trim().split('\n').pop()!;
  }
  return false;
}

export function runPython(python: string, code: string, args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(python, ['-c', code, ...args], { encoding: 'utf8', env: { ...process.env, PYTHONWARNINGS: 'ignore', ...env }, maxBuffer: 1 << 28 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
