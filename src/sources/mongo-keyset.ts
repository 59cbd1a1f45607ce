/**
 * Read a collection in key order without trusting one long-lived cursor.
 *
 * An export of millions of events can outlive the server's idle-cursor timeout
 * (10 min when the consumer stalls), its session timeout, a failover or a
 * restart. So documents are read by key, `(time, _id)` or `_id`: a cursor is
 * only ever a way to fetch the next documents after the last key handed out,
 * and it is re-issued from that key when it is older than `maxCursorAgeMs`
 * (checked between batches) or when the server, the connection or the cursor
 * goes away. Memory is one driver batch plus one group of documents that share
 * a `time`, whatever the collection's size.
 *
 * Ordering by time asks the server to sort on `time` alone (what databroker
 * asks, and what the `descriptor_-1_time_1` / `time_-1…` indexes serve without
 * a blocking sort); documents with equal times are then put in `_id` order
 * here, so the order is the same on every server and after every resume.
 */
import type { Collection, Document } from 'mongodb';
import { Double } from 'mongodb';
import { decodeStored, type StoredDoc } from '../codec/bson.js';
import { toNumber } from '../codec/values.js';
import { PackStreamError } from '../errors.js';
import { isResumable, mongoError, sleep } from './mongo-connection.js';

export interface KeysetOptions {
  /** `time`: by time, then _id; `id`: by _id. */
  order: 'time' | 'id';
  /** 1 ascending (default), -1 descending. */
  direction?: 1 | -1;
  /** Documents per driver batch (default 1000; the server caps a batch at 16 MiB). */
  batchSize?: number;
  /** Re-issue the query from the last key once a cursor is this old (default 5 min). */
  maxCursorAgeMs?: number;
  /** Keep retrying an unreachable server for this long without progress (default 2 min). */
  retryMs?: number;
  signal?: AbortSignal;
  /** For messages, e.g. "event of descriptor 1234". */
  where: string;
  /** Called each time a query is (re)issued, with the number of documents handed out so far. */
  onQuery?: (info: { resumed: boolean; handedOut: number; reason?: string }) => void;
}

export const DEFAULT_BATCH_SIZE = 1000;
export const DEFAULT_MAX_CURSOR_AGE_MS = 5 * 60_000;
export const DEFAULT_RETRY_MS = 120_000;

function timeOf(d: StoredDoc, where: string): number {
  const t = toNumber(d.doc.time);
  if (t === undefined || Number.isNaN(t)) {
    const id = typeof d.doc.uid === 'string' ? d.doc.uid : d.idKey;
    throw new PackStreamError('E_BAD_RUN', `${where}: document ${id} has no numeric 'time', so it cannot be put in order`, { subject: id });
  }
  return t;
}

/** Documents of `coll` matching `filter`, in key order, resuming by key as needed. */
export async function* readByKey(coll: Collection, filter: Document, opts: KeysetOptions): AsyncGenerator<StoredDoc> {
  const dir = opts.direction ?? 1;
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  const maxAge = opts.maxCursorAgeMs ?? DEFAULT_MAX_CURSOR_AGE_MS;
  const retryMs = opts.retryMs ?? DEFAULT_RETRY_MS;
  const byTime = opts.order === 'time';
  const sort: Document = byTime ? { time: dir } : { _id: dir };
  const cmp = dir > 0 ? '$gt' : '$lt';
  const idOrder = (a: StoredDoc, b: StoredDoc) => (a.idKey < b.idKey ? -dir : a.idKey > b.idKey ? dir : 0);

  let afterTime: number | undefined;
  let afterId: unknown;
  let handedOut = 0;
  let lastProgress = Date.now();
  let attempt = 0;
  let reason: string | undefined;
  for (let first = true; ; first = false) {
    opts.signal?.throwIfAborted();
    let query = filter;
    if (byTime && afterTime !== undefined) query = { $and: [filter, { time: { [cmp]: new Double(afterTime) } }] };
    if (!byTime && afterId !== undefined) query = { $and: [filter, { _id: { [cmp]: afterId } }] };
    opts.onQuery?.({ resumed: !first, handedOut, ...(reason ? { reason } : {}) });
    const cursor = coll.find(query, { sort, batchSize, raw: true });
    const opened = Date.now();
    let sinceOpen = 0;
    let group: StoredDoc[] = [];
    let groupTime: number | undefined;
    let done = false;
    try {
      for (;;) {
        const raw = (await cursor.next()) as Uint8Array | null;
        if (raw === null) {
          done = true;
          break;
        }
        const d = decodeStored(raw, opts.where);
        if (byTime) {
          const t = timeOf(d, opts.where);
          if (groupTime !== undefined && t !== groupTime) {
            if (group.length > 1) group.sort(idOrder);
            for (const x of group) yield x;
            handedOut += group.length;
            sinceOpen += group.length;
            afterTime = groupTime;
            group = [];
            lastProgress = Date.now();
            attempt = 0;
          }
          groupTime = t;
          group.push(d);
        } else {
          yield d;
          afterId = d.id;
          handedOut++;
          sinceOpen++;
          lastProgress = Date.now();
          attempt = 0;
        }
        if (sinceOpen > 0 && cursor.bufferedCount() === 0 && Date.now() - opened > maxAge) {
          reason = 'cursor age';
          break;
        }
      }
      if (done) {
        if (group.length > 1) group.sort(idOrder);
        for (const x of group) yield x;
        return;
      }
    } catch (e) {
      if (!isResumable(e) || Date.now() - lastProgress > retryMs) throw mongoError(e, opts.where);
      reason = (e as Error).message;
      await sleep(Math.min(100 * 2 ** attempt, 5000), opts.signal);
      attempt++;
    } finally {
      await cursor.close().catch(() => {});
    }
  }
}
