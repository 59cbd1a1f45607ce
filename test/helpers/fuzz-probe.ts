/**
 * Does the reader survive a record header claiming more than 2 GiB? Run in its
 * own process by the fuzz test: on the main of issue 10 it aborts natively
 * (point 2), and then the fuzzer counts such inputs as known-open instead of
 * losing a worker to each. Exits 0 when the reader ends with a typed error.
 */
import { writeFileSync } from 'node:fs';
import { PackStreamError } from '../../src/errors.js';
import { readMsgpackRecords } from '../../src/sources/msgpack-records.js';

const file = process.argv[2]!;
// [ 'start', <str32 claiming 3 GiB> ]
writeFileSync(file, Buffer.from([0x92, 0xa5, ...Buffer.from('start'), 0xdb, 0xc0, 0x00, 0x00, 0x00, 0x61]));
try {
  for await (const _ of readMsgpackRecords(file)) void _;
  process.exitCode = 3;
} catch (e) {
  process.exitCode = e instanceof PackStreamError ? 0 : 4;
}
