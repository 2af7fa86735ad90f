/**
 * iSCSI node names (RFC 7143 §4.2.7, RFC 3720 §3.2.6, RFC 3722 stringprep
 * profile, RFC 3980 naa.):
 *
 *   iqn.YYYY-MM.reversed.domain[:anything]   e.g. iqn.2026-11.net.example:disk1
 *   eui. + 16 hex digits                      e.g. eui.02004567a425678d
 *   naa. + 16 or 32 hex digits                e.g. naa.52004567ba64678d
 *
 * Names are compared after normalization: characters "mapped to nothing"
 * removed, case folded to lowercase, Unicode NFKC. After that only ASCII
 * letters, digits, '-', '.', ':' and non-ASCII characters that are not
 * spaces, controls, private-use or unassigned remain legal. At most 223 bytes
 * of UTF-8.
 *
 * Pure functions; every refusal carries a reason a user can act on.
 */

export const MAX_ISCSI_NAME_BYTES = 223;
export const EXAMPLE_IQN = 'iqn.2026-11.net.example:disk1';

export type IscsiNameType = 'iqn' | 'eui' | 'naa';

export type IscsiNameResult =
  | { ok: true; name: string; type: IscsiNameType }
  | { ok: false; reason: string };

/** RFC 3454 table B.1, "commonly mapped to nothing" (soft hyphen, zero-width joiners, variation selectors...). */
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu;
/** Prohibited after mapping (RFC 3722 §6): spaces, controls, private use, surrogates, unassigned, and U+3002. */
const PROHIBITED_NON_ASCII = /[\p{Z}\p{C}\u3002]/u;
const LEGAL_ASCII = /[a-z0-9\-.:]/;
const WHITESPACE = /\s/u;

/**
 * The stringprep-style normal form used for comparison: characters mapped to
 * nothing removed, lowercase, NFKC. Does not validate.
 */
export function normalizeIscsiName(s: string): string {
  return s.replace(MAPPED_TO_NOTHING, '').toLowerCase().normalize('NFKC').toLowerCase();
}

