/**
 * Stable identity of a logical unit, derived from a per-LUN seed string:
 * the unit serial number (VPD 0x80) and the NAA IEEE Registered Extended
 * designator (VPD 0x83). Same seed, same identity, on every start.
 */
import { createHash } from 'node:crypto';

/** Locally administered company ID ("\x02SP"): bit 1 of the first octet set, so it names no IEEE registrant. */
export const DEFAULT_IEEE_COMPANY_ID = 0x025350;

export interface LuIdentity {
  /** Unit serial number, 16 upper-case hex digits. */
  serial: string;
  /** 16-byte NAA designator (NAA = 6h, IEEE Registered Extended). */
  naa: Buffer;
}

export function deriveIdentity(seed: string, companyId = DEFAULT_IEEE_COMPANY_ID): LuIdentity {
  if (!Number.isInteger(companyId) || companyId < 0 || companyId > 0xffffff) throw new RangeError(`IEEE company ID ${companyId} is not 24 bits`);
  const h = createHash('sha256').update('spindle-lu\0').update(seed).digest();
  const serial = h.subarray(0, 8).toString('hex').toUpperCase();
  const naa = Buffer.alloc(16);
  // NAA(4) | IEEE COMPANY ID(24) | VENDOR SPECIFIC IDENTIFIER(36) | EXTENSION(64)
  naa[0] = 0x60 | (companyId >> 20);
  naa[1] = (companyId >> 12) & 0xff;
  naa[2] = (companyId >> 4) & 0xff;
  naa[3] = ((companyId & 0x0f) << 4) | (h[8] & 0x0f);
  h.copy(naa, 4, 9, 21);
  return { serial, naa };
}

/** The NAA designator as 32 hex digits (what /dev/disk/by-id shows after "3"). */
export function naaHex(naa: Buffer): string {
  return naa.toString('hex');
}
