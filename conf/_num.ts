/**
 * _num.ts - strict unsigned number parsing for option arguments.
 *
 * passt reads numbers with strtoul(); these helpers take the same notations but
 * refuse what strtoul() would quietly skip or wrap: leading blanks, signs,
 * trailing garbage and values beyond 2^53.
 *
 * @module
 */

const DEC_REGEXP = /^[0-9]+$/;
const HEX_REGEXP = /^0[xX][0-9a-fA-F]+$/;
const OCT_REGEXP = /^0[0-7]*$/;

/**
 * Parses an unsigned integer the way strtoul(s, &end, base) with a check for
 * `*end == 0` would, for base 10 or base 0 (0x hex, leading-0 octal, decimal).
 * @param s the whole text
 * @param base 10, or 0 for C-style prefixes
 * @returns the value, or null if `s` is not entirely such a number
 */
export function parseUnsigned(s: string, base: 0 | 10): number | null {
  let v: number;
  if (base === 10 || !(s.startsWith("0") && s.length > 1)) {
    if (!DEC_REGEXP.test(s)) return null;
    v = Number(s);
  } else if (HEX_REGEXP.test(s)) {
    v = parseInt(s.slice(2), 16);
  } else if (OCT_REGEXP.test(s)) {
    v = parseInt(s, 8);
  } else {
    return null;
  }
  return Number.isSafeInteger(v) ? v : null;
}