function describeChar(ch: string): string {
  if (ch === ' ') return 'a space';
  if (WHITESPACE.test(ch)) return 'whitespace';
  const cp = ch.codePointAt(0) ?? 0;
  if (cp < 0x20 || cp === 0x7f) return `a control character (U+${cp.toString(16).toUpperCase().padStart(4, '0')})`;
  if (cp < 0x80) return `'${ch}'`;
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

function illegalCharacter(name: string): { ch: string; index: number } | null {
  let index = 0;
  for (const ch of name) {
    const cp = ch.codePointAt(0) ?? 0;
    const legal = cp < 0x80 ? LEGAL_ASCII.test(ch) : !PROHIBITED_NON_ASCII.test(ch);
    if (!legal) return { ch, index };
    index += ch.length;
  }
  return null;
}

const HEX = /^[0-9a-f]+$/;

function validateIqn(name: string): string | null {
  const rest = name.slice(4);
  const date = /^(\d{4})-(\d{2})(?=[.:]|$)/.exec(rest);
  if (!date) {
    return `iqn. names need a date: ${EXAMPLE_IQN} (year and month right after "iqn.")`;
  }
  const month = Number(date[2]);
  if (month < 1 || month > 12) {
    return `the month in "iqn.${date[0]}" must be 01 to 12: ${EXAMPLE_IQN}`;
  }
  const afterDate = rest.slice(date[0].length);
  if (!afterDate.startsWith('.')) {
    return `iqn. names need a reversed domain name after the date: ${EXAMPLE_IQN}`;
  }
  const colon = afterDate.indexOf(':');
  const authority = colon === -1 ? afterDate.slice(1) : afterDate.slice(1, colon);
  if (authority.length === 0) {
    return `iqn. names need a reversed domain name after the date: ${EXAMPLE_IQN}`;
  }
  for (const label of authority.split('.')) {
    if (label.length === 0) {
      return `the domain part "${authority}" has an empty label (two dots in a row, or a dot at the end); write it like net.example`;
    }
    if (label.startsWith('-') || label.endsWith('-')) {
      return `the domain label "${label}" cannot start or end with '-'`;
    }
  }
  if (colon !== -1 && colon === afterDate.length - 1) {
    return `nothing follows the ':' in this iqn. name; add a unique part (${EXAMPLE_IQN}) or drop the ':'`;
  }
  return null;
}

/**
 * Validate and normalize an iSCSI name. On success `name` is the normalized
 * form (lowercase) to store and compare; on failure `reason` says what to fix.
 */
export function validateIscsiName(input: string): IscsiNameResult {
  if (typeof input !== 'string' || input.length === 0) {
    return { ok: false, reason: `an iSCSI name is required, for example ${EXAMPLE_IQN}` };
  }
  if (input.trim() !== input) {
    return { ok: false, reason: `remove the spaces at the start or end of "${input.trim()}"` };
  }
  const name = normalizeIscsiName(input);
  if (name.length === 0) {
    return { ok: false, reason: `an iSCSI name is required, for example ${EXAMPLE_IQN}` };
  }
  const bad = illegalCharacter(name);
  if (bad) {
    return {
      ok: false,
      reason: `iSCSI names cannot contain ${describeChar(bad.ch)} (position ${bad.index + 1}); use letters, digits, '-', '.' and ':' only, e.g. ${EXAMPLE_IQN}`,
    };
  }
  const bytes = utf8Length(name);
  if (bytes > MAX_ISCSI_NAME_BYTES) {
    return { ok: false, reason: `this iSCSI name is ${bytes} bytes long; the limit is ${MAX_ISCSI_NAME_BYTES} bytes, so shorten the part after ':'` };
  }
  if (name.startsWith('iqn.')) {
    const problem = validateIqn(name);
    return problem ? { ok: false, reason: problem } : { ok: true, name, type: 'iqn' };
  }
  if (name.startsWith('eui.')) {
    const hex = name.slice(4);
    if (hex.length !== 16 || !HEX.test(hex)) {
      return { ok: false, reason: `eui. names are "eui." followed by exactly 16 hex digits, e.g. eui.02004567a425678d (got ${hex.length} characters)` };
    }
    return { ok: true, name, type: 'eui' };
  }
  if (name.startsWith('naa.')) {
    const hex = name.slice(4);
    if ((hex.length !== 16 && hex.length !== 32) || !HEX.test(hex)) {
      return { ok: false, reason: `naa. names are "naa." followed by 16 or 32 hex digits, e.g. naa.52004567ba64678d (got ${hex.length} characters)` };
    }
    return { ok: true, name, type: 'naa' };
  }
  if (/^\d{4}-\d{2}\./.test(name)) {
    return { ok: false, reason: `iSCSI names start with "iqn.": did you mean iqn.${name}?` };
  }
  return { ok: false, reason: `iSCSI names start with iqn., eui. or naa., for example ${EXAMPLE_IQN}` };
}

/** True when `s` is a valid iSCSI name (in any case). */
export function isValidIscsiName(s: string): boolean {
  return validateIscsiName(s).ok;
}

/**
 * Whether two names denote the same node (RFC 7143 §4.2.7.1: compare the
 * normalized forms).
 */
export function sameIscsiName(a: string, b: string): boolean {
  return normalizeIscsiName(a) === normalizeIscsiName(b);
}

/**
 * Lenient check for names received on the wire. Peers in the field
 * sometimes send names that break the iqn. grammar (an '_' from a Windows
 * host name, say); refusing them would lock those hosts out, so the login
 * only needs a name that is non-empty, at most 223 bytes and free of
 * whitespace and control characters. `wellFormed` and `reason` say whether
 * the strict rules hold, for a log line.
 */
export function checkWireIscsiName(input: string):
  | { ok: true; name: string; wellFormed: boolean; reason?: string }
  | { ok: false; reason: string } {
  if (input.length === 0) return { ok: false, reason: 'the iSCSI name is empty' };
  const name = normalizeIscsiName(input);
  for (const ch of name) {
    if (WHITESPACE.test(ch) || /\p{C}/u.test(ch)) {
      return { ok: false, reason: `the iSCSI name contains ${describeChar(ch)}` };
    }
  }
  const bytes = utf8Length(name);
  if (bytes > MAX_ISCSI_NAME_BYTES) {
    return { ok: false, reason: `the iSCSI name is ${bytes} bytes long (limit ${MAX_ISCSI_NAME_BYTES})` };
  }
  const strict = validateIscsiName(input);
  return strict.ok ? { ok: true, name, wellFormed: true } : { ok: true, name, wellFormed: false, reason: strict.reason };
}

/**
 * Build an iqn. name from its parts: `buildIqn(2026, 11, 'example.net', 'disk1')`
 * gives `iqn.2026-11.net.example:disk1` (the domain is reversed for you).
 */
export function buildIqn(year: number, month: number, domain: string, unique?: string): IscsiNameResult {
  if (!Number.isInteger(year) || year < 1000 || year > 9999) return { ok: false, reason: `the year ${year} must have four digits` };
  if (!Number.isInteger(month) || month < 1 || month > 12) return { ok: false, reason: `the month ${month} must be 1 to 12` };
  const reversed = domain.split('.').filter((l) => l.length > 0).reverse().join('.');
  const base = `iqn.${year}-${String(month).padStart(2, '0')}.${reversed}`;
  return validateIscsiName(unique === undefined || unique === '' ? base : `${base}:${unique}`);
}

/** UTF-8 byte length without Node's Buffer: the renderer validates names with this module too. */
function utf8Length(s: string): number {
  return new TextEncoder().encode(s).length;
}
