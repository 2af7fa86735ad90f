/**
 * CRC32C HeaderDigest and DataDigest (RFC 7143 §13.1, algorithm and examples
 * in RFC 3720 Appendix B.4), computed by @node-rs/crc32's native crc32c.
 *
 * Byte order on the wire: the CRC register is reflected, and RFC 3720 B.4
 * lists the digest bytes in transmission order — 32 zero bytes give
 * "aa 36 91 8a", the value 0x8a9136aa — so the 32-bit result travels
 * LITTLE-endian, unlike every other iSCSI field. readDigest/writeDigest
 * below are the only place that knows this.
 */
import { crc32c } from '@node-rs/crc32';
import { PADDING, padLength } from './bhs';
import { DIGEST_LENGTH } from './constants';

/** CRC32C of `buf`, continuing from a previous result `previous` when given. */
export function crc32cOf(buf: Uint8Array, previous?: number): number {
  return crc32c(buf, previous) >>> 0;
}

/** HeaderDigest over BHS and AHS (§11.2.3: covers the header, AHS included). */
export function headerDigest(bhs: Uint8Array, ahs?: Uint8Array): number {
  let crc = crc32c(bhs);
  if (ahs !== undefined && ahs.length > 0) crc = crc32c(ahs, crc);
  return crc >>> 0;
}

/**
 * DataDigest over the data segment and its zero padding: padding bytes are
 * included in the CRC (§13.1).
 */
export function dataDigest(data: Uint8Array): number {
  let crc = crc32c(data);
  const pad = padLength(data.length);
  if (pad !== 0) crc = crc32c(PADDING[pad], crc);
  return crc >>> 0;
}

/** Read a digest as sent on the wire (little-endian, see top of file). */
export function readDigest(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset);
}

/** Write a digest as sent on the wire (little-endian). */
export function writeDigest(value: number, out: Buffer = Buffer.allocUnsafe(DIGEST_LENGTH), offset = 0): Buffer {
  out.writeUInt32LE(value >>> 0, offset);
  return out;
}
