/**
 * Block commands (SBC-3, SBC-4): READ/WRITE 6/10/12/16, VERIFY, WRITE AND
 * VERIFY, WRITE SAME, UNMAP, GET LBA STATUS, COMPARE AND WRITE, ORWRITE,
 * WRITE ATOMIC, SYNCHRONIZE CACHE, PRE-FETCH, READ CAPACITY, READ DEFECT
 * DATA.
 *
 * Validation throws SenseError (before any I/O); I/O completes through the
 * callback. Data-In comes from the buffer pool; Data-Out is written from
 * the command's own buffer, never copied.
 */
import { ScsiOp, readLbaRange, readU64 } from '../../iscsi/cdb';
import { AdditionalSense, SenseKey } from '../../iscsi/sense';
import type { LogicalUnit } from './logical-unit';
import type { RangeHold } from './range-lock';
import {
  allocated,
  checkCondition,
  good,
  goodPooled,
  illegal,
  invalidCdb,
  invalidParam,
  ioErrorResponse,
  lbaOutOfRange,
  parameterListLengthError,
} from './response';
import type { ScsiCallback, ScsiCommand, ScsiResponse } from './types';

/** Byte offset of the TRANSFER LENGTH field, for field pointers. */
function transferLengthByte(op: number): number {
  switch (op >> 5) {
    case 0:
      return 4;
    case 5:
      return 6;
    case 4:
      return op === ScsiOp.WRITE_ATOMIC_16 ? 12 : op === ScsiOp.COMPARE_AND_WRITE ? 13 : 10;
    default:
      return 7;
  }
}

function checkTransfer(lu: LogicalUnit, cdb: Buffer, lba: number, blocks: number): void {
  lu.checkRange(lba, blocks);
  if (blocks > lu.limits.maxTransferBlocks) throw invalidCdb(transferLengthByte(cdb[0]));
}

/** FUA bit of the 10/12/16-byte READ/WRITE-style CDBs. */
function fuaOf(cdb: Buffer): boolean {
  return cdb[0] !== ScsiOp.READ_6 && cdb[0] !== ScsiOp.WRITE_6 && (cdb[1] & 0x08) !== 0;
}

/** Offset of the first differing byte of a and b over `length` bytes, or -1. */
export function firstDifference(a: Buffer, aOff: number, b: Buffer, bOff: number, length: number): number {
  const STEP = 4096;
  for (let at = 0; at < length; at += STEP) {
    const n = Math.min(STEP, length - at);
    if (a.compare(b, bOff + at, bOff + at + n, aOff + at, aOff + at + n) === 0) continue;
    for (let i = 0; i < n; i++) if (a[aOff + at + i] !== b[bOff + at + i]) return at + i;
  }
  return -1;
}

function miscompare(offset: number): ScsiResponse {
  return checkCondition(SenseKey.MISCOMPARE, AdditionalSense.MISCOMPARE_DURING_VERIFY, undefined, offset);
}

// ---------------------------------------------------------------------------
// READ
// ---------------------------------------------------------------------------

export function read(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const { lba, blocks } = readLbaRange(cmd.cdb);
  checkTransfer(lu, cmd.cdb, lba, blocks);
  if (blocks === 0) return done(good());
  const bs = lu.blockSize;
  const len = blocks * bs;
  lu.lock.acquire(lba, blocks, false, (hold) => {
    const buf = lu.pool.acquire(len);
    lu.backstore.read(buf, 0, len, lba * bs, (err) => {
      lu.lock.release(hold);
      if (err) {
        lu.pool.release(buf);
        return done(ioErrorResponse(err, false));
      }
      done(goodPooled(buf, len, lu.giveBuffer));
    });
  });
}

// ---------------------------------------------------------------------------
// WRITE, WRITE AND VERIFY
// ---------------------------------------------------------------------------

/** Data-Out bytes a block write CDB calls for. */
export function writeDataOutLength(lu: LogicalUnit, cdb: Buffer): number {
  return readLbaRange(cdb).blocks * lu.blockSize;
}

/**
 * WRITE(6/10/12/16) and WRITE AND VERIFY(10/12/16). With less Data-Out than
 * the CDB asks for (ExpectedDataTransferLength too small) the whole blocks
 * received are written, a trailing partial block is not, and the status is
 * GOOD: the transport's overflow residual tells the initiator what was
 * missing. (libiscsi's iSCSIResiduals.Write*Residuals check exactly this,
 * and its reservation tests write 512 bytes to 4096-byte-block LUNs.)
 */
