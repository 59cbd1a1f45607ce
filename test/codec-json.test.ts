import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { jsonlRecord, parsePyJson, pyFloatRepr, stringifyPyJson } from '../src/codec/pyjson.js';
import { PyFloat, deepEqual, type Value } from '../src/codec/values.js';
import { SKIP_VECTORS, VECTORS } from './helpers/paths.js';

t.test('floats are written as Python repr writes them', async (t) => {
  const cases: [number, string][] = [
    [1, '1.0'], [0, '0.0'], [-0, '-0.0'], [0.1, '0.1'], [1e-5, '1e-05'], [0.0001, '0.0001'], [1e16, '1e+16'],
    [1e15, '1000000000000000.0'], [123456789.125, '123456789.125'], [1.5e300, '1.5e+300'], [-2.5e-7, '-2.5e-07'],
    [1580565600, '1580565600.0'], [1580565900.013284, '1580565900.013284'], [5e-324, '5e-324'], [1.7976931348623157e308, '1.7976931348623157e+308'],
    [NaN, 'NaN'], [Infinity, 'Infinity'], [-Infinity, '-Infinity'], [9999999999999998, '9999999999999998.0'], [0.00012, '0.00012'],
  ];
  for (const [f, s] of cases) t.equal(pyFloatRepr(f), s, `${f}`);
  t.equal(stringifyPyJson(new PyFloat(2)), '2.0');
  t.equal(stringifyPyJson(2), '2');
  t.equal(stringifyPyJson(2n ** 70n), '1180591620717411303424');
});

t.test('json.dumps layout and ensure_ascii escaping', async (t) => {
  t.equal(stringifyPyJson({ a: [1, 'b'], c: { d: null, e: true } }), '{"a": [1, "b"], "c": {"d": null, "e": true}}');
  t.equal(stringifyPyJson('Müller 温度 😀 "q" \\ \n\t\x01\x7f/'), '"M\\u00fcller \\u6e29\\u5ea6 \\ud83d\\ude00 \\"q\\" \\\\ \\n\\t\\u0001\\u007f/"');
  t.equal(jsonlRecord('start', { uid: 'x' }), '["start", {"uid": "x"}]\n');
  t.throws(() => stringifyPyJson(Buffer.from('x') as unknown as Value), /not JSON serializable/);
});

t.test("Python's JSON dialect is read, types kept", async (t) => {
  const v = parsePyJson('{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1.0, "e": 1, "f": 123456789012345678901234567890, "g": 1e3, "h": -0.0, "0": "z"}');
  t.ok(v instanceof Map, 'integer-like key keeps order via Map');
  const m = v as Map<string, Value>;
  t.ok(Number.isNaN(m.get('a') as number));
  t.equal(m.get('b'), Infinity);
  t.equal(m.get('c'), -Infinity);
  t.ok(m.get('d') instanceof PyFloat, '1.0 stays a float');
  t.equal(m.get('e'), 1);
  t.equal(m.get('f'), 123456789012345678901234567890n);
  t.ok(m.get('g') instanceof PyFloat);
  t.same([...m.keys()], ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', '0']);
  t.equal(stringifyPyJson(v), '{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1.0, "e": 1, "f": 123456789012345678901234567890, "g": 1000.0, "h": -0.0, "0": "z"}');
  t.same(parsePyJson('"\\u00fc\\ud83d\\ude00"'), 'ü😀');
  for (const bad of ['{', '[1,]', '{"a" 1}', '01', 'nan', '"\\x"', '[1] 2', '']) t.throws(() => parsePyJson(bad), { name: 'Error' }, `rejects ${JSON.stringify(bad)}`);
});

t.test('random values round-trip through Python JSON', async (t) => {
  const vals: Value[] = [
    { time: new PyFloat(1580565600), seq: 3, data: { det: [new PyFloat(1), 0.25, -1e-9] }, big: 2n ** 63n, s: 'ü\u2028' },
    [[], {}, [null, false, true], 'x'.repeat(1000)],
  ];
  for (const v of vals) {
    const s = stringifyPyJson(v);
    t.ok(deepEqual(parsePyJson(s), v));
    t.equal(stringifyPyJson(parsePyJson(s)), s);
  }
});

t.test('every suitcase-jsonl vector line is reproduced byte for byte', { skip: SKIP_VECTORS }, async (t) => {
  const dir = path.join(VECTORS, 'tutorials_jsonl');
  let n = 0;
  for (const f of readdirSync(dir)) {
    const text = readFileSync(path.join(dir, f), 'utf8');
    for (const line of text.split('\n')) {
      if (!line) continue;
      const [name, doc] = parsePyJson(line) as [string, Value];
      if (jsonlRecord(name, doc) !== `${line}\n`) t.fail(`${f}: ${line.slice(0, 80)}`);
      n++;
    }
  }
  t.ok(n > 100, `${n} lines compared`);
});
