/**
 * Rows of an Arrow IPC table (Tiled's `internal` stream tables) as value-model
 * maps, one record batch at a time. Types are kept as Python reads them from
 * pandas: float64 → float (`PyFloat` when whole), int64 → int (a `bigint` past
 * 2^53), bool, str, lists (the ≤ 16-element arrays TiledWriter keeps in the
 * table) → lists.
 */
import { DataType, RecordBatchReader, type Field } from 'apache-arrow';
import { pyFloat, type Value } from '../codec/values.js';
import { PackStreamError } from '../errors.js';

function convert(v: unknown, type: DataType, column: string): Value {
  if (v === null || v === undefined) return null;
  if (DataType.isInt(type)) {
    if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    return Number(v);
  }
  if (DataType.isFloat(type)) return pyFloat(Number(v));
  if (DataType.isBool(type)) return Boolean(v);
  if (DataType.isUtf8(type) || DataType.isLargeUtf8(type)) return String(v);
  if (DataType.isList(type) || DataType.isFixedSizeList(type)) {
    const child = (type.children[0] as Field).type;
    const out: Value[] = [];
    for (const x of v as Iterable<unknown>) out.push(convert(x, child, column));
    return out;
  }
  if (DataType.isNull(type)) return null;
  throw new PackStreamError('E_UNSUPPORTED', `table column ${column} has Arrow type ${String(type)}, which pack-stream does not read yet`, { subject: column });
}

export function* readArrowRows(bytes: Uint8Array): Generator<Map<string, Value>> {
  let reader;
  try {
    reader = RecordBatchReader.from(bytes);
  } catch (e) {
    throw new PackStreamError('E_CORRUPT', `not an Arrow IPC table: ${(e as Error).message}`, { cause: e });
  }
  for (const batch of reader) {
    const fields = batch.schema.fields;
    const cols = fields.map((f, j) => ({ name: f.name, type: f.type, vec: batch.getChildAt(j)! }));
    for (let i = 0; i < batch.numRows; i++) {
      const row = new Map<string, Value>();
      for (const c of cols) row.set(c.name, convert(c.vec.get(i), c.type, c.name));
      yield row;
    }
  }
}
