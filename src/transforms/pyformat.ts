/**
 * Python's printf-style `template % args` for the conversions area-detector
 * templates use (`%s`, `%d`, `%i`, `%%`) with flags, width and precision,
 * e.g. `'%s%s_%6.6d.tiff' % ('/data/', 'img', 7)` → `/data/img_000007.tiff`.
 *
 * Templates come from documents, so they are hostile input: a width or
 * precision beyond MAX_FIELD (no file path is longer) is refused instead of
 * padding to gigabytes, and arguments of the wrong type are typed errors.
 */
import { PackStreamError } from '../errors.js';

export type FormatArg = string | number | bigint;

/** The widest field a template may ask for: Linux's PATH_MAX. */
export const MAX_FIELD = 4096;

/** A template in a message: quoted, and cut short (a template can be as long as its document). */
export function shown(template: string): string {
  return template.length > 80 ? `${JSON.stringify(template.slice(0, 80))}...` : JSON.stringify(template);
}

function field(template: string, what: string, v: number): number {
  if (v > MAX_FIELD) throw new PackStreamError('E_LIMIT', `template ${shown(template)}: a ${what} of ${v} is more than ${MAX_FIELD}, longer than any file path`);
  return v;
}

/** An integer argument (`%d`, `%x`, `*`): Python refuses anything else (a float only for `%x` and `*`). */
function integer(arg: FormatArg, conv: string, floats: boolean): bigint {
  if (typeof arg === 'bigint') return arg;
  if (typeof arg === 'number' && Number.isFinite(arg) && (floats || Number.isInteger(arg))) return BigInt(Math.trunc(arg));
  throw new PackStreamError('E_HANDLER', `%${conv} format: ${floats ? 'a real number' : 'an integer'} is required, not ${typeof arg === 'number' ? (Number.isFinite(arg) ? 'float' : String(arg)) : typeof arg}`);
}

const SPEC = /%(?:\(([^)]*)\))?([-+ #0]*)(\*|\d+)?(?:\.(\*|\d+))?([hlL])?([diouxXeEfFgGcrsa%])/g;

export function pyPercentFormat(template: string, args: FormatArg[]): string {
  let i = 0;
  const out = template.replace(SPEC, (whole, key: string | undefined, flags: string, width: string | undefined, prec: string | undefined, _len, conv: string) => {
    if (conv === '%') return '%';
    if (key !== undefined) throw new PackStreamError('E_HANDLER', `template ${shown(template)} uses a mapping key, which handlers do not pass`);
    const next = (): FormatArg => {
      if (i >= args.length) throw new PackStreamError('E_HANDLER', `not enough arguments for format string ${shown(template)}`);
      return args[i++]!;
    };
    const w = field(template, 'width', width === '*' ? Math.abs(Number(integer(next(), '*', false))) : width === undefined ? 0 : Number(width));
    const p = prec === undefined ? undefined : field(template, 'precision', prec === '*' ? Math.max(0, Number(integer(next(), '*', false))) : Number(prec));
    const arg = next();
    let body: string;
    let sign = '';
    switch (conv) {
      case 's':
      case 'r':
      case 'a':
        body = String(arg);
        if (p !== undefined) body = body.slice(0, p);
        break;
      case 'd':
      case 'i':
      case 'u': {
        let n = integer(arg, conv, true);
        if (n < 0n) { sign = '-'; n = -n; }
        else if (flags.includes('+')) sign = '+';
        else if (flags.includes(' ')) sign = ' ';
        body = n.toString();
        if (p !== undefined && body.length < p) body = '0'.repeat(p - body.length) + body;
        break;
      }
      case 'x':
      case 'X':
      case 'o': {
        let n = integer(arg, conv, false);
        if (n < 0n) { sign = '-'; n = -n; }
        body = n.toString(conv === 'o' ? 8 : 16);
        if (conv === 'X') body = body.toUpperCase();
        if (p !== undefined && body.length < p) body = '0'.repeat(p - body.length) + body;
        break;
      }
      case 'f':
      case 'F': {
        if (typeof arg === 'string') throw new PackStreamError('E_HANDLER', `%${conv} format: a real number is required, not str`);
        const x = Number(arg);
        // toFixed takes at most 100 digits
        body = Math.abs(x).toFixed(Math.min(p ?? 6, 100));
        if (x < 0) sign = '-';
        else if (flags.includes('+')) sign = '+';
        break;
      }
      default:
        throw new PackStreamError('E_HANDLER', `template ${shown(template)}: %${conv} is not supported`);
    }
    let s = sign + body;
    if (s.length < w) {
      if (flags.includes('-')) s = s + ' '.repeat(w - s.length);
      else if (flags.includes('0') && conv !== 's' && conv !== 'r' && conv !== 'a') s = sign + '0'.repeat(w - s.length) + body;
      else s = ' '.repeat(w - s.length) + s;
    }
    void whole;
    return s;
  });
  if (i < args.length) throw new PackStreamError('E_HANDLER', `not all arguments converted during string formatting of ${shown(template)}`);
  return out;
}
