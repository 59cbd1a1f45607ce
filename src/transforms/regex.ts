/**
 * `$regex` for file catalogs on a linear-time engine.
 *
 * mongoquery (what databroker's file catalogs use) runs Python's `re.search`, a
 * backtracking engine: `^(a+)+$` against 35 characters takes minutes, and the
 * pattern may come from a stranger's catalog.yml. Patterns here run on re2js
 * (RE2's automata in plain JavaScript: no native build, no download at install),
 * whose time is linear in the text. Python's syntax is translated to RE2's where
 * both mean the same thing; what RE2 cannot do without backtracking
 * (backreferences, lookaround, atomic groups, possessive repeats, conditionals)
 * is refused with E_BAD_QUERY instead of silently meaning something else.
 */
import { RE2JS } from 're2js';
import { PackStreamError } from '../errors.js';

export interface CompiledRegex {
  /** Python's `bool(re.search(pattern, text, flags))`. */
  test(text: string): boolean;
}

const CACHE_SIZE = 256;
const cache = new Map<string, CompiledRegex>();

/** Longest pattern text quoted in an error message. */
const QUOTE_MAX = 80;

export function quotePattern(p: string): string {
  return JSON.stringify(p.length > QUOTE_MAX ? `${p.slice(0, QUOTE_MAX)}…` : p);
}

/**
 * Compile `pattern` with Python flag letters (`i`, `m`, `s`, `x`, as mongoquery
 * reads them from `/pattern/flags`). Compiled patterns are cached, since a
 * catalog query is matched against every run's start document.
 */
export function compilePythonRegex(pattern: string, flagLetters = ''): CompiledRegex {
  const key = `${flagLetters}/${pattern}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const compiled = compile(pattern, flagLetters);
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(key, compiled);
  return compiled;
}

function compile(pattern: string, flagLetters: string): CompiledRegex {
  const tr = new Translator(pattern, flagLetters.includes('x'));
  const source = tr.translate();
  let flags = 0;
  if (flagLetters.includes('i')) flags |= RE2JS.CASE_INSENSITIVE;
  if (flagLetters.includes('m')) flags |= RE2JS.MULTILINE;
  if (flagLetters.includes('s')) flags |= RE2JS.DOTALL;
  let re: RE2JS;
  try {
    re = RE2JS.compile(source, flags);
  } catch (e) {
    const msg = (e as Error).message.replace(/^error parsing regexp: /, '');
    throw bad(pattern, /repeat count|too large/.test(msg) ? `${msg} (repeats are limited to 1000 and the compiled pattern to RE2's size limit)` : msg);
  }
  // Python's `$` (without MULTILINE) also matches just before a final newline,
  // RE2's only at the very end: for a yes/no search, trying the text without
  // that newline as well gives Python's answer. Not when `\Z` (RE2 `\z`) is
  // used, which must keep meaning the very end.
  const pythonDollar = tr.usesDollar && !tr.usesEndOfText && !flagLetters.includes('m') && !tr.usesMultiline;
  return {
    test(text: string): boolean {
      try {
        return re.test(text) || (pythonDollar && text.endsWith('\n') && re.test(text.slice(0, -1)));
      } catch (e) {
        throw bad(pattern, `failed to execute: ${(e as Error).message}`);
      }
    },
  };
}

function bad(pattern: string, msg: string): PackStreamError {
  return new PackStreamError('E_BAD_QUERY', `$regex ${quotePattern(pattern)}: ${msg}`, { subject: pattern });
}

const OCTAL = /^[0-7]$/;
const HEX = /^[0-9a-fA-F]+$/;
/** Escapes whose meaning is the same in Python and RE2, outside a class. */
const SAME_ESCAPES = new Set(['A', 'b', 'B', 'd', 'D', 's', 'S', 'w', 'W', 'a', 'f', 'n', 'r', 't', 'v']);
/** ... and inside a class (`\b` is a backspace there, handled apart). */
const SAME_CLASS_ESCAPES = new Set(['d', 'D', 's', 'S', 'w', 'W', 'a', 'f', 'n', 'r', 't', 'v']);
const VERBOSE_SPACE = /^[ \t\n\r\f\v]$/;
/** What Python's `\s` matches in a str pattern (str.isspace); RE2's `\s` is `[\t\n\f\r ]`. */
const PY_SPACE = '\\t-\\r \\x{1c}-\\x{1f}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}';

