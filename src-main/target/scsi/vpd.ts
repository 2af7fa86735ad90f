/**
 * INQUIRY data: the standard page and the VPD pages (SPC-4 §6.6, §7.8;
 * SBC-3 §6.5).
 */
import type { ItNexus } from './types';
import type { LogicalUnit } from './logical-unit';
import { PAGE_POLICY } from './mode';

export const VpdPage = {
  SUPPORTED_PAGES: 0x00,
  UNIT_SERIAL_NUMBER: 0x80,
  DEVICE_IDENTIFICATION: 0x83,
  MODE_PAGE_POLICY: 0x87,
  BLOCK_LIMITS: 0xb0,
  BLOCK_DEVICE_CHARACTERISTICS: 0xb1,
  LOGICAL_BLOCK_PROVISIONING: 0xb2,
} as const;

/** Version descriptors claimed in standard INQUIRY data (SPC-4 table 33). */
export const VERSION_DESCRIPTORS = [
  0x00a0, // SAM-5
  0x0960, // iSCSI
  0x0460, // SPC-4
  0x04c0, // SBC-3
] as const;

const STANDARD_LENGTH = 96;

function ascii(s: string, len: number): Buffer {
  const b = Buffer.alloc(len, 0x20);
  b.write(s.replace(/[^\x20-\x7e]/g, '?').slice(0, len), 0, 'ascii');
  return b;
}

export interface StandardInquiryIdentity {
  vendor: string;
  product: string;
  revision: string;
  removable: boolean;
  /** 3PC: EXTENDED COPY is supported. */
  thirdPartyCopy: boolean;
}

/** Standard INQUIRY data for a logical unit (peripheral qualifier 000b, direct access). */
export function standardInquiry(id: StandardInquiryIdentity): Buffer {
  const b = Buffer.alloc(STANDARD_LENGTH);
  b[0] = 0x00;
  b[1] = id.removable ? 0x80 : 0x00;
  b[2] = 0x06; // SPC-4
  b[3] = 0x12; // HISUP, RESPONSE DATA FORMAT 2
  b[4] = STANDARD_LENGTH - 5;
  b[5] = id.thirdPartyCopy ? 0x08 : 0x00; // TPGS 00b (no ALUA), 3PC
  b[6] = 0x00;
  b[7] = 0x02; // CMDQUE
  ascii(id.vendor, 8).copy(b, 8);
  ascii(id.product, 16).copy(b, 16);
  ascii(id.revision, 4).copy(b, 32);
  VERSION_DESCRIPTORS.forEach((v, i) => b.writeUInt16BE(v, 58 + 2 * i));
  return b;
}

/**
 * Standard INQUIRY data for a LUN that has no logical unit behind it:
 * peripheral qualifier 011b, device type 1Fh (SPC-4 §6.6.2).
 */
export function absentLunInquiry(): Buffer {
  const b = Buffer.alloc(36);
  b[0] = 0x7f;
  b[2] = 0x06;
  b[3] = 0x12;
  b[4] = 36 - 5;
  return b;
}

function vpdPage(page: number, body: Buffer): Buffer {
  const b = Buffer.alloc(4 + body.length);
  b[1] = page;
  b.writeUInt16BE(body.length, 2);
  body.copy(b, 4);
  return b;
}

/** One designation descriptor (SPC-4 §7.8.6.1). */
function designator(codeSet: number, assoc: number, type: number, value: Buffer, protocol?: number): Buffer {
  const d = Buffer.alloc(4 + value.length);
  d[0] = ((protocol ?? 0) << 4) | codeSet;
  d[1] = (protocol !== undefined ? 0x80 : 0) | (assoc << 4) | type;
  d[3] = value.length;
  value.copy(d, 4);
  return d;
}

/** A SCSI name string: UTF-8, NUL-terminated, padded to a multiple of 4. */
function nameString(name: string): Buffer {
  const raw = Buffer.from(name, 'utf8');
  const len = (raw.length + 1 + 3) & ~3;
  const b = Buffer.alloc(len);
  raw.copy(b);
  return b;
}

const PROTOCOL_ISCSI = 5;
const CODE_BINARY = 1;
const CODE_ASCII = 2;
const CODE_UTF8 = 3;
const ASSOC_LU = 0;
const ASSOC_TARGET_PORT = 1;
const ASSOC_TARGET_DEVICE = 2;
const TYPE_T10 = 1;
const TYPE_NAA = 3;
const TYPE_RELATIVE_TARGET_PORT = 4;
const TYPE_SCSI_NAME = 8;

/** The VPD pages this logical unit reports, ascending. */
export function supportedVpdPages(lu: LogicalUnit): number[] {
  const pages: number[] = [
    VpdPage.SUPPORTED_PAGES,
    VpdPage.UNIT_SERIAL_NUMBER,
    VpdPage.DEVICE_IDENTIFICATION,
    VpdPage.MODE_PAGE_POLICY,
    VpdPage.BLOCK_LIMITS,
    VpdPage.BLOCK_DEVICE_CHARACTERISTICS,
  ];
  if (lu.thinProvisioned) pages.push(VpdPage.LOGICAL_BLOCK_PROVISIONING);
  return pages;
}

