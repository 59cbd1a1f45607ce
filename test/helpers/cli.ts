import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BIN, CLI } from './paths.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the built CLI in a child process (as a user would). */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return runScript(CLI, args, opts);
}

/** Run an installed command's launcher (bin/NAME.cjs) in a child process, as `databroker-pack ...` on PATH runs. */
export function runCommand(name: 'pack-stream' | 'databroker-pack' | 'databroker-unpack', args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return runScript(path.join(BIN, `${name}.cjs`), args, opts);
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  input?: string;
  cwd?: string;
  /** The node binary (default: the one running the tests). */
  node?: string;
}

function runScript(script: string, args: string[], opts: CliOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(opts.node ?? process.execPath, [script, ...args], {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd ?? process.cwd(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

export interface BudgetedResult extends CliResult {
  /** Wall time of the child, ms. */
  ms: number;
  /** Peak resident set of the child, MiB (its VmHWM, sampled every 100 ms; 0 where /proc is absent). */
  peakRssMiB: number;
  /** True when the child overran the time budget and was killed. */
  killed: boolean;
}

/**
 * runCli under a time budget: a child still running after `budgetMs` is killed
 * (so a hang fails its test quickly instead of stalling the suite), and its
 * peak RSS is reported for a memory budget.
 */
export function runCliWithin(args: string[], budgetMs: number, opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): Promise<BudgetedResult> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd ?? process.cwd(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let peakKiB = 0;
    let killed = false;
    const sample = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakKiB = Math.max(peakKiB, Number(m[1]));
      } catch {
        // the child is gone, or there is no /proc
      }
    };
    const sampler = setInterval(sample, 100);
    const killer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, budgetMs);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', sample);
    child.on('close', (code) => {
      clearInterval(sampler);
      clearTimeout(killer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0, peakRssMiB: peakKiB / 1024, killed });
    });
    child.stdin.end(opts.input ?? '');
  });
}
