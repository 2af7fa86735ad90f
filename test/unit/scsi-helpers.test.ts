// The pieces under the command handlers: sense data and CDB helpers shared
// with the initiator, the buffer pool, the LBA range lock, residuals.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cdbRead10, cdbRead16, cdbRead6, cdbWriteSame16, decodeLun, encodeLun, readLbaRange, readU64 } from '../../src-main/iscsi/cdb';
import { AdditionalSense, SenseKey, buildDescriptorSense, buildFixedSense, describeSense, parseSense } from '../../src-main/iscsi/sense';
import { BufferPool } from '../../src-main/target/scsi/buffer-pool';
import { RangeLock, type RangeHold } from '../../src-main/target/scsi/range-lock';
import { residualOf } from '../../src-main/target/scsi/residual';
import { makeNexus } from '../../src-main/target/scsi/loopback';

describe('sense data', () => {
  it('fixed format: response code 70h, key, ASC/ASCQ, INFORMATION with VALID, field pointer with SKSV', () => {
    const b = buildFixedSense({ key: SenseKey.ILLEGAL_REQUEST, code: AdditionalSense.INVALID_FIELD_IN_CDB, information: 0x1234, field: { inCdb: true, byte: 2, bit: 5 } });
    assert.equal(b.length, 18);
    assert.equal(b[0], 0xf0);
    assert.equal(b[2], 0x05);
    assert.equal(b.readUInt32BE(3), 0x1234);
    assert.equal(b[7], 10);
    assert.deepEqual([b[12], b[13]], [0x24, 0x00]);
    assert.equal(b[15], 0x80 | 0x40 | 0x08 | 5);
    assert.equal(b.readUInt16BE(16), 2);
  });

  it('round-trips through parseSense in both formats', () => {
    const spec = { key: SenseKey.MISCOMPARE, code: AdditionalSense.MISCOMPARE_DURING_VERIFY, information: 777, field: { inCdb: false, byte: 9 } };
    for (const buf of [buildFixedSense(spec), buildDescriptorSense(spec)]) {
      const p = parseSense(buf);
      assert.ok(p !== null, 'parsed');
      assert.deepEqual([p.key, p.asc, p.ascq, p.information, p.field], [0x0e, 0x1d, 0x00, 777n, { inCdb: false, byte: 9 }]);
    }
    assert.equal(parseSense(buildDescriptorSense(spec))?.descriptor, true);
  });

  it('an INFORMATION value above 32 bits is carried only by the descriptor format', () => {
    assert.equal(buildFixedSense({ key: 5, code: 0x2100, information: 2 ** 40 })[0], 0x70, 'VALID clear');
    assert.equal(parseSense(buildDescriptorSense({ key: 5, code: 0x2100, information: 2n ** 40n }))?.information, 2n ** 40n);
  });

  it('parseSense rejects what is not sense data and tolerates truncation', () => {
    assert.equal(parseSense(Buffer.from([0x00, 0x00, 0x05])), null);
    assert.equal(parseSense(null), null);
    const short = parseSense(buildFixedSense({ key: 6, code: 0x2900 }).subarray(0, 8));
    assert.deepEqual([short?.key, short?.code], [6, 0]);
  });

  it('describeSense names keys and codes', () => {
    assert.equal(describeSense(5, 0x2100), 'ILLEGAL_REQUEST/LBA_OUT_OF_RANGE (05/21/00)');
    assert.equal(describeSense(9, 0x8001), 'VENDOR_SPECIFIC/ASC_80_01 (09/80/01)');
  });
});

