import t from 'tap';
import { PyFloat, type Doc } from '../src/codec/values.js';
import { combineQueries, matchQuery, normalizeHumanFriendlyTime, parseQuery, timeRange, validateQuery } from '../src/transforms/query.js';

t.test('Python dict literals and JSON parse to the same query', async (t) => {
  t.same(parseQuery(`{'plan_name': 'scan', 'num_points': {'$gt': 3}}`), { plan_name: 'scan', num_points: { $gt: 3 } });
  t.same(parseQuery('{"plan_name": "scan"}'), { plan_name: 'scan' });
  t.same(parseQuery(`{'a': True, 'b': None, 'c': (1, 2,), 'd': -1.5e3, 'e': 'it\\'s'}`), { a: true, b: null, c: [1, 2], d: new PyFloat(-1500), e: "it's" });
  t.same(parseQuery(`dict(a=1)`), { a: 1 });
  for (const bad of ['', '[1]', `{'a': __import__('os')}`, `{'a': open('x')}`, '{a: 1}', `{'a': 1`, `{'a': 1} extra`]) {
    t.throws(() => parseQuery(bad), { code: 'E_BAD_QUERY' }, `refuses ${bad}`);
  }
});

t.test('TimeRange follows databroker.queries', async (t) => {
  t.same(timeRange({ since: '2014', timezone: 'US/Eastern' }), { time: { $gte: new PyFloat(1388552400) } });
  t.same(parseQuery(`TimeRange(since='2020-02-01 09:00', until='2020-02-02', timezone='UTC')`), { time: { $gte: new PyFloat(1580547600), $lt: new PyFloat(1580601600) } });
  t.same(timeRange({}), {});
  t.same(timeRange({ since: 1000 }), { time: { $gte: 1000 } }, 'numbers pass through as epoch seconds');
  t.equal(normalizeHumanFriendlyTime('2020-6-5 7', 'UTC'), Date.UTC(2020, 5, 5, 7) / 1000);
  t.throws(() => timeRange({ since: '2020-03-08 02:30', timezone: 'US/Eastern' }), { code: 'E_BAD_QUERY', message: /does not exist/ });
  t.throws(() => timeRange({ since: '2020-11-01 01:30', timezone: 'US/Eastern' }), { code: 'E_BAD_QUERY', message: /ambiguous/ });
  t.throws(() => timeRange({ since: '2020-02-01T09:00' }), { message: /failed to parse time/ });
  t.throws(() => timeRange({ since: '2021', until: '2020', timezone: 'UTC' }), { code: 'E_BAD_QUERY' });
  t.throws(() => timeRange({ since: '2021', timezone: 'Mars/Base' }), { message: /unknown timezone/ });
});

const start: Doc = {
  uid: 'abc', time: 1580565900.5, scan_id: 5, plan_name: 'scan', detectors: ['det', 'img'],
  sample: { name: 'Si', comp: { x: 1 } }, num_points: new PyFloat(10), operator: 'Müller', flag: true,
};

t.test('mongoquery semantics on start documents', async (t) => {
  const yes = (q: Doc) => t.ok(matchQuery(q, start), JSON.stringify(q));
  const no = (q: Doc) => t.notOk(matchQuery(q, start), JSON.stringify(q));
  yes({});
  yes(combineQueries([]));
  yes({ plan_name: 'scan' });
  no({ plan_name: 'count' });
  yes({ num_points: 10 });
  yes({ scan_id: { $gte: 5, $lt: 6 } });
  no({ scan_id: { $gt: 5 } });
  yes({ detectors: 'img' });
  yes({ detectors: { $all: ['det', 'img'] } });
  yes({ detectors: { $size: 2 } });
  yes({ 'sample.name': 'Si' });
  yes({ 'sample.comp.x': { $in: [1, 2] } });
  yes({ 'detectors.1': 'img' });
  yes({ plan_name: { $in: ['scan', 'count'] } });
  no({ plan_name: { $nin: ['scan'] } });
  yes({ plan_name: { $ne: 'count' } });
  yes({ missing: { $exists: false } });
  no({ missing: { $exists: true } });
  yes({ 'sample.name': { $exists: true } });
  yes({ $or: [{ scan_id: 1 }, { scan_id: 5 }] });
  no({ $nor: [{ scan_id: 5 }] });
  yes({ scan_id: { $not: { $gt: 10 } } });
  yes({ operator: { $regex: '^M.l' } });
  yes({ operator: { $regex: '/^m/i' } });
  yes({ scan_id: { $mod: [2, 1] } });
  yes({ scan_id: { $type: 'int' } });
  yes({ num_points: { $type: 'double' } });
  no({ scan_id: { $gt: 'a' } });
  yes({ $and: [{ plan_name: 'scan' }, { flag: true }] });
  yes({ time: { $gte: 1580565900, $lt: 1580565901 } });
});