export function write(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  lu.checkWritable();
  const { lba, blocks } = readLbaRange(cdb);
  checkTransfer(lu, cdb, lba, blocks);
  const bs = lu.blockSize;
  const data = cmd.dataOut;
  const have = data === null ? 0 : data.length;
  const len = Math.min(blocks * bs, have - (have % bs));
  if (len === 0 || data === null) return done(good());
  const verify = cdb[0] === ScsiOp.WRITE_AND_VERIFY_10 || cdb[0] === ScsiOp.WRITE_AND_VERIFY_12 || cdb[0] === ScsiOp.WRITE_AND_VERIFY_16;
  // WRITE AND VERIFY verifies what reached the medium: write it through.
  const fua = verify || fuaOf(cdb);
  const n = len / bs;
  lu.lock.acquire(lba, n, false, (hold) => {
    lu.writeBlocks(data, 0, len, lba * bs, fua, (err) => {
      lu.lock.release(hold);
      done(err ? ioErrorResponse(err, true) : good());
    });
  });
}

// ---------------------------------------------------------------------------
// VERIFY
// ---------------------------------------------------------------------------

export function verifyDataOutLength(lu: LogicalUnit, cdb: Buffer): number {
  const bytchk = (cdb[1] >> 1) & 0x03;
  if (bytchk === 1) return readLbaRange(cdb).blocks * lu.blockSize;
  if (bytchk === 3) return readLbaRange(cdb).blocks > 0 ? lu.blockSize : 0;
  return 0;
}

/** VERIFY(10/12/16): BYTCHK 00b checks the range only, 01b compares Data-Out with the medium, 11b compares one block against each. */
export function verify(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  const bytchk = (cdb[1] >> 1) & 0x03;
  if (bytchk === 2) throw invalidCdb(1, 2);
  const { lba, blocks } = readLbaRange(cdb);
  checkTransfer(lu, cdb, lba, blocks);
  if (blocks === 0 || bytchk === 0) return done(good());
  const bs = lu.blockSize;
  const len = blocks * bs;
  const want = bytchk === 1 ? len : bs;
  const data = cmd.dataOut;
  if (data === null || data.length < want) throw illegal(AdditionalSense.INVALID_FIELD_IN_INFORMATION_UNIT);
  lu.lock.acquire(lba, blocks, false, (hold) => {
    const buf = lu.pool.acquire(len);
    lu.backstore.read(buf, 0, len, lba * bs, (err) => {
      lu.lock.release(hold);
      let diff = -1;
      if (!err) {
        if (bytchk === 1) diff = firstDifference(data, 0, buf, 0, len);
        else
          for (let i = 0; i < blocks && diff < 0; i++) {
            const d = firstDifference(data, 0, buf, i * bs, bs);
            if (d >= 0) diff = i * bs + d;
          }
      }
      lu.pool.release(buf);
      if (err) return done(ioErrorResponse(err, false));
      done(diff >= 0 ? miscompare(diff) : good());
    });
  });
}

// ---------------------------------------------------------------------------
// WRITE SAME
// ---------------------------------------------------------------------------

export function writeSameDataOutLength(lu: LogicalUnit, cdb: Buffer): number {
  const ndob = cdb[0] === ScsiOp.WRITE_SAME_16 && (cdb[1] & 0x01) !== 0;
  return ndob ? 0 : lu.blockSize;
}

/** Bytes of pattern written per backstore call. */
const WRITE_SAME_CHUNK = 1 << 20;

/**
 * WRITE SAME(10/16). NUMBER OF LOGICAL BLOCKS 0 means "to the last LBA"
 * (WSNZ = 0). With UNMAP set on a thin LU the range is deallocated whatever
 * the Data-Out block holds — as LIO and tgt do, and as libiscsi's
 * WriteSame10.UnmapUntilEnd expects (it sends 0xff blocks and reads zeros
 * back when LBPRZ); without UNMAP the block is written out.
 */
