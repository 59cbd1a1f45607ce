/**
 * src/net/http.ts against a real node:http server on 127.0.0.1: bodies that
 * break part-way are resumed with Range and arrive whole; retries are bounded;
 * status codes become E_AUTH / E_HTTP; headers are sent and never printed.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PackStreamError } from '../src/errors.js';
import { HttpClient, parseHeaders, safeUrl, urlJoin } from '../src/net/http.js';
import { tempDir } from './helpers/files.js';
import { serveDirectory } from './helpers/http-server.js';

const fast = { retries: 5, backoffMs: 5, maxBackoffMs: 20 };

function fixture(): { dir: string; big: Buffer } {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'sub dir'));
  const big = randomBytes(3 * 1024 * 1024 + 17);
  writeFileSync(path.join(dir, 'sub dir', 'big.bin'), big);
  writeFileSync(path.join(dir, 'doc.json'), JSON.stringify({ a: [1, 2, 3] }));
  return { dir, big };
}

t.test('a body cut three times is resumed by Range and arrives whole', async (t) => {
  const { dir, big } = fixture();
  // Each of the first three requests sends 700 KiB more, then the connection is cut.
  const srv = await serveDirectory(dir, { drop: (rel, n) => (rel.endsWith('big.bin') && n <= 3 ? 700 * 1024 : undefined) });
  t.teardown(() => srv.close());
  const retries: number[] = [];
  const client = new HttpClient({ retry: fast, onRetry: (r) => retries.push(r.resumeFrom) });
  t.teardown(() => client.close());
  const out = path.join(dir, 'out.bin');
  const n = await client.download(urlJoin(srv.url, 'sub dir/big.bin'), out, { expectedSize: big.length });
  t.equal(n, big.length, 'size');
  t.ok(readFileSync(out).equals(big), 'bytes equal');
  t.equal(srv.stats.drops, 3, 'the server cut three connections');
  t.equal(srv.stats.ranged, 3, 'three Range requests');
  t.equal(client.stats.resumes, 3, 'the client resumed three times');
  t.same(retries, [700 * 1024, 1400 * 1024, 2100 * 1024], 'each resume starts where the last ended');
});

t.test('a server that ignores Range: the known prefix is skipped', async (t) => {
  const { dir, big } = fixture();
  const srv = await serveDirectory(dir, { noRange: true, drop: (rel, n) => (n === 1 ? 1_000_000 : undefined) });
  t.teardown(() => srv.close());
  const client = new HttpClient({ retry: fast });
  t.teardown(() => client.close());
  const buf = await client.getBuffer(urlJoin(srv.url, 'sub dir/big.bin'));
  t.ok(buf.equals(big));
  t.equal(client.stats.resumes, 1);
});

t.test('retries are bounded', async (t) => {
  const { dir } = fixture();
  const srv = await serveDirectory(dir, { drop: () => 1000 });
  t.teardown(() => srv.close());
  const client = new HttpClient({ retry: { retries: 2, backoffMs: 1, maxBackoffMs: 2 } });
  t.teardown(() => client.close());
  await t.rejects(client.getBuffer(urlJoin(srv.url, 'sub dir/big.bin')), { code: 'E_NETWORK', message: /broke 3 times/ });
  t.equal(srv.stats.requests.get('sub dir/big.bin'), 3, 'first attempt and two retries');
});

t.test('status codes, headers, JSON', async (t) => {
  const { dir } = fixture();
  const srv = await serveDirectory(dir, { require: ['Authorization', 'Bearer s3cret'] });
  t.teardown(() => srv.close());
  const anon = new HttpClient({ retry: fast });
  t.teardown(() => anon.close());
  const err = await anon.getJson(urlJoin(srv.url, 'doc.json')).catch((e: unknown) => e);
  t.ok(err instanceof PackStreamError && err.code === 'E_AUTH', 'E_AUTH without the header');
  const auth = new HttpClient({ retry: fast, headers: parseHeaders(['Authorization: Bearer s3cret']) });
  t.teardown(() => auth.close());
  t.same(await auth.getJson(urlJoin(srv.url, 'doc.json')), { a: [1, 2, 3] });
  const missing = await auth.getText(urlJoin(srv.url, 'nope.txt')).catch((e: unknown) => e as PackStreamError);
  t.equal((missing as PackStreamError).code, 'E_HTTP');
  t.notMatch((missing as Error).message, /s3cret/, 'the header is not in the message');
  t.equal(srv.stats.requests.get('nope.txt'), 1, 'a 404 is not retried');
  t.equal(safeUrl('https://u:pw@h.example/a?sig=x'), 'https://h.example/a?%E2%80%A6', 'credentials and query hidden');
  t.throws(() => parseHeaders(['no colon here']), { code: 'E_USAGE' });
});
