/**
 * The built CLI run under a time and peak-memory budget, for hostile-input
 * tests. The child's peak RSS (VmHWM, Linux /proc) is polled and the child is
 * killed the moment it goes over either budget, so a hang or a runaway
 * allocation fails its test within seconds instead of eating the machine.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { CliResult } from './cli.js';
import { CLI } from './paths.js';

export interface Budget {
  /** Wall-clock seconds (default 20). */
  seconds?: number;
  /** Peak resident memory in MiB (default 400). */
  rssMb?: number;
}

export interface BudgetResult extends CliResult {
  seconds: number;
  /** Peak RSS seen, in MiB (null where /proc is not available). */
  peakRssMb: number | null;
  /** Why the child was killed: over its time or memory budget; null when it ended by itself. */
  killed: 'time' | 'rss' | null;
}

export const DEFAULT_BUDGET = { seconds: 20, rssMb: 400 } as const;

function peakRssKb(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export function runCliBudgeted(args: string[], budget: Budget = {}, opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<BudgetResult> {
  const seconds = budget.seconds ?? DEFAULT_BUDGET.seconds;
  const rssKb = (budget.rssMb ?? DEFAULT_BUDGET.rssMb) * 1024;
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, cwd: opts.cwd ?? process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peak: number | null = null;
    let killed: BudgetResult['killed'] = null;
    const kill = (why: 'time' | 'rss') => {
      if (killed) return;
      killed = why;
      child.kill('SIGKILL');
    };
    const poll = setInterval(() => {
      if (child.pid === undefined) return;
      const kb = peakRssKb(child.pid);
      if (kb !== null) peak = Math.max(peak ?? 0, kb);
      if (kb !== null && kb > rssKb) kill('rss');
    }, 25);
    const timer = setTimeout(() => kill('time'), seconds * 1000);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      clearTimeout(timer);
      resolve({ code, stdout, stderr, seconds: Number(process.hrtime.bigint() - t0) / 1e9, peakRssMb: peak === null ? null : peak / 1024, killed });
    });
  });
}