export function writeSame(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  const ws16 = cdb[0] === ScsiOp.WRITE_SAME_16;
  const unmap = (cdb[1] & 0x08) !== 0;
  const ndob = ws16 && (cdb[1] & 0x01) !== 0;
  lu.checkWritable();
  if (unmap && !lu.thinProvisioned) throw invalidCdb(1, 3);
  const { lba, blocks } = readLbaRange(cdb);
  lu.checkRange(lba, 0);
  const count = blocks === 0 ? lu.numBlocks - lba : blocks;
  if (count > lu.limits.maxWriteSameBlocks) throw invalidCdb(transferLengthByte(cdb[0]));
  lu.checkRange(lba, count);
  const bs = lu.blockSize;
  const data = cmd.dataOut;
  if (!ndob && (data === null || data.length !== bs)) throw illegal(AdditionalSense.INVALID_FIELD_IN_CDB, { inCdb: true, byte: transferLengthByte(cdb[0]) });
  if (count === 0) return done(good());
  lu.lock.acquire(lba, count, false, (hold) => {
    const finish = (err: NodeJS.ErrnoException | null): void => {
      lu.lock.release(hold);
      done(err ? ioErrorResponse(err, true) : good());
    };
    if (unmap) {
      lu.backstore.unmap(lba * bs, count * bs, finish);
      return;
    }
    fillRange(lu, lba, count, ndob ? null : (data as Buffer), finish);
  });
}

/** Writes `count` blocks from `lba`, each a copy of `block` (zeros when null). */
function fillRange(lu: LogicalUnit, lba: number, count: number, block: Buffer | null, cb: (err: NodeJS.ErrnoException | null) => void): void {
  const bs = lu.blockSize;
  const perChunk = Math.max(1, Math.min(count, Math.floor(WRITE_SAME_CHUNK / bs)));
  const buf = lu.pool.acquire(perChunk * bs);
  if (block === null) buf.fill(0, 0, perChunk * bs);
  else for (let i = 0; i < perChunk; i++) block.copy(buf, i * bs, 0, bs);
  let next = lba;
  const end = lba + count;
  const step = (err: NodeJS.ErrnoException | null): void => {
    if (err || next >= end) {
      lu.pool.release(buf);
      return cb(err);
    }
    const n = Math.min(perChunk, end - next);
    const at = next;
    next += n;
    lu.writeBlocks(buf, 0, n * bs, at * bs, false, step);
  };
  step(null);
}

// ---------------------------------------------------------------------------
// UNMAP
// ---------------------------------------------------------------------------

export function unmapDataOutLength(_lu: LogicalUnit, cdb: Buffer): number {
  return cdb.readUInt16BE(7);
}

/** UNMAP (SBC-3 §5.28): every descriptor is checked before anything is deallocated. */
export function unmap(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  lu.checkWritable();
  if (!lu.thinProvisioned) throw illegal(AdditionalSense.INVALID_COMMAND_OPERATION_CODE, { inCdb: true, byte: 0, bit: 7 });
  const plen = cdb.readUInt16BE(7);
  if (plen === 0) return done(good());
  const data = cmd.dataOut;
  const have = Math.min(plen, data === null ? 0 : data.length);
  if (have < 8 || data === null) throw parameterListLengthError();
  const bddl = data.readUInt16BE(2);
  if (8 + bddl > have) throw parameterListLengthError();
  const count = Math.floor(bddl / 16);
  if (count > lu.limits.maxUnmapDescriptors) throw invalidParam(2);
  const ranges: Array<[number, number]> = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const at = 8 + 16 * i;
    const lba = readU64(data, at);
    const n = data.readUInt32BE(at + 8);
    if (lba + n > lu.numBlocks) throw lbaOutOfRange();
    total += n;
    if (total > lu.limits.maxUnmapBlocks) throw invalidParam(at + 8);
    if (n > 0) ranges.push([lba, n]);
  }
  const bs = lu.blockSize;
  let i = 0;
  const next = (err: NodeJS.ErrnoException | null): void => {
    if (err) return done(ioErrorResponse(err, true));
    if (i >= ranges.length) return done(good());
    const [lba, n] = ranges[i++];
    lu.lock.acquire(lba, n, false, (hold) => {
      lu.backstore.unmap(lba * bs, n * bs, (e) => {
        lu.lock.release(hold);
        next(e);
      });
    });
  };
  next(null);
}

// ---------------------------------------------------------------------------
// GET LBA STATUS
// ---------------------------------------------------------------------------

const GET_LBA_STATUS_WINDOW_BLOCKS = 1 << 20;
const GET_LBA_STATUS_MAX_DESCRIPTORS = 256;

