/**
 * A fuzz worker process: runs inputs [from, to) of the fixed-seed sequence and
 * counts outcomes by kind. Before each input it writes that input's index to
 * its progress file, so when it hangs, outgrows its memory or dies natively
 * (a process, not a thread, so a native abort cannot take the test runner
 * with it) the parent can name the input that did it.
 */
import { openSync, writeSync } from 'node:fs';
import { claimsHugeRecord, hugeListingKwarg, KNOWN_HUGE_LISTING, KNOWN_HUGE_RECORD, makeInput, outcomeOf, prepareContext, runInput, type Corpus } from './fuzz.js';

export interface WorkerJob {
  corpus: Corpus;
  seed: number;
  from: number;
  to: number;
  dir: string;
  progressFile: string;
  slowMs: number;
  /** The reader aborts on records claiming > 2 GiB (see fuzz-probe.ts): count those inputs as known-open. */
  skipHugeRecords: boolean;
  /** Listing a resource with frame_per_point 2^31 does not end (see fuzz-probe.ts): count those inputs as known-open. */
  skipHugeListings: boolean;
}

export interface Finding {
  index: number;
  kind: string;
  outcome: string;
  ms: number;
  stack?: string;
}

export interface WorkerReport {
  counts: Record<string, Record<string, number>>;
  findings: Finding[];
  /** Findings beyond those kept. */
  dropped: number;
  /** The inputs before this index are in this report (and the ones sent before it). */
  upTo: number;
  done: boolean;
}

/** Counts are sent in batches, so a worker that dies loses at most one batch of its tally. */
const BATCH = 500;

const MAX_FINDINGS = 40;

async function run(job: WorkerJob): Promise<void> {
  const ctx = prepareContext(job.dir, job.corpus);
  const progress = openSync(job.progressFile, 'w');
  const at = new Int32Array(1);
  let report: WorkerReport = { counts: {}, findings: [], dropped: 0, upTo: job.from, done: false };
  let kept = 0;
  for (let i = job.from; i < job.to; i++) {
    if (i > job.from && (i - job.from) % BATCH === 0) {
      report.upTo = i;
      await new Promise<void>((resolve) => process.send!(report, () => resolve()));
      report = { counts: {}, findings: [], dropped: 0, upTo: i, done: false };
    }
    at[0] = i;
    writeSync(progress, at, 0, 4, 0);
    const input = makeInput(job.corpus, job.seed, i);
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    let outcome: string;
    let stack: string | undefined;
    try {
      if (job.skipHugeRecords && input.kind === 'msgpack' && claimsHugeRecord(input.bytes)) outcome = KNOWN_HUGE_RECORD;
      else if (job.skipHugeListings && (input.kind === 'msgpack' || input.kind === 'jsonl') && (await hugeListingKwarg(ctx, input.kind, input.bytes))) outcome = KNOWN_HUGE_LISTING;
      else outcome = await runInput(ctx, input.kind, input.bytes);
    } catch (e) {
      outcome = outcomeOf(e);
      if (outcome.startsWith('UNTYPED')) stack = (e as Error)?.stack?.split('\n').slice(0, 8).join('\n');
    }
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    if ((cpu.user + cpu.system) / 1000 > job.slowMs) outcome = `SLOW(${outcome})`;
    const byKind = (report.counts[input.kind] ??= {});
    byKind[outcome] = (byKind[outcome] ?? 0) + 1;
    if (outcome.startsWith('UNTYPED') || outcome.startsWith('SLOW')) {
      if (kept++ < MAX_FINDINGS) report.findings.push({ index: i, kind: input.kind, outcome, ms, ...(stack ? { stack } : {}) });
      else report.dropped++;
    }
  }
  at[0] = job.to;
  writeSync(progress, at, 0, 4, 0);
  report.upTo = job.to;
  report.done = true;
  process.send!(report, () => process.disconnect());
}

process.once('message', (job: WorkerJob) => void run(job));