/** A VPD page, or undefined if the page is not supported. */
export function buildVpdPage(lu: LogicalUnit, page: number, nexus: ItNexus): Buffer | undefined {
  if (!supportedVpdPages(lu).includes(page)) return undefined;
  switch (page) {
    case VpdPage.SUPPORTED_PAGES:
      return vpdPage(page, Buffer.from(supportedVpdPages(lu)));
    case VpdPage.UNIT_SERIAL_NUMBER:
      return vpdPage(page, Buffer.from(lu.identity.serial, 'ascii'));
    case VpdPage.DEVICE_IDENTIFICATION:
      return vpdPage(page, deviceIdentification(lu, nexus));
    case VpdPage.MODE_PAGE_POLICY:
      return vpdPage(page, modePagePolicy());
    case VpdPage.BLOCK_LIMITS:
      return vpdPage(page, blockLimits(lu));
    case VpdPage.BLOCK_DEVICE_CHARACTERISTICS: {
      const body = Buffer.alloc(0x3c);
      body.writeUInt16BE(lu.backstore.capabilities.rotational ? 0 : 1, 0); // MEDIUM ROTATION RATE: 1 = non-rotating
      return vpdPage(page, body);
    }
    case VpdPage.LOGICAL_BLOCK_PROVISIONING: {
      const body = Buffer.alloc(4);
      // LBPU, LBPWS, LBPWS10, LBPRZ (SBC-3 r36 bit 2); ANC_SUP = 0; DP = 0.
      body[1] = 0x80 | 0x40 | 0x20 | (lu.lbprz ? 0x04 : 0);
      body[2] = 0x02; // PROVISIONING TYPE: thin
      return vpdPage(page, body);
    }
    default:
      return undefined;
  }
}

function deviceIdentification(lu: LogicalUnit, nexus: ItNexus): Buffer {
  const parts: Buffer[] = [];
  parts.push(designator(CODE_BINARY, ASSOC_LU, TYPE_NAA, lu.identity.naa));
  parts.push(
    designator(
      CODE_ASCII,
      ASSOC_LU,
      TYPE_T10,
      Buffer.concat([ascii(lu.vendor, 8), ascii(lu.product, 16), Buffer.from(lu.identity.serial, 'ascii')]),
    ),
  );
  const rel = Buffer.alloc(4);
  rel.writeUInt16BE(nexus.relativeTargetPortId & 0xffff, 2);
  parts.push(designator(CODE_BINARY, ASSOC_TARGET_PORT, TYPE_RELATIVE_TARGET_PORT, rel, PROTOCOL_ISCSI));
  if (nexus.targetPortName) {
    parts.push(designator(CODE_UTF8, ASSOC_TARGET_PORT, TYPE_SCSI_NAME, nameString(nexus.targetPortName), PROTOCOL_ISCSI));
    const device = nexus.targetPortName.split(',t,')[0];
    parts.push(designator(CODE_UTF8, ASSOC_TARGET_DEVICE, TYPE_SCSI_NAME, nameString(device), PROTOCOL_ISCSI));
  }
  return Buffer.concat(parts);
}

/**
 * Mode Page Policy (SPC-4 §7.8.9): one descriptor per supported mode page —
 * POLICY PAGE CODE, POLICY SUBPAGE CODE 00h, MLUS 0 (no page is shared with
 * another logical unit), MODE PAGE POLICY (see mode.ts: the Control page is
 * per I_T nexus, the others shared).
 */
function modePagePolicy(): Buffer {
  const b = Buffer.alloc(4 * PAGE_POLICY.size);
  let at = 0;
  for (const [page, policy] of PAGE_POLICY) {
    b[at] = page & 0x3f;
    b[at + 1] = 0x00;
    b[at + 2] = policy & 0x03;
    at += 4;
  }
  return b;
}

function blockLimits(lu: LogicalUnit): Buffer {
  const l = lu.limits;
  const b = Buffer.alloc(0x3c);
  b[0] = 0x00; // WSNZ = 0: WRITE SAME with NUMBER OF LOGICAL BLOCKS 0 writes to the end
  b[1] = l.maxCompareAndWriteBlocks;
  b.writeUInt16BE(l.optimalGranularityBlocks, 2);
  b.writeUInt32BE(l.maxTransferBlocks, 4);
  b.writeUInt32BE(l.optimalTransferBlocks, 8);
  b.writeUInt32BE(l.maxTransferBlocks, 12); // MAXIMUM PREFETCH LENGTH
  if (lu.thinProvisioned) {
    b.writeUInt32BE(l.maxUnmapBlocks, 16);
    b.writeUInt32BE(l.maxUnmapDescriptors, 20);
    b.writeUInt32BE(l.optimalGranularityBlocks, 24); // OPTIMAL UNMAP GRANULARITY
    b.writeUInt32BE(0x80000000, 28); // UGAVALID, UNMAP GRANULARITY ALIGNMENT 0
  }
  b.writeUInt32BE(0, 32);
  b.writeUInt32BE(l.maxWriteSameBlocks, 36); // MAXIMUM WRITE SAME LENGTH (64-bit, high half 0)
  b.writeUInt32BE(l.maxAtomicBlocks, 40); // MAXIMUM ATOMIC TRANSFER LENGTH
  // ATOMIC ALIGNMENT, ATOMIC TRANSFER LENGTH GRANULARITY, atomic boundary fields: 0 (no restriction / no boundaries)
  return b;
}