/** GET LBA STATUS (SBC-3 §5.6): mapped / deallocated extents from the starting LBA. */
export function getLbaStatus(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  const lba = readU64(cdb, 2);
  const alloc = cdb.readUInt32BE(10);
  const numBlocks = lu.numBlocks;
  if (lba >= numBlocks) throw lbaOutOfRange();
  if (alloc === 0) return done(good());
  const maxDesc = Math.max(1, Math.min(GET_LBA_STATUS_MAX_DESCRIPTORS, Math.floor((alloc - 8) / 16)));
  const span = Math.min(numBlocks - lba, GET_LBA_STATUS_WINDOW_BLOCKS);
  const bs = lu.blockSize;
  const respond = (descs: Array<[number, number, number]>): void => {
    const b = Buffer.alloc(8 + 16 * descs.length);
    b.writeUInt32BE(4 + 16 * descs.length, 0);
    descs.forEach(([start, n, status], i) => {
      const at = 8 + 16 * i;
      b.writeUInt32BE(Math.floor(start / 0x1_0000_0000), at);
      b.writeUInt32BE(start >>> 0, at + 4);
      b.writeUInt32BE(n, at + 8);
      b[at + 12] = status;
    });
    done(good(allocated(b, alloc)));
  };
  if (!lu.backstore.capabilities.canReportAllocation) return respond([[lba, span, 0]]);
  lu.backstore.allocation(lba * bs, span * bs, (err, extents) => {
    if (err || !extents) return done(ioErrorResponse(err ?? new Error('no extents'), false));
    const descs: Array<[number, number, number]> = [];
    let cursor = lba;
    const end = lba + span;
    for (const e of extents) {
      if (cursor >= end || descs.length > maxDesc) break;
      const status = e.allocated ? 0 : 1;
      // A block is mapped if any byte of it is; deallocated only if all of it is.
      const eEnd = Math.min(end, e.allocated ? Math.ceil((e.offset + e.length) / bs) : Math.floor((e.offset + e.length) / bs));
      if (eEnd <= cursor) continue;
      const last = descs[descs.length - 1];
      if (last && last[2] === status && last[0] + last[1] === cursor) last[1] += eEnd - cursor;
      else descs.push([cursor, eEnd - cursor, status]);
      cursor = eEnd;
    }
    if (cursor < end && (descs.length === 0 || descs.length < maxDesc)) {
      const last = descs[descs.length - 1];
      if (last && last[2] === 0) last[1] += end - cursor;
      else descs.push([cursor, end - cursor, 0]);
    }
    respond(descs.slice(0, maxDesc));
  });
}

// ---------------------------------------------------------------------------
// COMPARE AND WRITE, ORWRITE, WRITE ATOMIC
// ---------------------------------------------------------------------------

export function compareAndWriteDataOutLength(lu: LogicalUnit, cdb: Buffer): number {
  return 2 * cdb[13] * lu.blockSize;
}

/** Reads the range under an exclusive hold and hands it to `body`, which must call `finish`. */
function exclusively(
  lu: LogicalUnit,
  lba: number,
  blocks: number,
  done: ScsiCallback,
  body: (current: Buffer, finish: (resp: ScsiResponse) => void) => void,
): void {
  const bs = lu.blockSize;
  const len = blocks * bs;
  lu.lock.acquire(lba, blocks, true, (hold: RangeHold) => {
    const buf = lu.pool.acquire(len);
    const finish = (resp: ScsiResponse): void => {
      lu.pool.release(buf);
      lu.lock.release(hold);
      done(resp);
    };
    lu.backstore.read(buf, 0, len, lba * bs, (err) => {
      if (err) return finish(ioErrorResponse(err, false));
      body(buf, finish);
    });
  });
}

/** COMPARE AND WRITE (SBC-3 §5.2): atomic against every other command on those blocks. */
export function compareAndWrite(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  lu.checkWritable();
  const lba = readU64(cdb, 2);
  const blocks = cdb[13];
  const bs = lu.blockSize;
  if (blocks > lu.limits.maxCompareAndWriteBlocks) throw invalidCdb(13);
  const data = cmd.dataOut;
  if ((data === null ? 0 : data.length) !== 2 * blocks * bs) throw invalidCdb(13);
  lu.checkRange(lba, blocks);
  if (blocks === 0 || data === null) return done(good());
  const len = blocks * bs;
  const fua = fuaOf(cdb);
  exclusively(lu, lba, blocks, done, (current, finish) => {
    const diff = firstDifference(data, 0, current, 0, len);
    if (diff >= 0) return finish(miscompare(diff));
    lu.writeBlocks(data, len, len, lba * bs, fua, (err) => finish(err ? ioErrorResponse(err, true) : good()));
  });
}