/** Python `re` pattern text → RE2 pattern text, one pass, no recursion. */
class Translator {
  private i = 0;
  private out = '';
  usesDollar = false;
  usesEndOfText = false;
  usesMultiline = false;
  /** Python's ASCII flag: `\s` is then RE2's own (plus \v). */
  private ascii = false;

  constructor(
    private readonly p: string,
    private verbose: boolean,
  ) {}

  private refuse(what: string): never {
    throw bad(this.p, `${what} cannot be matched in linear time and is not supported (pack-stream matches regular expressions with RE2)`);
  }

  private fail(msg: string, at = this.i): never {
    throw bad(this.p, `${msg} at position ${at}`);
  }

  translate(): string {
    const p = this.p;
    while (this.i < p.length) {
      const c = p[this.i]!;
      if (this.verbose && VERBOSE_SPACE.test(c)) {
        this.i++;
      } else if (this.verbose && c === '#') {
        while (this.i < p.length && p[this.i] !== '\n') this.i++;
      } else if (c === '\\') {
        this.escape(false);
      } else if (c === '[') {
        this.charClass();
      } else if (c === '(') {
        this.group();
      } else if (c === '{') {
        this.brace();
      } else if (c === '*' || c === '+' || c === '?') {
        this.out += c;
        this.i++;
        this.afterRepeat();
      } else {
        if (c === '$') this.usesDollar = true;
        this.out += c;
        this.i++;
      }
    }
    return this.out;
  }

  /** After a repeat: a lazy `?` is fine, a possessive `+` is not. */
  private afterRepeat(): void {
    if (this.p[this.i] === '?') {
      this.out += '?';
      this.i++;
    } else if (this.p[this.i] === '+') {
      this.refuse('a possessive repeat (`*+`, `++`, `?+`, `{m,n}+`)');
    }
  }

  private codePoint(n: number): void {
    if (n > 0x10ffff) this.fail('character code beyond U+10FFFF');
    this.out += `\\x{${n.toString(16)}}`;
  }

  /** `\` and what follows, inside or outside a character class. */
  private escape(inClass: boolean): void {
    const p = this.p;
    const start = this.i;
    const c = p[this.i + 1];
    if (c === undefined) this.fail('pattern ends with a backslash');
    this.i += 2;
    if (c >= '0' && c <= '9') {
      // Python: \0, \0o, \0oo and three octal digits are characters; any other
      // number is a group reference (outside a class).
      const three = p.slice(this.i - 1, this.i + 2);
      if (c === '0') {
        let digits = '0';
        while (digits.length < 3 && OCTAL.test(p[this.i] ?? '')) digits += p[this.i++];
        this.codePoint(parseInt(digits, 8));
      } else if (three.length === 3 && [...three].every((d) => OCTAL.test(d))) {
        const n = parseInt(three, 8);
        if (n > 0o377) this.fail(`octal escape \\${three} is beyond \\377`, start);
        this.i += 2;
        this.codePoint(n);
      } else if (inClass) {
        if (!OCTAL.test(c)) this.fail(`bad escape \\${c}`, start);
        let digits = c;
        while (digits.length < 3 && OCTAL.test(p[this.i] ?? '')) digits += p[this.i++];
        this.codePoint(parseInt(digits, 8));
      } else {
        this.refuse(`a backreference (\\${c})`);
      }
      return;
    }
    if (c === 'x' || c === 'u' || c === 'U') {
      const n = c === 'x' ? 2 : c === 'u' ? 4 : 8;
      const hex = p.slice(this.i, this.i + n);
      if (hex.length !== n || !HEX.test(hex)) this.fail(`incomplete escape \\${c}${hex}`, start);
      this.i += n;
      this.codePoint(parseInt(hex, 16));
      return;
    }
    if (c === 'N') this.refuse('a named character escape (\\N{...})');
    if (inClass && c === 'b') {
      this.out += '\\x{8}';
      return;
    }
    if (!inClass && c === 'Z') {
      this.usesEndOfText = true;
      this.out += '\\z';
      return;
    }
    if ((c === 's' || (c === 'S' && !inClass)) && !this.ascii) {
      this.out += inClass ? PY_SPACE : `[${c === 'S' ? '^' : ''}${PY_SPACE}]`;
      return;
    }
    if (/[A-Za-z]/.test(c)) {
      if ((inClass ? SAME_CLASS_ESCAPES : SAME_ESCAPES).has(c)) {
        this.out += c === 's' ? (inClass ? '\\s\\v' : '[\\s\\v]') : c === 'S' && !inClass ? '[^\\s\\v]' : `\\${c}`;
        return;
      }
      this.fail(`bad escape \\${c}`, start);
    }
    // Anything else escaped is itself: RE2 accepts `\` only before ASCII punctuation.
    const cp = p.codePointAt(this.i - 1)!;
    if (cp < 0x80) this.out += `\\${c}`;
    else {
      this.i += cp > 0xffff ? 1 : 0;
      this.codePoint(cp);
    }
  }

