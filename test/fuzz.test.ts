/**
 * Fuzzing (issue 10): mutated msgpack and JSONL run files, catalog.yml files and
 * query strings, from a fixed seed, through the real readers, canonical order,
 * external-file collector, root rewrite, encoders and query code, in worker
 * threads. Every outcome must be success or a typed PackStreamError; an untyped
 * exception, an input slower than SLOW_MS, a worker stuck on one input for
 * HANG_MS, or one that outgrows its heap limit is a finding, saved to a folder
 * named in the output. Outcomes are counted by code and printed.
 *
 * `npm test` runs a short smoke run (3,000 inputs); `npm run test:fuzz` (in
 * .ci/run) runs 100,000. PACK_STREAM_FUZZ_N and PACK_STREAM_FUZZ_SEED change
 * the run. Inputs that once failed live in test/fixtures/fuzz-regressions/ and
 * are replayed here.
 */
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fork, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildCorpus, EXTENSION, kindOfFile, makeInput, outcomeOf, prepareContext, runInput, type Corpus } from './helpers/fuzz.js';
import type { Finding, WorkerJob, WorkerReport } from './helpers/fuzz-worker.js';
import { REPO } from './helpers/paths.js';
import { tempDir } from './helpers/files.js';

const N = Number(process.env.PACK_STREAM_FUZZ_N ?? 3_000);
const SEED = Number(process.env.PACK_STREAM_FUZZ_SEED ?? 20261125);
const WORKERS = Math.max(1, Math.min(2, os.availableParallelism()));
/** One small input takes milliseconds; these catch hangs and blow-ups, not speed (SLOW_MS is CPU time, so a busy machine does not trip it). */
const SLOW_MS = 5_000;
const HANG_MS = 60_000;
/** The memory guard: a worker's JS heap limit, and its whole resident set. */
const HEAP_MB = 512;
const RSS_MB = 2048;
const REGRESSIONS = path.join(REPO, 'test', 'fixtures', 'fuzz-regressions');

type Counts = Record<string, Record<string, number>>;

/** Where a worker writes its inputs: memory-backed /dev/shm when there is one (every input is a file write). */
function fuzzDir(): string {
  if (!existsSync('/dev/shm')) return tempDir('pack-stream-fuzz-');
  const d = mkdtempSync('/dev/shm/pack-stream-fuzz-');
  process.on('exit', () => rmSync(d, { recursive: true, force: true }));
  return d;
}

function addCounts(into: Counts, from: Counts): void {
  for (const [kind, byOutcome] of Object.entries(from)) {
    const k = (into[kind] ??= {});
    for (const [o, n] of Object.entries(byOutcome)) k[o] = (k[o] ?? 0) + n;
  }
}

interface Skips {
  skipHugeRecords: boolean;
  skipHugeListings: boolean;
}

