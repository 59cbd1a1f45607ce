import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The Python-written vectors: shared/ beside the repository, or PACK_STREAM_VECTORS. */
export const VECTORS = process.env.PACK_STREAM_VECTORS ?? path.resolve(REPO, '..', 'shared', 'vectors');
export const HAS_VECTORS = existsSync(path.join(VECTORS, 'simple_catalog', 'catalog.yml'));
export const SKIP_VECTORS = HAS_VECTORS ? false : `no vectors at ${VECTORS}`;
export const CLI = path.join(REPO, 'dist', 'cli', 'main.js');
/** The installed commands' launchers (package.json "bin"). */
export const BIN = path.join(REPO, 'bin');
