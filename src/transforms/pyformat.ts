/**
 * Python's printf-style `template % args` for the conversions area-detector
 * templates use (`%s`, `%d`, `%i`, `%%`) with flags, width and precision,
 * e.g. `'%s%s_%6.6d.tiff' % ('/data/', 'img', 7)` → `/data/img_000007.tiff`.
 */
import { PackStreamError } from '../errors.js';

export type FormatArg = string | number | bigint;

const SPEC = /%(?:\(([^)]*)\))?([-+ #0]*)(\*|\d+)?(?:\.(\*|\d+))?([hlL])?([diouxXeEfFgGcrsa%])/g;

export function pyPercentFormat(template: string, args: FormatArg[]): string {
  let i = 0;
  const out = template.replace(SPEC, (whole, key: string | undefined, flags: string, width: string | undefined, prec: string | undefined, _len, conv: string) => {
    if (conv === '%') return '%';
    if (key !== undefined) throw new PackStreamError('E_HANDLER', `template ${JSON.stringify(template)} uses a mapping key, which handlers do not pass`);
    const next = (): FormatArg => {
      if (i >= args.length) throw new PackStreamError('E_HANDLER', `not enough arguments for format string ${JSON.stringify(template)}`);
      return args[i++]!;
    };
    const w = width === '*' ? Number(next()) : width === undefined ? 0 : Number(width);
    const p = prec === '*' ? Number(next()) : prec === undefined ? undefined : Number(prec);
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
        let n: bigint;
        if (typeof arg === 'bigint') n = arg;
        else if (typeof arg === 'number' && Number.isFinite(arg)) n = BigInt(Math.trunc(arg));
        else throw new PackStreamError('E_HANDLER', `%${conv} format: a real number is required, not ${typeof arg}`);
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
        let n = typeof arg === 'bigint' ? arg : BigInt(Math.trunc(Number(arg)));
        if (n < 0n) { sign = '-'; n = -n; }
        body = n.toString(conv === 'o' ? 8 : 16);
        if (conv === 'X') body = body.toUpperCase();
        if (p !== undefined && body.length < p) body = '0'.repeat(p - body.length) + body;
        break;
      }
      case 'f':
      case 'F':
        body = Math.abs(Number(arg)).toFixed(p ?? 6);
        if (Number(arg) < 0) sign = '-';
        else if (flags.includes('+')) sign = '+';
        break;
      default:
        throw new PackStreamError('E_HANDLER', `template ${JSON.stringify(template)}: %${conv} is not supported`);
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
  if (i < args.length) throw new PackStreamError('E_HANDLER', `not all arguments converted during string formatting of ${JSON.stringify(template)}`);
  return out;
}
