/**
 * EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4 §6.4, §6.21): the
 * copy manager for block-to-block copies between logical units of the same
 * target — what VMware's XCOPY offload and `sg_xcopy` use.
 *
 * Supported: identification descriptor target descriptors (E4h) naming a
 * logical unit by its NAA designator, block→block segment descriptors
 * (02h), LIST ID USAGE 00b/10b/11b, no inline or held data.
 */
import { readU64 } from '../../iscsi/cdb';
import { AdditionalSense, SenseKey } from '../../iscsi/sense';
import type { LogicalUnit } from './logical-unit';
import { allocated, checkCondition, good, illegal, invalidCdb, invalidParam, parameterListLengthError } from './response';
import type { ItNexus, ScsiCallback, ScsiCommand, ScsiResponse } from './types';

export const COPY_LIMITS = Object.freeze({
  maxTargetDescriptors: 2,
  maxSegmentDescriptors: 8,
  maxDescriptorListLength: 1024,
  totalConcurrentCopies: 16,
});

/** Held result of a finished EXTENDED COPY (LIST ID USAGE 00b). */
export interface CopyResult {
  /** COPY MANAGER STATUS: 01h completed without errors, 02h completed with errors. */
  status: number;
  segmentsProcessed: number;
  bytes: number;
}

const TARGET_DESCRIPTOR_IDENTIFICATION = 0xe4;
const SEGMENT_BLOCK_TO_BLOCK = 0x02;
const XCOPY_HEADER = 16;
const COPY_CHUNK_BYTES = 1 << 20;

interface Segment {
  src: number;
  dst: number;
  blocks: number;
  destinationUnits: boolean;
  srcLba: number;
  dstLba: number;
}

interface CopyTarget {
  lu: LogicalUnit | undefined;
  blockLength: number;
}

export function extendedCopyDataOutLength(_lu: LogicalUnit, cdb: Buffer): number {
  return cdb.readUInt32BE(10);
}

function copyAborted(code: number): ScsiResponse {
  return checkCondition(SenseKey.COPY_ABORTED, code);
}