/** Inputs [from, to) in one worker process, restarted past an input that hung or killed it. */
async function runRange(corpus: Corpus, from: number, to: number, slot: number, skips: Skips): Promise<{ counts: Counts; findings: Finding[]; dropped: number }> {
  const counts: Counts = {};
  const findings: Finding[] = [];
  let dropped = 0;
  const dir = fuzzDir();
  const progressFile = path.join(dir, `progress-${slot}`);
  let start = from;
  while (start < to) {
    const job: WorkerJob = { corpus, seed: SEED, from: start, to, dir, progressFile, slowMs: SLOW_MS, ...skips };
    const child = fork(fileURLToPath(new URL('./helpers/fuzz-worker.ts', import.meta.url)), [], {
      execArgv: [...process.execArgv, `--max-old-space-size=${HEAP_MB}`],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const current = () => {
      try {
        return readFileSync(progressFile).readInt32LE(0);
      } catch {
        return start;
      }
    };
    /** Inputs before this index are counted. */
    let confirmed = start;
    const stuck = await new Promise<Finding | undefined>((resolve) => {
      let settled = false;
      let last = -1;
      let since = Date.now();
      const settle = (v: Finding | undefined) => {
        if (settled) return;
        settled = true;
        clearInterval(watch);
        resolve(v);
      };
      const watch = setInterval(() => {
        const rss = rssMiB(child.pid);
        if (rss > RSS_MB) {
          child.kill('SIGKILL');
          settle({ index: current(), kind: '?', outcome: `MEMORY(RSS ${rss.toFixed(0)} MiB > ${RSS_MB} MiB)`, ms: 0 });
          return;
        }
        const cur = current();
        if (cur !== last) {
          last = cur;
          since = Date.now();
        } else if (Date.now() - since > HANG_MS) {
          child.kill('SIGKILL');
          settle({ index: cur, kind: '?', outcome: `HANG(> ${HANG_MS} ms)`, ms: Date.now() - since });
        }
      }, 250);
      child.on('message', (report: WorkerReport) => {
        addCounts(counts, report.counts);
        findings.push(...report.findings);
        dropped += report.dropped;
        confirmed = report.upTo;
        if (report.done) settle(undefined);
      });
      child.on('exit', (code, signal) => {
        const why = /heap out of memory|Allocation failed/i.test(stderr) ? `MEMORY(heap > ${HEAP_MB} MiB)` : `CRASH(${signal ?? `exit ${code}`})`;
        settle({ index: current(), kind: '?', outcome: why, ms: 0, stack: stderr.trim().split('\n').filter(Boolean).slice(0, 12).join('\n') });
      });
      child.send(job);
    });
    if (!stuck) break;
    child.kill('SIGKILL');
    stuck.kind = makeInput(corpus, SEED, stuck.index).kind;
    findings.push(stuck);
    addCounts(counts, { [stuck.kind]: { [stuck.outcome.replace(/\(.*/, '')]: 1 } });
    // The last, unsent batch of its tally went with the process: run those inputs again.
    if (stuck.index > confirmed) {
      const redo = await runRange(corpus, confirmed, stuck.index, slot, skips);
      addCounts(counts, redo.counts);
      findings.push(...redo.findings);
      dropped += redo.dropped;
    }
    start = stuck.index + 1;
  }
  return { counts, findings, dropped };
}

/** A process's resident set, MiB (0 when it is gone or there is no /proc). */
function rssMiB(pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

function table(counts: Counts): string {
  const lines: string[] = [];
  for (const [kind, byOutcome] of Object.entries(counts).sort()) {
    const total = Object.values(byOutcome).reduce((a, b) => a + b, 0);
    const parts = Object.entries(byOutcome).sort((a, b) => b[1] - a[1]).map(([o, n]) => `${o} ${n}`);
    lines.push(`${kind} (${total}): ${parts.join(', ')}`);
  }
  return lines.join('\n');
}

t.test(`fuzz: ${N} mutated inputs, seed ${SEED}, ${WORKERS} worker(s)`, async (t) => {
  const corpus = buildCorpus();
  // Open points of issue 10 in other code that would cost a worker per input: probed, counted apart while open.
  const probe = (mode: string) =>
    spawnSync(process.execPath, [...process.execArgv, fileURLToPath(new URL('./helpers/fuzz-probe.ts', import.meta.url)), mode, path.join(tempDir(), 'probe.msgpack')], { timeout: 10_000, killSignal: 'SIGKILL' });
  const record = probe('record');
  const listing = probe('listing');
  const skips: Skips = { skipHugeRecords: record.status !== 0, skipHugeListings: listing.status !== 0 };
  if (skips.skipHugeRecords) t.todo(`known open: a msgpack record header claiming > 2 GiB aborts the reader natively (issue 10 point 2, the readers' part; probe: ${record.signal ?? record.status}); such inputs are counted as KNOWN-OPEN, not run`, async () => {});
  if (skips.skipHugeListings) t.todo(`known open: a resource asking for 2^31 frames per point never finishes listing (issue 10 point 4, the external-files part; probe: ${listing.signal ?? listing.status}); such inputs are counted as KNOWN-OPEN, not run`, async () => {});
  const t0 = Date.now();
  const per = Math.ceil(N / WORKERS);
  const parts = await Promise.all(Array.from({ length: WORKERS }, (_, w) => runRange(corpus, w * per, Math.min(N, (w + 1) * per), w, skips)));
  const counts: Counts = {};
  const findings: Finding[] = [];
  let dropped = 0;
  for (const p of parts) {
    addCounts(counts, p.counts);
    findings.push(...p.findings);
    dropped += p.dropped;
  }
  const total = Object.values(counts).flatMap((c) => Object.values(c)).reduce((a, b) => a + b, 0);
  t.comment(`fuzz outcomes (seed ${SEED}, ${total} inputs in ${((Date.now() - t0) / 1000).toFixed(1)} s; corpus: ${corpus.msgpack.length} msgpack, ${corpus.jsonl.length} JSONL, ${corpus.catalog.length} catalogs, ${corpus.query.length} queries):\n${table(counts)}`);
  t.equal(total, N, 'every input ran');
  if (findings.length) {
    const out = process.env.PACK_STREAM_FUZZ_OUT ?? path.join(os.tmpdir(), `pack-stream-fuzz-findings-${SEED}`);
    mkdirSync(out, { recursive: true });
    for (const f of findings) {
      const input = makeInput(corpus, SEED, f.index);
      writeFileSync(path.join(out, `${f.index}${EXTENSION[input.kind]}`), input.bytes);
    }
    t.comment(`findings saved in ${out}:\n${findings.map((f) => `#${f.index} ${f.kind}: ${f.outcome}${f.stack ? `\n    ${f.stack.replace(/\n/g, '\n    ')}` : ''}`).join('\n')}`);
  }
  t.same(findings.map((f) => `#${f.index} ${f.kind}: ${f.outcome}`), [], `no untyped error, hang, slow input or heap blow-up${dropped ? ` (${dropped} more not listed)` : ''}`);
});

t.test('inputs that once failed (test/fixtures/fuzz-regressions) end typed and in time', async (t) => {
  let files: string[] = [];
  try {
    files = readdirSync(REGRESSIONS).filter((f) => kindOfFile(f)).sort();
  } catch {
    // none yet
  }
  const ctx = prepareContext(fuzzDir(), buildCorpus());
  for (const f of files) {
    const t0 = performance.now();
    let outcome: string;
    try {
      outcome = await runInput(ctx, kindOfFile(f)!, readFileSync(path.join(REGRESSIONS, f)));
    } catch (e) {
      outcome = outcomeOf(e);
    }
    const ms = performance.now() - t0;
    t.notMatch(outcome, /^UNTYPED/, `${f}: ${outcome}`);
    t.ok(ms < SLOW_MS, `${f}: ${ms.toFixed(0)} ms`);
  }
  t.comment(`${files.length} regression inputs replayed`);
});
