/**
 * `$regex` on the linear-time engine: Python `re.search` answers (checked
 * against CPython 3.11 when the table was written), patterns RE2 cannot run
 * refused with E_BAD_QUERY, and the catastrophic case of issue 10 in linear time.
 */
import t from 'tap';
import { compilePythonRegex } from '../src/transforms/regex.js';
import { matchQuery, validateQuery } from '../src/transforms/query.js';

/** [pattern, flag letters, text, what Python's bool(re.search(...)) gives] */
const PYTHON: [string, string, string, boolean][] = [
  ["^M.l", "", "Malcolm", true],
  ["^m", "i", "Max", true],
  ["^(a+)+$", "", "aaaaaaaaaaaaaaaab", false],
  ["^(a+)+$", "", "aaaa", true],
  ["a$", "", "xa\n", true],
  ["a$", "", "xa\n\n", false],
  ["a\\Z", "", "xa\n", false],
  ["a\\Z", "", "xa", true],
  ["^b$", "m", "a\nb\nc", true],
  ["^b$", "", "a\nb\nc", false],
  ["a.c", "", "a\nc", false],
  ["a.c", "s", "a\nc", true],
  ["\\x41\\u0042\\U00000043", "", "ABC", true],
  ["\\101", "", "A", true],
  ["\\0", "", "\u0000", true],
  ["[\\101-\\103]+$", "", "xBCA", true],
  ["[]a]", "", "]", true],
  ["[^]a]", "", "]", false],
  ["[[:alpha:]]", "", "a", false],
  ["[[:alpha:]]", "", ":]", true],
  ["a{,2}b", "", "aab", true],
  ["a{,2}b", "", "b", true],
  ["a{2}", "", "a", false],
  ["a{x}", "", "a{x}", true],
  ["a{}", "", "a{}", true],
  ["a{,}b", "", "aaab", true],
  ["a b # comment\n c", "x", "abc", true],
  ["(?x) a b", "", "ab", true],
  ["(?i)ABC", "", "xabc", true],
  ["(?i:A)b", "", "aB", false],
  ["(?i:A)b", "", "ab", true],
  ["(?#hello)ab", "", "ab", true],
  ["(?P<n>a)b", "", "ab", true],
  ["\\.", "", "a.b", true],
  ["\\\u00e9", "", "caf\u00e9", true],
  ["[\\b]", "", "\b", true],
  ["\\bfoo\\b", "", "a foo b", true],
  ["\u00e9", "i", "\u00c9", true],
  ["k", "i", "\u212a", true],
  ["\\d+", "", "x12", true],
  ["^\\s$", "", "\u000b", true],
  ["^$", "", "\n", true],
  ["x$", "", "x\n", true],
  ["(?s).$", "", "\n", true],
  ["^\\S$", "", "\u000b", false],
  ["^[\\s]$", "", "\u3000", true],
  ["^\\s$", "", "\u00a0", true],
  ["^[^\\s]$", "", "x", true],
  ["^[\\sa]+$", "", "a \u000b", true],
  ["(?a)\\s", "", "\u00a0", false],
];

t.test('answers as Python re.search', async (t) => {
  for (const [p, f, s, want] of PYTHON) t.equal(compilePythonRegex(p, f).test(s), want, `${JSON.stringify(p)} /${f} on ${JSON.stringify(s)}`);
});

t.test('what needs backtracking is refused, naming the construct', async (t) => {
  const refused: [string, RegExp][] = [
    ['(a)\\1', /backreference \(\\1\)/],
    ['(?P<x>a)(?P=x)', /backreference/],
    ['a(?=b)', /lookahead/],
    ['a(?!b)', /lookahead/],
    ['(?<=a)b', /lookbehind/],
    ['(?<!a)b', /lookbehind/],
    ['a*+', /possessive/],
    ['a{2}+', /possessive/],
    ['(?>a)', /atomic/],
    ['(?(1)a|b)', /conditional/],
    ['a{1001}', /repeat count.*limited to 1000/],
    ['(?x:a b)', /verbose group/],
    ['\\N{DASH}', /named character/],
    ['\\p{L}', /bad escape \\p at position 0/],
    ['[a', /unterminated character set at position 0/],
    ['a\\', /ends with a backslash/],
    ['\\777', /beyond \\377/],
    ['\\u12', /incomplete escape/],
    ['(?L)a', /L flag/],
    ['((a)', /missing closing \)/],
  ];
  for (const [p, why] of refused) {
    t.throws(() => compilePythonRegex(p), { code: 'E_BAD_QUERY', message: why }, p);
    t.throws(() => validateQuery({ note: { $regex: p } }), { code: 'E_BAD_QUERY' }, `${p} is refused before any run is read`);
  }
  // MongoDB judges its own patterns (PCRE has lookahead).
  t.doesNotThrow(() => validateQuery({ note: { $regex: 'a(?=b)' } }, false));
});

t.test('catastrophic backtracking is linear', async (t) => {
  const t0 = performance.now();
  t.equal(matchQuery({ note: { $regex: '^(a+)+$' } }, { note: `${'a'.repeat(100_000)}!` }), false);
  t.equal(matchQuery({ note: { $regex: '(x+x+)+y' } }, { note: 'x'.repeat(100_000) }), false);
  t.equal(matchQuery({ note: { $regex: '^(a|aa)+$' } }, { note: 'a'.repeat(100_000) }), true);
  // Generous: about 0.1 s here; the backtracking engine needed longer than the universe.
  t.ok(performance.now() - t0 < 10_000, 'in well under 10 s');
});