/** ORWRITE(16) (SBC-3 §5.9): medium |= Data-Out, atomically. */
export function orWrite(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  lu.checkWritable();
  const { lba, blocks } = readLbaRange(cdb);
  checkTransfer(lu, cdb, lba, blocks);
  if (blocks === 0) return done(good());
  const bs = lu.blockSize;
  const len = blocks * bs;
  const data = cmd.dataOut;
  if (data === null || data.length < len) throw illegal(AdditionalSense.INVALID_FIELD_IN_INFORMATION_UNIT);
  const fua = fuaOf(cdb);
  exclusively(lu, lba, blocks, done, (current, finish) => {
    for (let i = 0; i < len; i++) current[i] |= data[i];
    lu.writeBlocks(current, 0, len, lba * bs, fua, (err) => finish(err ? ioErrorResponse(err, true) : good()));
  });
}

/**
 * WRITE ATOMIC(16) (SBC-4 §5.48): all of it or none of it as seen by other
 * commands — the write runs under an exclusive range hold. (Power-loss
 * atomicity is the backstore's: a single pwrite.)
 */
export function writeAtomic(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  lu.checkWritable();
  const { lba, blocks } = readLbaRange(cdb);
  lu.checkRange(lba, blocks);
  if (blocks > lu.limits.maxAtomicBlocks) throw invalidCdb(12);
  if (blocks === 0) return done(good());
  const bs = lu.blockSize;
  const len = blocks * bs;
  const data = cmd.dataOut;
  if (data === null || data.length < len) throw illegal(AdditionalSense.INVALID_FIELD_IN_INFORMATION_UNIT);
  const fua = fuaOf(cdb);
  lu.lock.acquire(lba, blocks, true, (hold) => {
    lu.writeBlocks(data, 0, len, lba * bs, fua, (err) => {
      lu.lock.release(hold);
      done(err ? ioErrorResponse(err, true) : good());
    });
  });
}

// ---------------------------------------------------------------------------
// SYNCHRONIZE CACHE, PRE-FETCH
// ---------------------------------------------------------------------------

/**
 * SYNCHRONIZE CACHE(10/16): flushes the backstore. IMMED is honoured by
 * completing only once the flush has — acknowledging earlier would let a
 * crash lose data the initiator was told nothing about, so Spindle always
 * waits.
 */
export function synchronizeCache(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const { lba, blocks } = readLbaRange(cmd.cdb);
  lu.checkRange(lba, blocks);
  lu.backstore.flush((err) => done(err ? ioErrorResponse(err, true) : good()));
}

/** PRE-FETCH(10/16): GOOD once the range checks out (the page cache does the rest). */
export function preFetch(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const { lba, blocks } = readLbaRange(cmd.cdb);
  lu.checkRange(lba, blocks);
  done(good());
}

// ---------------------------------------------------------------------------
// READ CAPACITY, READ DEFECT DATA
// ---------------------------------------------------------------------------

export function readCapacity10(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  const pmi = (cdb[8] & 0x01) !== 0;
  if (!pmi && cdb.readUInt32BE(2) !== 0) throw invalidCdb(2);
  const b = Buffer.alloc(8);
  const last = lu.numBlocks - 1;
  b.writeUInt32BE(last > 0xfffffffe ? 0xffffffff : last, 0);
  b.writeUInt32BE(lu.blockSize, 4);
  done(good(b));
}

export function readCapacity16(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const alloc = cmd.cdb.readUInt32BE(10);
  const b = Buffer.alloc(32);
  const last = lu.numBlocks - 1;
  b.writeUInt32BE(Math.floor(last / 0x1_0000_0000), 0);
  b.writeUInt32BE(last >>> 0, 4);
  b.writeUInt32BE(lu.blockSize, 8);
  b[12] = 0x00; // P_TYPE 0, PROT_EN 0
  b[13] = lu.physicalBlockExponent & 0x0f; // P_I_EXPONENT 0, LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT
  b[14] = (lu.thinProvisioned ? 0x80 : 0) | (lu.lbprz ? 0x40 : 0); // LBPME, LBPRZ; LOWEST ALIGNED LBA 0
  done(good(allocated(b, alloc)));
}

/** READ DEFECT DATA(10/12): a virtual disk has no defects — an empty list in the requested format. */
export function readDefectData(_lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  const ten = cdb[0] === ScsiOp.READ_DEFECT_DATA_10;
  const flags = ten ? cdb[2] : cdb[1];
  const alloc = ten ? cdb.readUInt16BE(7) : cdb.readUInt32BE(6);
  const b = Buffer.alloc(ten ? 4 : 8);
  b[1] = flags & 0x1f; // PLISTV / GLISTV as requested (both lists are empty), DEFECT LIST FORMAT echoed
  done(good(allocated(b, alloc)));
}

