/**
 * A static file server on 127.0.0.1 for tests of reading over HTTP: serves a
 * directory with Range support, can require a header, and drops connections
 * part-way through chosen files (`drop(file) => bytes to send before
 * cutting`, or undefined to send it whole), counting what it saw.
 */
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface TestServer {
  url: string;
  /** Requests per path, ranged requests, and connections cut. */
  stats: { requests: Map<string, number>; ranged: number; drops: number; unauthorized: number };
  close(): Promise<void>;
}

export interface TestServerOptions {
  /** Bytes to send of `rel` before destroying the socket on this request (1-based count), or undefined for all. */
  drop?: (rel: string, requestNo: number, start: number) => number | undefined;
  /** Header every request must carry, else 401. */
  require?: [string, string];
  /** Ignore Range and always answer 200 with the whole file. */
  noRange?: boolean;
}

export async function serveDirectory(root: string, opts: TestServerOptions = {}): Promise<TestServer> {
  const stats = { requests: new Map<string, number>(), ranged: 0, drops: 0, unauthorized: 0 };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const rel = decodeURIComponent(url.pathname).replace(/^\/+/, '');
    if (opts.require && req.headers[opts.require[0].toLowerCase()] !== opts.require[1]) {
      stats.unauthorized++;
      res.writeHead(401).end();
      return;
    }
    const n = (stats.requests.get(rel) ?? 0) + 1;
    stats.requests.set(rel, n);
    const file = path.join(root, rel);
    if (!file.startsWith(root + path.sep)) return void res.writeHead(403).end();
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) return void res.writeHead(404).end();
      size = st.size;
    } catch {
      return void res.writeHead(404).end();
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && !opts.noRange) {
      stats.ranged++;
      start = Number(range[1]);
      if (start >= size) return void res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
      res.writeHead(206, { 'content-length': String(size - start), 'content-range': `bytes ${start}-${size - 1}/${size}` });
    } else {
      res.writeHead(200, { 'content-length': String(size) });
    }
    const cut = opts.drop?.(rel, n, start);
    if (cut === undefined || start + cut >= size) {
      createReadStream(file, { start }).pipe(res);
      return;
    }
    const s = createReadStream(file, { start, end: start + cut - 1 });
    s.on('data', (c) => res.write(c));
    s.on('end', () => {
      stats.drops++;
      // Let the bytes leave, then cut the connection mid-body.
      setTimeout(() => res.socket?.destroy(), 20);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
