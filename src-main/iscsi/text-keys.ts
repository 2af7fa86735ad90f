/**
 * key=value text of Login and Text PDU data segments (RFC 7143 §6.1).
 *
 * Each pair is `key=value` followed by one NUL byte, UTF-8 encoded. The key
 * is everything before the first '=', the value everything after it (so a
 * value may itself contain '='). This module only frames the text: checking
 * that a key is known and its value well typed is the negotiator's job.
 *
 * A negotiation text may span several PDUs (C bit). Reassemble it first with
 * TextSegmentAssembler, then decode — a pair may be split across PDUs.
 */
import { MAX_KEY_NAME_LENGTH, MAX_LARGE_VALUE_LENGTH, MAX_VALUE_LENGTH } from './constants';

export type TextKeyErrorCode =
  /** A pair has no '=' (or is empty). */
  | 'MISSING_EQUALS'
  /** A pair starts with '='. */
  | 'EMPTY_KEY'
  /** A key has bytes outside printable ASCII. */
  | 'INVALID_KEY'
  /** A key is longer than 63 characters. */
  | 'KEY_TOO_LONG'
  /** A value is longer than allowed for its key. */
  | 'VALUE_TOO_LONG'
  /** A value is not valid UTF-8, or contains NUL (encoding). */
  | 'INVALID_VALUE'
  /** Bytes after the last NUL: an unterminated pair. */
  | 'TRAILING_GARBAGE'
  /** A key appears more than once and is not allowed to repeat. */
  | 'DUPLICATE_KEY'
  /** A continued (C=1) text grew beyond the assembler's limit. */
  | 'TEXT_TOO_LONG';

export class TextKeyError extends Error {
  override readonly name = 'TextKeyError';
  constructor(
    readonly code: TextKeyErrorCode,
    message: string,
    /** The offending key, when there is one. */
    readonly key?: string,
    /** For DUPLICATE_KEY: every key that was repeated, in order of first repeat. */
    readonly keys?: readonly string[],
  ) {
    super(message);
  }
}

export type TextPair = [key: string, value: string];

/**
 * Keys whose values are large binary values (§12: CHAP_C/CHAP_R, SRP,
 * Kerberos, SPKM blobs) and may exceed 255 bytes, up to 8192.
 */
export const LARGE_VALUE_KEYS: ReadonlySet<string> = new Set([
  'CHAP_C',
  'CHAP_R',
  'SRP_A',
  'SRP_B',
  'SRP_M',
  'SRP_HM',
  'SRP_s',
  'KRB_AP_REQ',
  'KRB_AP_REP',
  'SPKM_REQ',
  'SPKM_ERROR',
  'SPKM_REP_TI',
  'SPKM_REP_IT',
]);

/** Keys a SendTargets Text Response repeats, once per target / portal (Appendix C). */
export const SEND_TARGETS_REPEATABLE_KEYS: ReadonlySet<string> = new Set(['TargetName', 'TargetAddress']);