describe('CDB helpers', () => {
  it('encodes and decodes single-level LUNs (peripheral below 256, flat space above)', () => {
    for (const lun of [0, 1, 255, 256, 1000, 16383]) assert.equal(decodeLun(encodeLun(lun)), lun);
    assert.deepEqual([...encodeLun(5)], [0, 5, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...encodeLun(300)], [0x41, 0x2c, 0, 0, 0, 0, 0, 0]);
    assert.equal(decodeLun(Buffer.from([0, 1, 0, 2, 0, 0, 0, 0])), -1, 'a second level is not ours');
    assert.equal(decodeLun(Buffer.from([0x80, 1, 0, 0, 0, 0, 0, 0])), -1);
    assert.throws(() => encodeLun(16384), RangeError);
  });

  it('reads LBA and transfer length of each layout; READ(6) length 0 is 256; 64-bit LBAs past 2^53 are Infinity', () => {
    assert.deepEqual(readLbaRange(cdbRead6(0x12345, 0)), { lba: 0x12345, blocks: 256 });
    assert.deepEqual(readLbaRange(cdbRead10(0xfffffffe, 9)), { lba: 0xfffffffe, blocks: 9 });
    assert.deepEqual(readLbaRange(cdbRead16(2 ** 40 + 3, 70000)), { lba: 2 ** 40 + 3, blocks: 70000 });
    assert.deepEqual(readLbaRange(cdbWriteSame16(12, 0)), { lba: 12, blocks: 0 });
    const huge = Buffer.alloc(8, 0xff);
    assert.equal(readU64(huge, 0), Infinity);
    assert.equal(readU64(Buffer.from([0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 0), 2 ** 53 - 1);
  });
});

describe('buffer pool', () => {
  it('hands back buffers of the next power of two and reuses released ones', () => {
    const pool = new BufferPool();
    const a = pool.acquire(5000);
    assert.equal(a.length, 8192);
    pool.release(a);
    assert.equal(pool.retainedBytes, 8192);
    assert.equal(pool.acquire(8000), a, 'same buffer again');
    assert.equal(pool.retainedBytes, 0);
    assert.equal(pool.acquire(100).length, 4096, 'smallest class is 4 KiB');
  });

  it('ignores foreign buffers and respects its limits', () => {
    const pool = new BufferPool({ maxRetainedBytes: 16384, maxPerClass: 1 });
    pool.release(Buffer.alloc(3000));
    pool.release(Buffer.allocUnsafeSlow(8192).subarray(0, 4096));
    assert.equal(pool.retainedBytes, 0);
    pool.release(pool.acquire(8192));
    pool.release(Buffer.allocUnsafeSlow(8192));
    assert.equal(pool.retainedBytes, 8192, 'one per class');
    pool.release(pool.acquire(16384));
    assert.equal(pool.retainedBytes, 8192, 'over the byte limit');
    const big = pool.acquire(64 << 20);
    assert.equal(big.length, 64 << 20, 'above the largest class: exact, unpooled');
    pool.trim();
    assert.equal(pool.retainedBytes, 0);
  });
});

describe('range lock', () => {
  it('shared holds overlap; an exclusive hold waits for them and blocks later overlapping ones, in order', () => {
    const lock = new RangeLock();
    const log: string[] = [];
    const holds: Record<string, RangeHold> = {};
    const take = (name: string, lba: number, n: number, ex: boolean) =>
      lock.acquire(lba, n, ex, (h) => {
        log.push(name);
        holds[name] = h;
      });
    take('r1', 0, 10, false);
    take('r2', 5, 10, false);
    take('x', 8, 4, true);
    take('r3', 9, 1, false);
    take('r4', 100, 1, false);
    assert.deepEqual(log, ['r1', 'r2', 'r4'], 'x waits for r1 and r2; r3 queues behind x; r4 is elsewhere');
    lock.release(holds.r1);
    assert.deepEqual(log, ['r1', 'r2', 'r4']);
    lock.release(holds.r2);
    assert.deepEqual(log, ['r1', 'r2', 'r4', 'x']);
    lock.release(holds.x);
    assert.deepEqual(log, ['r1', 'r2', 'r4', 'x', 'r3']);
    lock.release(holds.r3);
    lock.release(holds.r4);
    assert.deepEqual([lock.activeCount, lock.waitingCount], [0, 0]);
  });

  it('exclusive holds on disjoint ranges do not wait for each other', () => {
    const lock = new RangeLock();
    let granted = 0;
    lock.acquire(0, 1, true, () => granted++);
    lock.acquire(1, 1, true, () => granted++);
    assert.equal(granted, 2);
  });
});

describe('residuals', () => {
  const nexus = makeNexus('iqn.2024-01.test:res');
  const cmd = (edtl: number) => ({ lun: 0, cdb: Buffer.alloc(10), nexus, dataOut: null, expectedDataTransferLength: edtl, taskAttribute: 1 });
  it('Data-In shorter than EDTL is an underflow; longer is an overflow and is trimmed', () => {
    assert.deepEqual(residualOf(cmd(100), { status: 0, data: Buffer.alloc(60), sense: null }), { overflow: false, underflow: true, count: 40, dataInLength: 60 });
    assert.deepEqual(residualOf(cmd(100), { status: 0, data: Buffer.alloc(160), sense: null }), { overflow: true, underflow: false, count: 60, dataInLength: 100 });
    assert.deepEqual(residualOf(cmd(0), { status: 0, data: null, sense: null }), { overflow: false, underflow: false, count: 0, dataInLength: 0 });
  });
  it('for Data-Out the CDB length (dataOutLength) is compared with EDTL', () => {
    assert.deepEqual(residualOf(cmd(10000), { status: 0, data: null, sense: null, dataOutLength: 512 }), { overflow: false, underflow: true, count: 9488, dataInLength: 0 });
    assert.deepEqual(residualOf(cmd(0), { status: 0, data: null, sense: null, dataOutLength: 512 }), { overflow: true, underflow: false, count: 512, dataInLength: 0 });
  });
});