t.test('bad and unsupported operators are refused up front', async (t) => {
  t.throws(() => validateQuery({ plan_name: { $foo: 1 } }), { code: 'E_BAD_QUERY' });
  t.throws(() => validateQuery(parseQuery(`TextQuery('scan')`)), { code: 'E_UNSUPPORTED' });
  t.throws(() => validateQuery({ a: { $regex: '(' } }), { code: 'E_BAD_QUERY' });
  t.doesNotThrow(() => validateQuery({ $text: { $search: 'x' } }, false));
  t.throws(() => matchQuery({ a: { $in: 3 } }, start), { code: 'E_BAD_QUERY' });
});

t.test('nesting is bounded by a typed limit, not the stack', async (t) => {
  const deep = (n: number, open: string, close: string, inner = '1') => open.repeat(n) + inner + close.repeat(n);
  t.throws(() => parseQuery(`{'a': ${deep(50_000, '[', ']')}}`), { code: 'E_LIMIT', message: /nests deeper than 1000 levels/ });
  t.throws(() => parseQuery(deep(50_000, '{"a":', '}')), { code: 'E_LIMIT' });
  t.throws(() => parseQuery(`{'a': ${deep(50_000, 'dict(a=', ')')}}`), { code: 'E_LIMIT' });
  t.throws(() => parseQuery(`{'a': ${deep(50_000, '(', ',)')}}`), { code: 'E_LIMIT' });
  // 1000 levels parse, and adjacent string literals (a loop, not recursion) of any number.
  t.ok(parseQuery(`{'a': ${deep(999, '[', ']')}}`));
  t.same(parseQuery(`{'a': ${"'x' ".repeat(100_000)}}`), { a: 'x'.repeat(100_000) });
  // Built in code rather than parsed: validate and match refuse it too.
  let q: Record<string, unknown> = { a: 1 };
  for (let i = 0; i < 5000; i++) q = { $and: [q] };
  t.throws(() => validateQuery(q as never), { code: 'E_LIMIT' });
  t.throws(() => matchQuery(q as never, { a: 1 }), { code: 'E_LIMIT' });
  // A document too deep to search.
  let doc: unknown = [{ x: 1 }];
  for (let i = 0; i < 3000; i++) doc = [doc];
  t.throws(() => matchQuery({ 'deep.x': 1 }, { deep: doc } as never), { code: 'E_LIMIT', message: /document searched by the query nests deeper/ });
  t.equal(matchQuery({ 'deep.0.0': 1 }, { deep: doc } as never), false, 'indexes do not recurse');
  // Messages quote values briefly and survive bigints.
  t.throws(() => matchQuery({ a: { $in: 12345678901234567890n } } as never, { a: 1 }), { code: 'E_BAD_QUERY', message: /\$in needs a list, got 12345678901234567890$/ });
  t.throws(() => parseQuery(`{'a': ${'1'.repeat(10_000)}x}`), { code: 'E_BAD_QUERY', message: /^cannot parse query "\{'a': 1{70,}…": expected '}' at character 10006$/ });
});
