/**
 * mongo-java-server (scripts/mongo-java-server.sh) for the Python interop
 * tests: a MongoDB-wire server that, unlike FerretDB v1, stores arrays inside
 * arrays, which every bluesky start document has (`hints.dimensions`), so
 * Python's suitcase-mongo can write ordinary runs into it. In memory, on a
 * free loopback port; killed when the test process exits.
 */
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { REPO } from './paths.js';

export interface JavaMongo {
  /** `mongodb://127.0.0.1:PORT/` */
  uri: string;
  stop(): void;
}

/** Why the server cannot run here (no java/javac/mvn), or false. */
export function javaMongoSkipReason(): string | false {
  for (const tool of ['java', 'javac', 'mvn']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `no ${tool} on PATH (mongo-java-server needs Java 17 and Maven)`;
    }
  }
  return false;
}

export async function startJavaMongo(): Promise<JavaMongo> {
  const out = execFileSync('bash', [path.join(REPO, 'scripts', 'mongo-java-server.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const [java, ...args] = out.trim().split('\n').pop()!.split(' ');
  const child = spawn(java!, [...args, '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const kill = () => child.kill('SIGKILL');
  process.on('exit', kill);
  let log = '';
  child.stderr.on('data', (d) => (log = (log + d).slice(-4000)));
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`mongo-java-server did not start in 60 s: ${log}`)), 60_000);
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /listening 127\.0\.0\.1:(\d+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`mongo-java-server exited (${code}): ${log}`));
    });
  });
  child.removeAllListeners('exit');
  return {
    uri: `mongodb://127.0.0.1:${port}/`,
    stop() {
      kill();
      process.off('exit', kill);
    },
  };
}