  private charClass(): void {
    const p = this.p;
    const start = this.i;
    this.i++;
    this.out += '[';
    if (p[this.i] === '^') {
      this.out += '^';
      this.i++;
    }
    // A `]` right after the opening is a literal in Python.
    if (p[this.i] === ']') {
      this.out += '\\]';
      this.i++;
    }
    for (;;) {
      const c = p[this.i];
      if (c === undefined) this.fail('unterminated character set', start);
      if (c === ']') {
        this.out += ']';
        this.i++;
        return;
      }
      if (c === '\\') this.escape(true);
      else {
        // `[` is a literal in a Python class; RE2 would read `[:alpha:]`.
        this.out += c === '[' ? '\\[' : c;
        this.i++;
      }
    }
  }

  private group(): void {
    const p = this.p;
    if (p[this.i + 1] !== '?') {
      this.out += '(';
      this.i++;
      return;
    }
    const rest = p.slice(this.i + 2, this.i + 4);
    if (rest.startsWith('=') || rest.startsWith('!')) this.refuse('a lookahead (`(?=`, `(?!`)');
    if (rest === '<=' || rest === '<!') this.refuse('a lookbehind (`(?<=`, `(?<!`)');
    if (rest === 'P=') this.refuse('a backreference (`(?P=name)`)');
    if (rest.startsWith('(')) this.refuse('a conditional group (`(?(id)yes|no)`)');
    if (rest.startsWith('>')) this.refuse('an atomic group (`(?>`)');
    if (rest.startsWith('#')) {
      const end = p.indexOf(')', this.i);
      if (end < 0) this.fail('missing ), unterminated comment');
      this.i = end + 1;
      return;
    }
    if (rest === 'P<' || rest.startsWith('<') || rest.startsWith(':')) {
      this.out += '(?';
      this.i += 2;
      return;
    }
    // Flags: `(?aiLmsux)` for the whole pattern, `(?ims-ims:...)` for a group.
    const m = /^\(\?([aiLmsux]*)(?:-([imsx]*))?([:)])/.exec(p.slice(this.i, this.i + 20));
    if (!m) this.fail('unknown extension (?');
    const [whole, on = '', off = '', end] = m;
    if (on.includes('L')) this.fail('the L flag is for bytes patterns only');
    if (end === ')' && off) this.fail('missing :');
    if (on.includes('m')) this.usesMultiline = true;
    if (end === ')') {
      if (on.includes('x')) this.verbose = true;
      if (on.includes('a')) this.ascii = true;
    } else if (on.includes('x') || off.includes('x')) {
      this.fail('a verbose group (`(?x:...)`) is not supported; put (?x) at the start or use /pattern/x');
    }
    const keep = (s: string) => s.replace(/[aux]/g, '');
    const flagsOn = keep(on);
    const flagsOff = keep(off);
    this.i += whole.length;
    if (end === ':') this.out += `(?${flagsOn}${flagsOff ? `-${flagsOff}` : ''}:`;
    else if (flagsOn) this.out += `(?${flagsOn})`;
  }

  /** `{m}`, `{m,n}`, `{,n}`, `{m,}` repeat a piece; any other `{` is a literal, as in Python. */
  private brace(): void {
    const m = /^\{(\d*)(,?)(\d*)\}/.exec(this.p.slice(this.i, this.i + 24));
    if (!m || (m[1] === '' && m[2] === '')) {
      this.out += '\\{';
      this.i++;
      return;
    }
    const lo = m[1] === '' ? '0' : m[1]!;
    this.out += m[2] ? `{${lo},${m[3]}}` : `{${lo}}`;
    this.i += m[0].length;
    this.afterRepeat();
  }
}
