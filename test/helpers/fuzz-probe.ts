/**
 * Probes, each run in its own process by the fuzz test, for two open points of
 * issue 10 that would otherwise cost a worker per input: `record` (a msgpack
 * header claiming more than 2 GiB aborts the reader natively, point 2) and
 * `listing` (a resource asking for 2^31 frames per point never finishes
 * listing, point 4). Exits 0 when the code ends with a typed error (or a
 * result), so the fuzzer runs such inputs for real once the fix has landed.
 */
import { writeFileSync } from 'node:fs';
import { PackStreamError } from '../../src/errors.js';
import { readMsgpackRecords } from '../../src/sources/msgpack-records.js';
import { HandlerRegistry } from '../../src/transforms/handlers.js';

const [mode, file] = process.argv.slice(2);
try {
  if (mode === 'record') {
    // [ 'start', <str32 claiming 3 GiB> ]
    writeFileSync(file!, Buffer.from([0x92, 0xa5, ...Buffer.from('start'), 0xdb, 0xc0, 0x00, 0x00, 0x00, 0x61]));
    for await (const _ of readMsgpackRecords(file!)) void _;
  } else {
    const resource = { spec: 'AD_TIFF', root: '/nonexistent', resource_path: 'x', resource_kwargs: { template: '%s%s_%6.6d.tiff', filename: 'img', frame_per_point: 2 ** 31 }, uid: 'r', path_semantics: 'posix' };
    await new HandlerRegistry().lister(resource, '/nonexistent/x').filesForDatum({ point_number: 0 });
  }
  process.exitCode = 0;
} catch (e) {
  process.exitCode = e instanceof PackStreamError ? 0 : 4;
}
