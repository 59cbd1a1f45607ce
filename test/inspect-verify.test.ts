/**
 * `inspect` and `verify` as a user runs them, on the Python-written vectors
 * and on packs pack-stream writes (every external-file mode, chunked
 * manifests, JSONL), before and after moving them; and `verify` failing on
 * each kind of damage. Vectors are copied before anything is broken.
 */
import t, { type Test } from 'tap';
import { appendFileSync, chmodSync, cpSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { exportCatalog, type ExportOptions } from '../src/pipeline/export.js';
import { verifyPack } from '../src/pipeline/verify.js';
import { readRecords } from '../src/sources/file-catalog.js';
import { openSource } from '../src/sources/open.js';
import { runCli } from './helpers/cli.js';
import { tempDir, treeDigest } from './helpers/files.js';
import { SKIP_VECTORS, VECTORS } from './helpers/paths.js';
import { scalarRun, writeMsgpackRun } from './helpers/runs.js';

const SIMPLE_HASH = 'f8483b80395561ac779a5425da6646ca';
const NPY = `external_files/${SIMPLE_HASH}/4d0d22_0.npy`;
const IMG_RUN = '4e22852d-33b1-49d2-bf73-2b1478a8f0b4';

/** A private environment, so no catalog of the machine interferes. */
function env(): Record<string, string | undefined> {
  const root = tempDir();
  return { HOME: path.join(root, 'home'), XDG_DATA_HOME: path.join(root, 'xdg'), VIRTUAL_ENV: path.join(root, 'venv'), INTAKE_PATH: undefined, INTAKE_CONF_FILE: undefined, INTAKE_CONF_DIR: path.join(root, 'conf'), CONDA_PREFIX: undefined };
}

function copyVector(name: string): string {
  const dest = path.join(tempDir(), name);
  cpSync(path.join(VECTORS, name), dest, { recursive: true });
  // The vectors are read-only; their copies must be writable to be damaged.
  chmodSync(dest, 0o755);
  for (const f of readdirSync(dest, { recursive: true }) as string[]) {
    const p = path.join(dest, f);
    chmodSync(p, statSync(p).isDirectory() ? 0o755 : 0o644);
  }
  return dest;
}

async function makePack(source: string, opts: ExportOptions = {}): Promise<string> {
  const dest = path.join(tempDir(), 'pack');
  await exportCatalog(await openSource(source), dest, { salt: 'SALT', ...opts });
  return dest;
}

async function verifyCli(dir: string, extra: string[] = []) {
  return runCli(['verify', dir, ...extra], { env: env() });
}

async function expectProblem(t: Test, dir: string, kind: string, pattern: RegExp) {
  const r = await verifyCli(dir);
  t.equal(r.code, 1, `${kind}: exit 1`);
  t.match(r.stdout, new RegExp(`^${kind}: .*${pattern.source}`, 'm'), `${kind} reported`);
  t.match(r.stderr, /\d+ problem\(s\)\n$/);
  const json = await verifyCli(dir, ['--json']);
  t.equal(json.code, 1);
  const report = JSON.parse(json.stdout) as { ok: boolean; problems: { kind: string; message: string }[] };
  t.equal(report.ok, false);
  t.ok(report.problems.some((p) => p.kind === kind && pattern.test(p.message)), `${kind} in the JSON report`);
  return report;
}

t.test('verify passes on the vectors and does not touch them', { skip: SKIP_VECTORS }, async (t) => {
  for (const v of ['simple_catalog', 'another_simple_catalog', 'polartools_scalar']) {
    const dir = path.join(VECTORS, v);
    const before = await treeDigest(dir);
    const r = await verifyCli(dir);
    t.equal(r.code, 0, `${v}: ${r.stdout}${r.stderr}`);
    t.equal(r.stdout, '', 'no problems printed');
    t.match(r.stderr, /: OK\n$/);
    t.same(await treeDigest(dir), before, `${v} untouched`);
  }
  const report = await verifyPack(path.join(VECTORS, 'simple_catalog'));
  t.same(
    { ok: report.ok, runs: report.runs, documentFiles: report.documentFiles, documents: report.documents, outside: report.externalFilesOutside },
    { ok: true, runs: 3, documentFiles: 3, documents: 16, outside: 0 },
  );
  t.ok(report.externalFilesChecked >= 1, 'the copied file was checked');
});

t.test('verify passes on packs pack-stream writes, in every mode', { skip: SKIP_VECTORS }, async (t) => {
  const simple = path.join(VECTORS, 'simple_catalog');
  const packs: [string, string][] = [
    ['manifest mode', await makePack(simple)],
    ['copy mode', await makePack(simple, { external: 'copy' })],
    ['copy mode, chunked manifests', await makePack(simple, { external: 'copy', manifestChunk: 1 })],
    ['jsonl', await makePack(simple, { format: 'jsonl', external: 'copy' })],
    ['no documents', await makePack(simple, { noDocuments: true, external: 'copy' })],
    ['polartools', await makePack(path.join(VECTORS, 'polartools_scalar'))],
  ];
  for (const [what, dir] of packs) {
    const r = await verifyCli(dir);
    t.equal(r.code, 0, `${what}: ${r.stdout}${r.stderr}`);
  }
  // The runs whose resources have no file rule (spec newton) fail to pack; the others make a good pack,
  // which verify calls incomplete (failures.tsv lists the missing runs) unless failures are allowed.
  const tutorials = await makePack(path.join(VECTORS, 'tutorials_jsonl'), { format: 'jsonl' });
  const strict = await verifyCli(tutorials);
  t.equal(strict.code, 1, 'tutorial JSONL runs: verify lists the runs the pack lacks');
  const lines = strict.stdout.trim().split('\n');
  t.ok(lines.length > 0 && lines.every((l) => /^failed-run: run \S+ was not packed \(E_NO_HANDLER: /.test(l)), strict.stdout);
  const allowed = await verifyCli(tutorials, ['--allow-failures']);
  t.equal(allowed.code, 0, `tutorial JSONL runs with --allow-failures: ${allowed.stdout}${allowed.stderr}`);
  const manifest = await verifyPack(packs[0]![1]);
  t.equal(manifest.externalFilesOutside, 1, 'manifest mode: the listed source file is outside the pack, counted');
  const chunked = readdirSync(packs[2]![1]).filter((f) => f.startsWith('documents_manifest_'));
  t.equal(chunked.length, 3, 'three manifest chunks');

  // --ignore-external leaves the resource roots unmapped on purpose (formats.md §7.4):
  // the pack is whole, and verify says its external files are not part of it.
  const ignored = await makePack(simple, { external: 'ignore' });
  const r = await verifyCli(ignored);
  t.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  t.equal(r.stdout, '', 'no problem reported');
  t.match(r.stderr, /warning: .*--ignore-external.*not part of it/);
  // A pack whose root_map lost a key it needs still fails.
  const copied = await makePack(simple, { external: 'copy' });
  const yml = path.join(copied, 'catalog.yml');
  writeFileSync(yml, readFileSync(yml, 'utf8').replace(/root_map:\n(\s+\S+: .*\n)+/, 'root_map: {}\n'));
  const broken = await verifyCli(copied);
  t.equal(broken.code, 1);
  t.match(broken.stdout, /^unmapped-root: resource root '3e3b48cf1579c708c4b515de4927d03a' /m);
});

t.test('a moved pack keeps working', { skip: SKIP_VECTORS }, async (t) => {
  for (const [what, make] of [
    ['Python-written pack', async () => copyVector('simple_catalog')],
    ['pack-stream copy-mode pack', async () => makePack(path.join(VECTORS, 'simple_catalog'), { external: 'copy' })],
  ] as [string, () => Promise<string>][]) {
    const original = await make();
    const moved = path.join(tempDir(), 'far', 'away');
    mkdirSync(path.dirname(moved));
    renameSync(original, moved);

    const v = await verifyCli(moved);
    t.equal(v.code, 0, `${what}: verify after move: ${v.stdout}${v.stderr}`);

    const i = await runCli(['inspect', moved, '--json'], { env: env() });
    t.equal(i.code, 0, i.stderr);
    const data = JSON.parse(i.stdout) as { runs: { uid: string; external: { files: number; bytes: number; missing: number } }[]; totals: { runs: number } };
    t.equal(data.totals.runs, 3);
    const img = data.runs.find((r) => r.external.files === 1)!;
    t.same(img.external, { files: 1, bytes: 928, missing: 0, unlisted: 0, unknownSpecs: [], unsafe: 0 }, `${what}: the copied file is found where the pack now is`);

    const repacked = path.join(tempDir(), 'repacked');
    const p = await runCli(['pack', moved, repacked, '--all', '--copy-external'], { env: env() });
    t.equal(p.code, 0, p.stderr);
    t.equal((await verifyCli(repacked)).code, 0, 'the re-pack verifies');
    t.equal(readFileSync(path.join(repacked, readdirSync(repacked).find((f) => f.startsWith('external_files_manifest_'))!), 'utf8').split('\n').length, 1);

    // Copy it once more (another machine, say) and unpack it by name there.
    const copied = path.join(tempDir(), 'copied');
    cpSync(moved, copied, { recursive: true });
    const e = env();
    t.equal((await runCli(['unpack', 'inplace', copied, 'travelled'], { env: e })).code, 0);
    const byName = await runCli(['inspect', 'travelled'], { env: e });
    t.equal(byName.code, 0, byName.stderr);
    t.match(byName.stdout, /^total: 3 runs, 5 events, 16 documents, 1 external file \(928 B\)\n$/m);
  }
});

t.test('inspect: one line per run, totals, --json', { skip: SKIP_VECTORS }, async (t) => {
  const r = await runCli(['inspect', path.join(VECTORS, 'simple_catalog')], { env: env() });
  t.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  t.equal(lines.length, 4);
  t.same(lines.slice(0, 3).sort(), [
    `${IMG_RUN}  scan_id=3  count  2020-04-29T12:18:26Z  primary:1  success  1 external file (928 B)`,
    '6ae80362-1095-45ba-a033-ef15db9ca587  scan_id=1  count  2020-04-29T12:18:26Z  primary:1  success  0 external files (0 B)',
    'b53f5090-cb1b-4226-a16c-7f71fae07144  scan_id=2  count  2020-04-29T12:18:26Z  primary:3  success  0 external files (0 B)',
  ]);
  t.equal(lines[3], 'total: 3 runs, 5 events, 16 documents, 1 external file (928 B)');

  const j = await runCli(['inspect', path.join(VECTORS, 'polartools_scalar'), '--json'], { env: env() });
  t.equal(j.code, 0);
  const data = JSON.parse(j.stdout) as { source: string; runs: Record<string, unknown>[]; totals: Record<string, number> };
  t.match(data.source, /polartools_scalar\/catalog\.yml/);
  t.same(data.runs, [
    {
      uid: 'befa48fc-3976-4812-8eee-688223770b46',
      scan_id: 1049,
      plan_name: 'rel_scan',
      time: 1608235923.9519994,
      start_time: '2020-12-17T20:12:03Z',
      streams: { baseline: 2, primary: 4 },
      exit_status: 'success',
      documents: 10,
      external: { files: 0, bytes: 0, missing: 0, unlisted: 0, unknownSpecs: [], unsafe: 0 },
      location: path.join(VECTORS, 'polartools_scalar', 'documents', 'befa48fc-3976-4812-8eee-688223770b46.msgpack'),
    },
  ]);
  t.same(data.totals, { runs: 1, failedRuns: 0, documents: 10, events: 6, externalFiles: 0, externalBytes: 0, missingExternalFiles: 0 });

  const tut = await runCli(['inspect', path.join(VECTORS, 'tutorials_jsonl')], { env: env() });
  t.equal(tut.code, 0);
  t.match(tut.stdout, /1 unlisted \(spec newton\)/, 'resources without a file rule are counted as unlisted');
});

t.test('inspect: missing external files and unreadable runs', { skip: SKIP_VECTORS }, async (t) => {
  // A manifest-mode pack whose source files went away.
  const src = copyVector('simple_catalog');
  const pack = await makePack(src);
  rmSync(path.join(src, NPY));
  const r = await runCli(['inspect', pack], { env: env() });
  t.equal(r.code, 0);
  t.match(r.stdout, new RegExp(`^${IMG_RUN} .* 1 external file \\(0 B\\), 1 missing$`, 'm'));
  t.match(r.stdout, /, 1 missing\n$/);

  const dir = tempDir();
  writeMsgpackRun(path.join(dir, 'good.msgpack'), scalarRun('good'));
  writeFileSync(path.join(dir, 'bad.msgpack'), Buffer.from([0x92, 0xa5, 0x73, 0x74]));
  const b = await runCli(['inspect', dir], { env: env() });
  t.equal(b.code, 1, 'an unreadable run fails the command');
  t.match(b.stdout, /^bad  ERROR E_TRUNCATED: .*bad\.msgpack is truncated/m);
  t.match(b.stdout, /^good  scan_id=1  count  2020-09-13T12:26:40Z  primary:3  success/m);
  t.match(b.stdout, /1 unreadable run\n$/);
});

t.test('verify fails on damaged packs', { skip: SKIP_VECTORS }, async (t) => {
  t.test('a missing document file', async (t) => {
    const dir = copyVector('simple_catalog');
    rmSync(path.join(dir, 'documents', `${IMG_RUN}.msgpack`));
    await expectProblem(t, dir, 'missing-document', new RegExp(`documents/${IMG_RUN}\\.msgpack is listed in the documents manifest but missing`));
  });

  t.test('a truncated document file', async (t) => {
    const dir = copyVector('another_simple_catalog');
    const file = path.join(dir, 'documents', 'b91b9481-e0ef-400b-b82d-51125c8bf852.msgpack');
    truncateSync(file, readFileSync(file).length - 9);
    await expectProblem(t, dir, 'truncated-document', /b91b9481-e0ef-400b-b82d-51125c8bf852\.msgpack is truncated/);
  });

  t.test('an empty document file', async (t) => {
    const dir = copyVector('polartools_scalar');
    truncateSync(path.join(dir, 'documents', 'befa48fc-3976-4812-8eee-688223770b46.msgpack'), 0);
    await expectProblem(t, dir, 'truncated-document', /befa48fc-3976-4812-8eee-688223770b46\.msgpack is empty/);
  });

  t.test('a corrupt document file', async (t) => {
    const dir = copyVector('polartools_scalar');
    const file = path.join(dir, 'documents', 'befa48fc-3976-4812-8eee-688223770b46.msgpack');
    const bytes = readFileSync(file);
    bytes[5000] = 0xc1; // never valid in msgpack
    writeFileSync(file, bytes);
    await expectProblem(t, dir, 'unreadable-document', /is not a readable msgpack run file/);
  });

  t.test('a run cut at a document boundary (no stop)', async (t) => {
    const dir = copyVector('simple_catalog');
    const file = path.join(dir, 'documents', `${IMG_RUN}.msgpack`);
    const raws: Buffer[] = [];
    for await (const r of readRecords(file, 'msgpack')) raws.push(Buffer.from(r.raw as Buffer));
    writeFileSync(file, Buffer.concat(raws.slice(0, -1)));
    await expectProblem(t, dir, 'bad-run', /ends with a 'event_page' document, not a 'stop'/);
  });

  t.test('a run that does not begin with start', async (t) => {
    const dir = copyVector('simple_catalog');
    const file = path.join(dir, 'documents', `${IMG_RUN}.msgpack`);
    const raws: Buffer[] = [];
    for await (const r of readRecords(file, 'msgpack')) raws.push(Buffer.from(r.raw as Buffer));
    writeFileSync(file, Buffer.concat(raws.slice(1)));
    await expectProblem(t, dir, 'bad-run', /begins with a 'descriptor' document, not a 'start'/);
  });

  t.test('a missing copied external file', async (t) => {
    const dir = copyVector('simple_catalog');
    rmSync(path.join(dir, NPY));
    const report = await expectProblem(t, dir, 'missing-external', new RegExp(`${NPY.replace(/\./g, '\\.')} \\(listed in external_files_manifest_${SIMPLE_HASH}\\.txt\\) is missing`));
    t.equal(report.problems.filter((p) => p.kind === 'missing-external').length, 1, 'reported once, though the run needs it too');
  });

  t.test('a copied file missing from a pack-stream pack and from its manifest', async (t) => {
    const dir = await makePack(path.join(VECTORS, 'simple_catalog'), { external: 'copy' });
    const manifest = readdirSync(dir).find((f) => f.startsWith('external_files_manifest_'))!;
    const listed = readFileSync(path.join(dir, manifest), 'utf8');
    rmSync(path.join(dir, listed));
    writeFileSync(path.join(dir, manifest), '');
    await expectProblem(t, dir, 'missing-external', /_0\.npy \(needed by run 4e22852d-33b1-49d2-bf73-2b1478a8f0b4\) is missing/);
  });

  t.test('a missing external_files root directory', async (t) => {
    const dir = copyVector('simple_catalog');
    rmSync(path.join(dir, 'external_files'), { recursive: true });
    await expectProblem(t, dir, 'missing-external', new RegExp(`root_map maps '${SIMPLE_HASH}' to external_files/${SIMPLE_HASH}, which is not in the pack`));
  });

  t.test('an unmapped resource root', async (t) => {
    const dir = copyVector('simple_catalog');
    const cat = path.join(dir, 'catalog.yml');
    const text = readFileSync(cat, 'utf8');
    const edited = text.replace(/root_map:\n\s+\S+: \S+\n/, 'root_map: {}\n');
    t.not(edited, text);
    writeFileSync(cat, edited);
    const report = await expectProblem(t, dir, 'unmapped-root', new RegExp(`resource root '${SIMPLE_HASH}' .* is not in catalog\\.yml's root_map`));
    t.same(report.problems.map((p) => p.kind), ['unmapped-root'], 'the only problem');
  });

  t.test('a missing catalog.yml', async (t) => {
    const dir = copyVector('polartools_scalar');
    rmSync(path.join(dir, 'catalog.yml'));
    await expectProblem(t, dir, 'bad-catalog', /catalog\.yml is missing/);
  });

  t.test('a document file no manifest lists, holding a run twice', async (t) => {
    const dir = copyVector('simple_catalog');
    cpSync(path.join(dir, 'documents', `${IMG_RUN}.msgpack`), path.join(dir, 'documents', 'stray.msgpack'));
    const report = await expectProblem(t, dir, 'unlisted-document', /documents\/stray\.msgpack is not listed/);
    t.ok(report.problems.some((p) => p.kind === 'duplicate-run'));
    t.ok(report.problems.some((p) => p.kind === 'bad-run' && /named by their start uid/.test(p.message)));
  });

  t.test('a missing manifest chunk', async (t) => {
    const dir = await makePack(path.join(VECTORS, 'simple_catalog'), { external: 'copy', manifestChunk: 1 });
    rmSync(path.join(dir, 'documents_manifest_1.txt'));
    const report = await expectProblem(t, dir, 'bad-manifest', /documents_manifest_1\.txt is missing \(chunks 0, 2 are present\)/);
    t.ok(report.problems.some((p) => p.kind === 'unlisted-document'), 'its document is now unlisted');
  });

  t.test('a manifest entry outside the pack', async (t) => {
    const dir = copyVector('polartools_scalar');
    appendFileSync(path.join(dir, 'documents_manifest.txt'), '../elsewhere/x.msgpack\n');
    await expectProblem(t, dir, 'bad-manifest', /lists \.\.\/elsewhere\/x\.msgpack, which is not inside the pack/);
  });

  t.test('not a directory', async (t) => {
    const r = await verifyCli(path.join(tempDir(), 'nothing'));
    t.equal(r.code, 1);
    t.match(r.stderr, /E_NO_SOURCE: .*nothing is not a pack directory/);
  });
});
