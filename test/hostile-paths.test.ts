/**
 * Names and paths from hostile input (issue 10, points 1, 5, 12, 13), through
 * the built CLI as a user runs it: the bad run fails with E_UNSAFE_PATH on one
 * line, the other runs are packed, nothing appears outside DEST, the sources
 * are untouched, and it all finishes well within a time budget.
 */
import type { Test } from 'tap';
import t from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { runCli, type CliResult } from './helpers/cli.js';
import { makeArray, writeDetectorRun, writeNpy, writeTiff } from './helpers/detector.js';
import { tempDir, treeDigest } from './helpers/files.js';
import { scalarRun, writeJsonlRun, writeMsgpackRun } from './helpers/runs.js';

/** Generous: each command takes about a second; a hang or a blow-up takes far longer. */
const BUDGET_MS = 60_000;

/** Every file and directory under `dir` (relative, directories with a trailing slash). */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (e.isDirectory()) {
        out.push(`${rel}/`);
        await walk(p);
      } else out.push(rel);
    }
  }
  await walk(dir);
  return out.sort();
}

/** What appeared under `root` outside `dest` since `before`. */
async function newOutside(root: string, dest: string, before: string[]): Promise<string[]> {
  const destRel = path.relative(root, dest);
  const had = new Set(before);
  return (await tree(root)).filter((p) => !had.has(p) && p !== `${destRel}/` && !p.startsWith(`${destRel}/`));
}

async function timedCli(t: Test, args: string[], opts: Parameters<typeof runCli>[1] = {}): Promise<CliResult> {
  const t0 = Date.now();
  const r = await runCli(args, opts);
  t.ok(Date.now() - t0 < BUDGET_MS, `finished within ${BUDGET_MS / 1000} s`);
  return r;
}

/** stderr lines naming failed runs: `  <uid>: E_CODE: message`. */
function failureLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('  '));
}

t.test('a start uid that is not a safe file name fails its run (point 1)', async (t) => {
  const root = tempDir();
  const runs = path.join(root, 'runs');
  mkdirSync(runs);
  for (let i = 0; i < 3; i++) writeMsgpackRun(path.join(runs, `good-${i}.msgpack`), scalarRun(`good-${i}`, { scanId: i + 1, t0: 1600000000 + i * 100 }));
  const evil: Record<string, string> = {
    'up.msgpack': '../../../escaped',
    'abs.msgpack': path.join(root, 'abs-escape', 'x'),
    'dotdot.msgpack': '..',
    'long.msgpack': 'u'.repeat(300),
    'newline.jsonl': 'a\nb',
    'nul.msgpack': 'a\u0000b',
  };
  let i = 10;
  for (const [file, uid] of Object.entries(evil)) {
    const recs = scalarRun(uid, { t0: 1600000000 + i++ * 100 });
    if (file.endsWith('.jsonl')) writeJsonlRun(path.join(runs, file), recs);
    else writeMsgpackRun(path.join(runs, file), recs);
  }
  // DEST three levels down, so '../../../escaped' would land inside root where we can see it.
  const dest = path.join(root, 'a', 'b', 'c', 'out');
  mkdirSync(path.dirname(dest), { recursive: true });
  const before = await tree(root);
  const sources = await treeDigest(runs);

  for (const format of ['msgpack', 'jsonl']) {
    const out = `${dest}-${format}`;
    const r = await timedCli(t, ['pack', runs, out, '--all', '--format', format]);
    t.equal(r.code, 1, `${format}: exit code 1 (some runs failed)`);
    t.equal(r.stdout, '', 'nothing on stdout');
    const lines = failureLines(r.stderr);
    t.equal(lines.length, Object.keys(evil).length, 'one line per refused run');
    for (const l of lines) t.match(l, /^ {2}.+: E_UNSAFE_PATH: run uid ".*" (contains a path separator|is a relative directory reference|is too long for a file name \(300 bytes; at most \d+\)|contains a control character), so it cannot be used as a file name$/);
    t.match(r.stderr, /"a\\nb" contains a control character/, 'the newline is shown escaped, not printed');
    t.notOk(r.stderr.includes('\u0000'), 'no raw NUL printed');
    t.same(readdirSync(path.join(out, 'documents')).sort(), [0, 1, 2].map((n) => `good-${n}.${format}`), 'only the good runs are in documents/, no folders');
    const tsv = readFileSync(path.join(out, 'failures.tsv'), 'utf8').split('\n').filter(Boolean);
    t.equal(tsv.length, Object.keys(evil).length, 'failures.tsv has one line per refused run');
    for (const l of tsv) t.match(l, /^[^\t]+\tE_UNSAFE_PATH\t[^\t]+$/, 'three tab-separated fields on one line');
    t.ok(existsSync(path.join(out, 'catalog.yml')), 'catalog.yml written for the good runs');
  }
  t.same(await newOutside(root, path.dirname(dest), before), [], 'nothing written outside DEST');
  t.notOk(existsSync(path.join(root, 'a', 'escaped.msgpack')), 'no escaped.msgpack above DEST');
  t.same(await treeDigest(runs), sources, 'sources untouched');
});