/** EXTENDED COPY(LID1): parameter list checked whole, then the segments run in order. */
export function extendedCopy(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const plen = cmd.cdb.readUInt32BE(10);
  if (plen === 0) return done(good());
  const data = cmd.dataOut;
  const have = Math.min(plen, data === null ? 0 : data.length);
  if (data === null || have < XCOPY_HEADER) throw parameterListLengthError();
  const listId = data[0];
  const usage = (data[1] >> 3) & 0x03;
  if (usage === 0x01) throw invalidParam(1, 4);
  const tdl = data.readUInt16BE(2);
  const sdl = data.readUInt32BE(8);
  const inline = data.readUInt32BE(12);
  if (XCOPY_HEADER + tdl + sdl + inline > have) throw parameterListLengthError();
  if (tdl + sdl > COPY_LIMITS.maxDescriptorListLength) throw parameterListLengthError();
  if (inline !== 0) throw invalidParam(12);

  const targets: CopyTarget[] = [];
  let pos = XCOPY_HEADER;
  const tEnd = XCOPY_HEADER + tdl;
  while (pos < tEnd) {
    if (data[pos] !== TARGET_DESCRIPTOR_IDENTIFICATION) {
      throw illegal(AdditionalSense.UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE, { inCdb: false, byte: pos });
    }
    if (pos + 32 > tEnd) throw parameterListLengthError();
    if (targets.length >= COPY_LIMITS.maxTargetDescriptors) throw illegal(AdditionalSense.TOO_MANY_TARGET_DESCRIPTORS, { inCdb: false, byte: pos });
    // LU ID TYPE and NUL are ignored (SPC-4); only block devices are copy targets.
    if ((data[pos + 1] & 0x1f) !== 0) throw illegal(AdditionalSense.UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE, { inCdb: false, byte: pos + 1 });
    const codeSet = data[pos + 4] & 0x0f;
    const desigType = data[pos + 5] & 0x0f;
    const desigLen = Math.min(data[pos + 7], 20);
    const designator = data.subarray(pos + 8, pos + 8 + desigLen);
    const found = codeSet === 1 && desigType === 3 && desigLen === 16 ? lu.resolveCopyTarget(designator) : undefined;
    targets.push({ lu: found, blockLength: data.readUIntBE(pos + 29, 3) });
    pos += 32;
  }

  const segments: Segment[] = [];
  const sEnd = tEnd + sdl;
  while (pos < sEnd) {
    if (data[pos] !== SEGMENT_BLOCK_TO_BLOCK) {
      throw illegal(AdditionalSense.UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE, { inCdb: false, byte: pos });
    }
    if (pos + 4 > sEnd) throw parameterListLengthError();
    const len = data.readUInt16BE(pos + 2);
    if (len !== 0x18) throw invalidParam(pos + 2);
    if (pos + 4 + len > sEnd) throw parameterListLengthError();
    if (segments.length >= COPY_LIMITS.maxSegmentDescriptors) throw illegal(AdditionalSense.TOO_MANY_SEGMENT_DESCRIPTORS, { inCdb: false, byte: pos });
    segments.push({
      destinationUnits: (data[pos + 1] & 0x02) !== 0,
      src: data.readUInt16BE(pos + 4),
      dst: data.readUInt16BE(pos + 6),
      blocks: data.readUInt16BE(pos + 10),
      srcLba: readU64(data, pos + 12),
      dstLba: readU64(data, pos + 20),
    });
    pos += 4 + len;
  }

  const nexusKey = cmd.nexus.key;
  const result: CopyResult = { status: 0x01, segmentsProcessed: 0, bytes: 0 };
  const finish = (resp: ScsiResponse): void => {
    if (resp.status !== 0) result.status = 0x02;
    if (usage === 0x00) {
      let held = lu.copyResults.get(nexusKey);
      if (held === undefined) lu.copyResults.set(nexusKey, (held = new Map()));
      held.set(listId, result);
    }
    done(resp);
  };
  let i = 0;
  const next = (): void => {
    if (i >= segments.length) return finish(good());
    const seg = segments[i];
    runSegment(targets, seg, cmd.nexus, (err, bytes) => {
      if (err) return finish(err);
      result.segmentsProcessed = ++i;
      result.bytes += bytes;
      next();
    });
  };
  next();
}

function runSegment(targets: CopyTarget[], seg: Segment, nexus: ItNexus, cb: (err: ScsiResponse | null, bytes: number) => void): void {
  const src = seg.src < targets.length ? targets[seg.src] : undefined;
  const dst = seg.dst < targets.length ? targets[seg.dst] : undefined;
  if (!src?.lu || !dst?.lu) return cb(copyAborted(AdditionalSense.COPY_TARGET_DEVICE_NOT_REACHABLE), 0);
  const s = src.lu;
  const d = dst.lu;
  if (!s.mediumLoaded || !d.mediumLoaded) return cb(copyAborted(AdditionalSense.COPY_TARGET_DEVICE_NOT_REACHABLE), 0);
  if (s.blockSize !== d.blockSize || (src.blockLength !== 0 && src.blockLength !== s.blockSize) || (dst.blockLength !== 0 && dst.blockLength !== d.blockSize)) {
    return cb(copyAborted(AdditionalSense.COPY_TARGET_DEVICE_NOT_REACHABLE), 0);
  }
  // SWP is per I_T nexus (Control mode page policy, VPD 0x87): the copy writes for the requester's nexus.
  if (d.writeProtectedFor(nexus)) return cb(copyAborted(AdditionalSense.WRITE_PROTECTED), 0);
  const bs = s.blockSize;
  const blocks = seg.blocks;
  if (seg.srcLba + blocks > s.numBlocks || seg.dstLba + blocks > d.numBlocks) return cb(copyAborted(AdditionalSense.NO_ADDITIONAL_SENSE), 0);
  if (blocks === 0) return cb(null, 0);
  const perChunk = Math.max(1, Math.floor(COPY_CHUNK_BYTES / bs));
  // Overlapping copy within one LU towards higher LBAs: go from the end, like memmove.
  const backwards = s === d && seg.dstLba > seg.srcLba && seg.dstLba < seg.srcLba + blocks;
  const buf = s.pool.acquire(Math.min(blocks, perChunk) * bs);
  let copied = 0;
  const step = (): void => {
    if (copied >= blocks) {
      s.pool.release(buf);
      return cb(null, blocks * bs);
    }
    const n = Math.min(perChunk, blocks - copied);
    const off = backwards ? blocks - copied - n : copied;
    const srcLba = seg.srcLba + off;
    const dstLba = seg.dstLba + off;
    s.lock.acquire(srcLba, n, false, (rh) => {
      s.backstore.read(buf, 0, n * bs, srcLba * bs, (rerr) => {
        s.lock.release(rh);
        if (rerr) {
          s.pool.release(buf);
          return cb(copyAborted(AdditionalSense.UNRECOVERED_READ_ERROR), copied * bs);
        }
        d.lock.acquire(dstLba, n, false, (wh) => {
          d.writeBlocks(buf, 0, n * bs, dstLba * bs, false, (werr) => {
            d.lock.release(wh);
            if (werr) {
              s.pool.release(buf);
              return cb(copyAborted(AdditionalSense.WRITE_ERROR), copied * bs);
            }
            copied += n;
            step();
          });
        });
      });
    });
  };
  step();
}

