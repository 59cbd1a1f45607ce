/**
 * catalog.yml: the intake catalog that makes a pack readable by databroker,
 * structured as databroker-pack writes it (formats.md §7.5) and emitted in
 * PyYAML's style (sorted keys, block style, YAML 1.1 quoting so safe_load
 * reads strings back as strings).
 */
import path from 'node:path';
import { stringify } from 'yaml';
import { writeFileAtomic } from './pack-directory.js';
import { VERSION } from '../version.js';

export interface CatalogFileOptions {
  /** Extra metadata merged into `metadata`. */
  metadata?: Record<string, unknown>;
  /** The source name; databroker-pack always uses packed_catalog. */
  sourceName?: string;
}

/** PyYAML-like dump: sorted keys, sequences not indented under their key. */
export function dumpYaml(data: unknown): string {
  return stringify(data, {
    version: '1.1',
    sortMapEntries: true,
    indentSeq: false,
    lineWidth: 0,
    minContentWidth: 0,
    singleQuote: true,
    nullStr: 'null',
  });
}

export function catalogDocument(dir: string, format: 'msgpack' | 'jsonl', rootMap: Record<string, string>, opts: CatalogFileOptions = {}): Record<string, unknown> {
  const rel = `./documents/*.${format}`;
  return {
    sources: {
      [opts.sourceName ?? 'packed_catalog']: {
        args: {
          paths: [path.join(path.resolve(dir), 'documents', `*.${format}`)],
          root_map: rootMap,
        },
        driver: format === 'msgpack' ? 'bluesky-msgpack-catalog' : 'bluesky-jsonl-catalog',
        metadata: {
          generated_by: { library: 'pack-stream', version: VERSION },
          relative_paths: [rel],
          ...(opts.metadata ?? {}),
        },
      },
    },
  };
}

/** The text of catalog.yml for a pack at `dir` (for any sink). */
export function catalogFileText(dir: string, format: 'msgpack' | 'jsonl', rootMap: Record<string, string>, opts: CatalogFileOptions = {}): string {
  return dumpYaml(catalogDocument(dir, format, rootMap, opts));
}

async function writeCatalogFile(dir: string, format: 'msgpack' | 'jsonl', rootMap: Record<string, string>, opts: CatalogFileOptions): Promise<string> {
  const file = path.join(path.resolve(dir), 'catalog.yml');
  await writeFileAtomic(file, catalogFileText(dir, format, rootMap, opts));
  return file;
}

export function writeMsgpackCatalogFile(dir: string, rootMap: Record<string, string>, opts: CatalogFileOptions = {}): Promise<string> {
  return writeCatalogFile(dir, 'msgpack', rootMap, opts);
}

export function writeJsonlCatalogFile(dir: string, rootMap: Record<string, string>, opts: CatalogFileOptions = {}): Promise<string> {
  return writeCatalogFile(dir, 'jsonl', rootMap, opts);
}