/** One run with one external resource, filled with one datum. */
function resourceRun(dir: string, uid: string, spec: string, rootDir: string, resourcePath: string, kwargs: Record<string, unknown> = {}, datum: Record<string, unknown> = {}): void {
  writeDetectorRun(dir, uid, [{ spec, root: rootDir, resource_path: resourcePath, resource_kwargs: kwargs as never, datums: [datum as never] }]);
}

t.test('control characters and escapes in external file paths (point 5)', async (t) => {
  const root = tempDir();
  const runs = path.join(root, 'runs');
  const data = path.join(root, 'data');
  const outside = path.join(root, 'outside');
  const frame = makeArray('<u2', [2, 3], (i) => i * 7);
  // Real files at every path the hostile resources name, so only the name can stop them.
  writeNpy(path.join(data, 'ok.npy'), frame);
  writeNpy(path.join(data, 'x\n', 'etc', 'shadow\ny.npy'), frame);
  writeNpy(path.join(outside, 'secret.npy'), frame);
  writeTiff(path.join(outside, 'secret_000000.tiff'), frame);
  mkdirSync(path.join(data, 'frames')); // so that the kernel can walk frames/../..
  mkdirSync(runs);
  for (let i = 0; i < 2; i++) writeMsgpackRun(path.join(runs, `plain-${i}.msgpack`), scalarRun(`plain-${i}`, { t0: 1600000000 + i * 100 }));
  resourceRun(runs, 'good-ext', 'npy', data, 'ok.npy');
  resourceRun(runs, 'evil-newline', 'npy', data, 'x\n/etc/shadow\ny.npy');
  resourceRun(runs, 'evil-dotdot', 'npy', data, '../outside/secret.npy');
  resourceRun(runs, 'evil-absolute', 'npy', data, path.join(outside, 'secret.npy'));
  resourceRun(runs, 'evil-template', 'AD_TIFF', data, 'frames', { template: '%s%s_%6.6d.tiff', filename: '../../outside/secret', frame_per_point: 1 }, { point_number: 0 });
  const evil = ['evil-dotdot', 'evil-absolute', 'evil-newline', 'evil-template'];
  const before = await tree(root);
  const sources = await treeDigest(root);

  for (const mode of ['manifest', 'copy', 'fill']) {
    const dest = path.join(root, `out-${mode}`);
    const args = ['pack', runs, dest, '--all', ...(mode === 'copy' ? ['--copy-external'] : mode === 'fill' ? ['--fill-external'] : [])];
    const r = await timedCli(t, args);
    t.equal(r.code, 1, `${mode}: exit code 1`);
    const lines = failureLines(r.stderr);
    t.same(lines.map((l) => l.trim().split(':')[0]).sort(), evil.sort(), `${mode}: exactly the hostile runs failed`);
    for (const l of lines) t.match(l, /E_UNSAFE_PATH: .*(contains a control character|is not inside its resource root)/, `${mode}: one-line E_UNSAFE_PATH: ${l}`);
    t.same(readdirSync(path.join(dest, 'documents')).sort(), ['good-ext.msgpack', 'plain-0.msgpack', 'plain-1.msgpack'], `${mode}: the other runs are packed`);
    const manifests = readdirSync(dest).filter((f) => f.startsWith('external_files_manifest_'));
    if (mode === 'fill') t.same(manifests, [], 'fill: no external manifests');
    else {
      t.equal(manifests.length, 1, `${mode}: one external manifest (one root)`);
      const lines = readFileSync(path.join(dest, manifests[0]!), 'utf8').split('\n');
      if (mode === 'manifest') t.same(lines, [path.join(data, 'ok.npy')], 'manifest: only the good file, inside its root');
      else {
        t.equal(lines.length, 1);
        t.match(lines[0], /^external_files\/[0-9a-f]{32}\/ok\.npy$/, 'copy: only the good file, inside external_files/<HASH>/');
        t.same((await tree(path.join(dest, 'external_files'))).filter((p) => !p.endsWith('/')).map((p) => path.basename(p)), ['ok.npy'], 'copy: only the good file copied');
      }
    }
  }
  t.same((await tree(root)).filter((p) => !/^out-(manifest|copy|fill)(\/|$)/.test(p)), before, 'nothing written outside DEST');
  const after = await treeDigest(root);
  t.same(Object.fromEntries(Object.entries(after).filter(([k]) => !k.startsWith('out-'))), sources, 'sources and the files they name untouched');
});
