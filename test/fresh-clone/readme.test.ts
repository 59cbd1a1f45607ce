/**
 * The README's Quick start on a fresh clone, as a newcomer runs it: the install
 * command, the main job twice (it must work again without cleaning up), and the
 * test command — cut to one small test file (`npm test -- test/ndarray.test.ts`:
 * build, typecheck, one file) so it does not run this suite inside itself. Then the
 * packaging: `npm pack` ships no tests, and the tarball installed with
 * `npm install -g` gives the three commands. Run by .ci/run (`npm run test:fresh-clone`);
 * it clones the committed HEAD, so commit first when running it by hand.
 */
import type { Test } from 'tap';
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/files.js';
import { REPO } from '../helpers/paths.js';

/** The fenced `sh` blocks of the README's Quick start, one command per line. */
function quickStartCommands(): string[] {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const quick = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('\n## ', readme.indexOf('## Quick start') + 5));
  return [...quick.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n').filter((l) => l.trim() !== ''));
}

function sh(cmd: string, cwd: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync('bash', ['-c', cmd], { cwd, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 26 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Exit 0, with the command's output shown only when it failed. */
function succeeded(t: Test, r: { code: number | null; out: string }, what: string): void {
  t.equal(r.code, 0, what);
  if (r.code !== 0) t.comment(r.out.slice(-4000));
}

const commands = quickStartCommands();
const install = commands.find((c) => c.startsWith('npm ci'));
const job = commands.find((c) => c.startsWith('npx pack-stream pack'));
const test = commands.find((c) => c.startsWith('npm test'));

t.test('the Quick start names the three commands', async (t) => {
  t.ok(install, 'install');
  t.ok(job, 'main job');
  t.ok(test, 'tests');
});

t.test('fresh clone: install, the main job twice, the tests', { timeout: 900_000 }, async (t) => {
  if (!install || !job || !test) return;
  const clone = path.join(tempDir(), 'pack-stream');
  const c = sh(`git clone --quiet "${REPO}" "${clone}"`, REPO);
  succeeded(t, c, 'git clone');
  const i = sh(`${install} --no-audit --no-fund --prefer-offline`, clone);
  succeeded(t, i, 'install: npm ci');
  for (const round of [1, 2]) {
    const r = sh(job, clone);
    succeeded(t, r, `main job, run ${round}`);
    const dir = /into (\S+)\n/.exec(r.out)?.[1];
    t.ok(dir && existsSync(path.join(dir, 'catalog.yml')), `run ${round} wrote a whole pack (${dir})`);
  }
  const u = sh(`${test} -- --disable-coverage test/ndarray.test.ts`, clone);
  succeeded(t, u, 'tests: npm test (one file)');
  // `npm test` rebuilt dist/: the command still runs (its launcher is a committed file).
  const again = sh('npx pack-stream --version', clone);
  succeeded(t, again, 'npx pack-stream after npm test');

  // `npm install -g .` from the clone: the commands on PATH, run from elsewhere.
  const linked = tempDir();
  const gl = sh(`npm install -g --no-audit --no-fund --prefer-offline --prefix "${linked}" .`, clone);
  succeeded(t, gl, 'npm install -g .');
  for (const cmd of ['pack-stream --version', 'databroker-pack -V', 'databroker-unpack -V']) {
    const r = sh(cmd, tempDir(), { PATH: `${path.join(linked, 'bin')}:${process.env.PATH}` });
    succeeded(t, r, `npm install -g .: ${cmd}`);
  }

  const p = sh('npm pack --silent', clone);
  succeeded(t, p, 'npm pack');
  const tarball = path.join(clone, p.out.trim().split('\n').pop()!);
  const list = sh(`tar -tzf "${tarball}"`, clone).out.split('\n').filter(Boolean);
  t.notOk(list.some((f) => /^package\/test\//.test(f) || /\.test\.[cm]?[jt]s$/.test(f)), 'no tests in the tarball');
  t.ok(list.includes('package/bin/databroker-pack.cjs') && list.includes('package/dist/cli/main.js'), 'launchers and dist shipped');
  const prefix = tempDir();
  const g = sh(`npm install -g --no-audit --no-fund --prefer-offline --prefix "${prefix}" "${tarball}"`, clone);
  succeeded(t, g, 'npm install -g TARBALL');
  t.same(readdirSync(path.join(prefix, 'bin')).sort(), ['databroker-pack', 'databroker-unpack', 'pack-stream']);
  const elsewhere = tempDir();
  for (const cmd of ['pack-stream --version', 'databroker-pack -V', 'databroker-unpack --help']) {
    const r = sh(cmd, elsewhere, { PATH: `${path.join(prefix, 'bin')}:${process.env.PATH}` });
    succeeded(t, r, `tarball: ${cmd}`);
  }
  const packed = sh(`pack-stream pack "${path.join(clone, 'examples', 'catalog')}" out --all`, elsewhere, { PATH: `${path.join(prefix, 'bin')}:${process.env.PATH}` });
  succeeded(t, packed, `the installed pack-stream packs`);
});
