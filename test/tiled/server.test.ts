/**
 * The Tiled test infrastructure itself: a real server (scripts/tiled-env.sh),
 * loaded by bluesky's RunEngine through TiledWriter (scripts/tiled_load.py),
 * answers the routes the Tiled source reads.
 */
import t from 'tap';
import { loadRuns, startTiled, tiledJson, tiledPythonOrSkip } from '../helpers/tiled.js';

const python = tiledPythonOrSkip();

t.test('a loaded Tiled server, with and without the json-seq exporter', { skip: python ? false : 'no Python 3.11 to build the Tiled virtualenv with' }, async (t) => {
  for (const exporter of [true, false]) {
    const server = await startTiled(python as string, { exporter });
    t.teardown(() => server.stop());
    const runs = loadRuns(server, { points: 3 });
    t.same(runs.map((r) => r.key), ['count_scalar', 'scan_baseline', 'count_npy', 'scan_hdf5', 'count_array']);
    const search = await tiledJson(server, '/api/v1/search/?page[limit]=10');
    t.equal((search.meta as { count: number }).count, 5, 'five runs listed');
    const arr = await tiledJson(server, `/api/v1/search/${runs[4]!.uid}/primary`);
    t.same((arr.data as { id: string }[]).map((d) => d.id).sort(), ['internal', 'spectrum'], 'a long array gets a node of its own');
    const root = (await (await fetch(`${server.url}/api/v1/`)).json()) as { formats: Record<string, string[]> };
    t.equal(root.formats.BlueskyRun?.includes('application/json-seq') ?? false, exporter, 'json-seq offered only with the exporter');
    const base = await tiledJson(server, `/api/v1/search/${runs[1]!.uid}`);
    t.same((base.data as { id: string }[]).map((d) => d.id).sort(), ['baseline', 'primary'], 'two streams');
    const img = await tiledJson(server, `/api/v1/metadata/${runs[3]!.uid}/primary/h5det_image?include_data_sources=true`);
    const ds = ((img.data as { attributes: { data_sources: { mimetype: string; assets: unknown[] }[] } }).attributes.data_sources)[0]!;
    t.equal(ds.mimetype, 'application/x-hdf5');
    t.equal(ds.assets.length, 1, 'one HDF5 file registered');
    const seq = await fetch(`${server.url}/api/v1/container/full/${runs[0]!.uid}?format=application/json-seq`, { headers: { Authorization: `Apikey ${server.apiKey}` } });
    t.equal(seq.status, exporter ? 200 : 406);
    await seq.arrayBuffer();
    const wrong = await fetch(`${server.url}/api/v1/search/`, { headers: { Authorization: 'Apikey wrong' } });
    t.equal(wrong.status, 401, 'a wrong key is refused');
    await wrong.arrayBuffer();
    await server.stop();
  }
});