export interface DecodeTextOptions {
  /** Keys allowed to appear more than once (default: none). */
  repeatable?: ReadonlySet<string>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const EQUALS = 0x3d;

/** Longest value allowed for `key`: 255 bytes, 8192 for large binary values (§6.1). */
export function maxValueLength(key: string, value?: string): number {
  if (LARGE_VALUE_KEYS.has(key)) return MAX_LARGE_VALUE_LENGTH;
  // A binary-value (0x... hex / 0b... base64) is limited by its decoded size, not its text.
  if (value !== undefined && value.length > 2 && value[0] === '0' && 'xXbB'.includes(value[1])) {
    return MAX_LARGE_VALUE_LENGTH;
  }
  return MAX_VALUE_LENGTH;
}

function keyError(bytes: Uint8Array, start: number, end: number): TextKeyError | undefined {
  if (end === start) return new TextKeyError('EMPTY_KEY', 'text pair with an empty key');
  if (end - start > MAX_KEY_NAME_LENGTH) {
    const key = Buffer.from(bytes.buffer, bytes.byteOffset + start, MAX_KEY_NAME_LENGTH).toString('latin1');
    return new TextKeyError('KEY_TOO_LONG', `key "${key}..." is longer than ${MAX_KEY_NAME_LENGTH} characters`, key);
  }
  for (let i = start; i < end; i++) {
    const c = bytes[i];
    if (c < 0x21 || c > 0x7e) return new TextKeyError('INVALID_KEY', `key has byte 0x${c.toString(16)} at offset ${i}`);
  }
  return undefined;
}

/**
 * Decode a complete key=value text into ordered [key, value] pairs.
 * Throws TextKeyError on any framing fault; duplicates are reported together
 * (error.keys) after the whole text has been checked.
 */
export function decodeTextKeys(data: Uint8Array, options: DecodeTextOptions = {}): TextPair[] {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const pairs: TextPair[] = [];
  const seen = new Set<string>();
  const duplicates: string[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const nul = buf.indexOf(0, pos);
    if (nul === -1) {
      throw new TextKeyError('TRAILING_GARBAGE', `${buf.length - pos} bytes after the last NUL at offset ${pos}`);
    }
    const eq = buf.indexOf(EQUALS, pos);
    if (eq === -1 || eq > nul) {
      throw new TextKeyError('MISSING_EQUALS', `text pair at offset ${pos} has no '='`);
    }
    const err = keyError(buf, pos, eq);
    if (err !== undefined) throw err;
    const key = buf.toString('latin1', pos, eq);
    let value: string;
    try {
      value = utf8.decode(buf.subarray(eq + 1, nul));
    } catch {
      throw new TextKeyError('INVALID_VALUE', `value of ${key} is not valid UTF-8`, key);
    }
    const max = maxValueLength(key, value);
    if (nul - eq - 1 > max) {
      throw new TextKeyError('VALUE_TOO_LONG', `value of ${key} is ${nul - eq - 1} bytes, over ${max}`, key);
    }
    if (seen.has(key)) {
      if (!options.repeatable?.has(key) && !duplicates.includes(key)) duplicates.push(key);
    } else {
      seen.add(key);
    }
    pairs.push([key, value]);
    pos = nul + 1;
  }
  if (duplicates.length > 0) {
    throw new TextKeyError('DUPLICATE_KEY', `key(s) sent more than once: ${duplicates.join(', ')}`, duplicates[0], duplicates);
  }
  return pairs;
}

/** Encode ordered pairs as `key=value\0...`. Validates keys and values like decodeTextKeys. */
export function encodeTextKeys(pairs: Iterable<readonly [string, string]>): Buffer {
  const items: Buffer[] = [];
  let total = 0;
  for (const [key, value] of pairs) {
    const k = Buffer.from(key, 'latin1');
    if (k.length !== key.length || Buffer.byteLength(key, 'utf8') !== key.length) {
      throw new TextKeyError('INVALID_KEY', `key "${key}" is not ASCII`, key);
    }
    const err = keyError(k, 0, k.length);
    if (err !== undefined) throw err;
    if (key.includes('=')) throw new TextKeyError('INVALID_KEY', `key "${key}" contains '='`, key);
    if (value.includes('\0')) throw new TextKeyError('INVALID_VALUE', `value of ${key} contains NUL`, key);
    const v = Buffer.from(value, 'utf8');
    const max = maxValueLength(key, value);
    if (v.length > max) throw new TextKeyError('VALUE_TOO_LONG', `value of ${key} is ${v.length} bytes, over ${max}`, key);
    items.push(k, v);
    total += k.length + 1 + v.length + 1;
  }
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (let i = 0; i < items.length; i += 2) {
    off += items[i].copy(out, off);
    out[off++] = EQUALS;
    off += items[i + 1].copy(out, off);
    out[off++] = 0;
  }
  return out;
}

/**
 * Reassembles a text that spans several Login/Text PDUs (C=1 on all but the
 * last, §11.10.2), refusing to grow past `maxLength` (the RFC asks every node to
 * accept at least 8192 bytes per negotiation sequence).
 */
export class TextSegmentAssembler {
  private parts: Buffer[] = [];
  private length = 0;

  constructor(readonly maxLength = 64 * 1024) {}

  /**
   * Add one PDU's data segment. Returns the whole text once `continues` is
   * false (the segment itself, uncopied, if it was the only one), else undefined.
   */
  push(data: Buffer, continues: boolean): Buffer | undefined {
    if (this.length + data.length > this.maxLength) {
      this.reset();
      throw new TextKeyError('TEXT_TOO_LONG', `negotiation text exceeds ${this.maxLength} bytes`);
    }
    if (!continues && this.parts.length === 0) return data;
    this.parts.push(data);
    this.length += data.length;
    if (continues) return undefined;
    const whole = Buffer.concat(this.parts, this.length);
    this.reset();
    return whole;
  }

  /** True while a continued text is being collected. */
  get pending(): boolean {
    return this.parts.length > 0;
  }

  reset(): void {
    this.parts = [];
    this.length = 0;
  }
}
