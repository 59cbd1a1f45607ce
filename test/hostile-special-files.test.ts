// Run files, catalog.yml and manifests that are FIFOs: each must fail at once
// with E_NOT_REGULAR naming the file, never block the command.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { runCliWithin } from './helpers/cli.js';
import { tempDir } from './helpers/files.js';
import { REPO } from './helpers/paths.js';

const HAS_MKFIFO = existsSync('/usr/bin/mkfifo') || existsSync('/bin/mkfifo');
const BUDGET_MS = 30_000;
const EXAMPLE = path.join(REPO, 'examples', 'catalog');

function fifo(p: string): void {
  rmSync(p, { force: true });
  execFileSync('mkfifo', [p]);
}

async function packExample(t: Test): Promise<string> {
  const dest = path.join(tempDir(), 'pack');
  const r = await runCliWithin(['pack', EXAMPLE, dest, '--all', '--ignore-external'], BUDGET_MS);
  t.equal(r.code, 0, `example packed: ${r.stderr}`);
  return dest;
}

t.test('a FIFO as catalog.yml fails inspect and pack at once', { skip: HAS_MKFIFO ? false : 'no mkfifo' }, async (t) => {
  const pack = await packExample(t);
  fifo(path.join(pack, 'catalog.yml'));
  for (const args of [['inspect', pack], ['pack', pack, path.join(tempDir(), 'out'), '--all']]) {
    const r = await runCliWithin(args, BUDGET_MS);
    t.notOk(r.killed, `${args[0]} did not hang`);
    t.not(r.code, 0, `${args[0]} exits non-zero`);
    t.match(r.stderr, /E_NOT_REGULAR: catalog file .*catalog\.yml is not a regular file/, `${args[0]} names the file`);
  }
});

t.test('FIFO run files are not read (a listing takes regular files only); the other runs are packed', { skip: HAS_MKFIFO ? false : 'no mkfifo' }, async (t) => {
  const src = path.join(tempDir(), 'runs');
  cpSync(path.join(EXAMPLE, 'documents'), src, { recursive: true });
  const good = readdirSync(src).length;
  fifo(path.join(src, 'fifo-run.msgpack'));
  const dest = path.join(tempDir(), 'out');
  const r = await runCliWithin(['pack', src, dest, '--all', '--ignore-external'], BUDGET_MS);
  t.notOk(r.killed, 'did not hang');
  t.equal(r.code, 0, r.stderr);
  t.equal(readdirSync(path.join(dest, 'documents')).length, good, 'every regular run packed');

  const jsrc = path.join(tempDir(), 'jruns');
  const jpack = path.join(tempDir(), 'jpack');
  t.equal((await runCliWithin(['pack', EXAMPLE, jpack, '--all', '--format', 'jsonl', '--ignore-external'], BUDGET_MS)).code, 0);
  cpSync(path.join(jpack, 'documents'), jsrc, { recursive: true });
  fifo(path.join(jsrc, 'fifo-run.jsonl'));
  const jout = path.join(tempDir(), 'jout');
  const j = await runCliWithin(['pack', jsrc, jout, '--all', '--ignore-external'], BUDGET_MS);
  t.notOk(j.killed, 'JSONL: did not hang');
  t.equal(j.code, 0, j.stderr);
  t.equal(readdirSync(path.join(jout, 'documents')).length, good, 'JSONL: every regular run packed');
});

t.test('a FIFO manifest is a verify problem, not a hang', { skip: HAS_MKFIFO ? false : 'no mkfifo' }, async (t) => {
  const pack = await packExample(t);
  const manifest = readdirSync(pack).find((n) => /^documents_manifest.*\.txt$/.test(n));
  t.ok(manifest, 'the pack has a documents manifest');
  fifo(path.join(pack, manifest!));
  const r = await runCliWithin(['verify', pack], BUDGET_MS);
  t.notOk(r.killed, 'did not hang');
  t.equal(r.code, 1);
  t.match(r.stdout + r.stderr, /not a regular file/);
});