/** RECEIVE COPY RESULTS: COPY STATUS (00h) and OPERATING PARAMETERS (03h). */
export function receiveCopyResults(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  const sa = cdb[1] & 0x1f;
  const alloc = cdb.readUInt32BE(10);
  let data: Buffer;
  if (sa === 0x00) {
    const held = lu.copyResults.get(cmd.nexus.key);
    const r = held?.get(cdb[2]);
    if (held === undefined || r === undefined) throw invalidCdb(2);
    held.delete(cdb[2]);
    data = Buffer.alloc(12);
    data.writeUInt32BE(8, 0);
    data[4] = r.status & 0x7f; // HDD 0
    data.writeUInt16BE(Math.min(r.segmentsProcessed, 0xffff), 5);
    // TRANSFER COUNT UNITS: 00h bytes, then KiB, MiB... — the smallest unit the count fits in.
    let units = 0;
    let count = r.bytes;
    while (count > 0xffffffff && units < 6) {
      count = Math.ceil(count / 1024);
      units++;
    }
    data[7] = units;
    data.writeUInt32BE(count, 8);
  } else if (sa === 0x03) {
    const implemented = [SEGMENT_BLOCK_TO_BLOCK, TARGET_DESCRIPTOR_IDENTIFICATION];
    data = Buffer.alloc(44 + implemented.length);
    data.writeUInt32BE(data.length - 4, 0);
    data[4] = 0x01; // SNLID: LIST ID USAGE 11b supported
    data.writeUInt16BE(COPY_LIMITS.maxTargetDescriptors, 8);
    data.writeUInt16BE(COPY_LIMITS.maxSegmentDescriptors, 10);
    data.writeUInt32BE(COPY_LIMITS.maxDescriptorListLength, 12);
    data.writeUInt32BE(0xffff * lu.blockSize, 16); // MAXIMUM SEGMENT LENGTH (bytes)
    data.writeUInt32BE(0, 20); // MAXIMUM INLINE DATA LENGTH
    data.writeUInt32BE(0, 24); // HELD DATA LIMIT
    data.writeUInt32BE(0, 28); // MAXIMUM STREAM DEVICE TRANSFER SIZE
    data.writeUInt16BE(COPY_LIMITS.totalConcurrentCopies, 34);
    data[36] = COPY_LIMITS.totalConcurrentCopies;
    data[37] = 31 - Math.clz32(lu.blockSize); // DATA SEGMENT GRANULARITY (log2)
    data[43] = implemented.length;
    Buffer.from(implemented).copy(data, 44);
  } else {
    throw invalidCdb(1, 4);
  }
  done(good(allocated(data, alloc)));
}
