/**
 * 32-bit serial number arithmetic (RFC 1982, SERIAL_BITS = 32), which RFC 7143
 * prescribes for CmdSN, ExpCmdSN, MaxCmdSN, StatSN, ExpStatSN, DataSN and
 * R2TSN comparisons. Values are unsigned 32-bit integers held in JS numbers.
 */

/** Signed distance from `a` to `b` in serial space (b - a as an int32). */
function distance(a: number, b: number): number {
  return (b - a) | 0;
}

/** a < b in serial arithmetic. Undefined pairs (2^31 apart) compare false both ways. */
export function snLessThan(a: number, b: number): boolean {
  const d = distance(a, b);
  return d > 0;
}

/** a > b in serial arithmetic. */
export function snGreaterThan(a: number, b: number): boolean {
  const d = distance(a, b);
  return d < 0 && d !== -0x80000000;
}

export function snLessOrEqual(a: number, b: number): boolean {
  return a === b || snLessThan(a, b);
}

export function snGreaterOrEqual(a: number, b: number): boolean {
  return a === b || snGreaterThan(a, b);
}

/** (a + n) mod 2^32; n may be negative. */
export function snAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** True when `lo <= sn <= hi` in serial arithmetic (e.g. the CmdSN window ExpCmdSN..MaxCmdSN). */
export function snInWindow(sn: number, lo: number, hi: number): boolean {
  return snLessOrEqual(lo, sn) && snLessOrEqual(sn, hi);
}
