// VERIFY, WRITE AND VERIFY, COMPARE AND WRITE, ORWRITE and WRITE ATOMIC —
// libiscsi's Verify*, WriteVerify*, CompareAndWrite.*, OrWrite.* and
// WriteAtomic16.* suites, plus the atomicity the range lock gives.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryBackstore } from '../../src-main/backstore/memory';
import type { Backstore, IoCallback } from '../../src-main/backstore/types';
import { ScsiOp, cdbCompareAndWrite, cdbRead10, cdbVerify, cdbWrite10, cdbWriteAndVerify } from '../../src-main/iscsi/cdb';
import { LogicalUnit } from '../../src-main/target/scsi/logical-unit';
import { makeNexus, outcome, runScsi } from '../../src-main/target/scsi/loopback';
import { ScsiTarget } from '../../src-main/target/scsi/target';

const BS = 512;
const BLOCKS = 2048;
const LBA_OOB = 'CHECK CONDITION 05/21/00';
const INVALID_FIELD_IN_CDB = 'CHECK CONDITION 05/24/00';
const MISCOMPARE = 'CHECK CONDITION 0e/1d/00';

async function ready(backstore: Backstore = createMemoryBackstore(BLOCKS * BS)) {
  const target = new ScsiTarget();
  const lu = new LogicalUnit({ backstore, seed: 'cmp-test' });
  target.addLun(0, lu);
  const nexus = makeNexus('iqn.2024-01.test:cmp');
  const run = (cdb: Buffer, dataOut?: Buffer | null, edtl?: number) => runScsi(target, nexus, { cdb, dataOut, edtl });
  await run(Buffer.alloc(6));
  return { lu, run, target, nexus };
}

const fill = (blocks: number, byte: number): Buffer => Buffer.alloc(blocks * BS, byte);

function orWrite16(lba: number, blocks: number, flags: { protect?: number; dpo?: boolean; fua?: boolean } = {}): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = ScsiOp.ORWRITE_16;
  cdb[1] = ((flags.protect ?? 0) << 5) | (flags.dpo ? 0x10 : 0) | (flags.fua ? 0x08 : 0);
  cdb.writeUInt32BE(Math.floor(lba / 2 ** 32) >>> 0, 2);
  cdb.writeUInt32BE(lba >>> 0, 6);
  cdb.writeUInt32BE(blocks, 10);
  return cdb;
}

function writeAtomic16(lba: number, blocks: number, flags: { protect?: number; dpo?: boolean; fua?: boolean } = {}): Buffer {
  const cdb = orWrite16(lba, 0, flags);
  cdb[0] = ScsiOp.WRITE_ATOMIC_16;
  cdb.writeUInt16BE(blocks, 12);
  return cdb;
}

describe('VERIFY (Verify10/12/16.*)', () => {
  it('BYTCHK = 1 with matching data is GOOD; a flipped byte is MISCOMPARE (0e/1d/00) with its offset in INFORMATION', async () => {
    const { run } = await ready();
    const data = Buffer.from(Array.from({ length: 4 * BS }, (_, i) => i & 0xff));
    await run(cdbWrite10(10, 4), data);
    for (const size of [10, 12, 16] as const) {
      assert.equal(outcome(await run(cdbVerify(size, 10, 4, 1), data)), 'GOOD');
      const bad = Buffer.from(data);
      bad[1234] ^= 0x58;
      const r = await run(cdbVerify(size, 10, 4, 1), bad);
      assert.equal(outcome(r), MISCOMPARE);
      assert.equal(r.sense?.information, 1234n);
    }
  });

  it('BYTCHK = 0 checks the range only (Verify*.MismatchNoCmp)', async () => {
    const { run } = await ready();
    assert.equal(outcome(await run(cdbVerify(10, 0, 8, 0), null, 0)), 'GOOD');
  });

  it('BYTCHK = 3 compares one block against every block of the range', async () => {
    const { run } = await ready();
    await run(cdbWrite10(0, 3), fill(3, 0x11));
    assert.equal(outcome(await run(cdbVerify(16, 0, 3, 3), fill(1, 0x11))), 'GOOD');
    await run(cdbWrite10(2, 1), fill(1, 0x12));
    const r = await run(cdbVerify(16, 0, 3, 3), fill(1, 0x11));
    assert.deepEqual([outcome(r), r.sense?.information], [MISCOMPARE, BigInt(2 * BS)]);
  });

  it('past the end and with 0 blocks past the end is LBA OUT OF RANGE (Verify*.BeyondEol, ZeroBlocks)', async () => {
    const { run } = await ready();
    assert.equal(outcome(await run(cdbVerify(10, BLOCKS + 1, 0, 1), null, 0)), LBA_OOB);
    assert.equal(outcome(await run(cdbVerify(10, 0x80000000, 0, 1), null, 0)), LBA_OOB);
    assert.equal(outcome(await run(cdbVerify(12, BLOCKS - 1, 2, 1), fill(2, 0))), LBA_OOB);
    assert.equal(outcome(await run(cdbVerify(16, 0xffffffff, 1, 1), fill(1, 0))), LBA_OOB);
  });

  it('DPO is accepted; VRPROTECT 1..7 is INVALID FIELD IN CDB (Verify*.Dpo, VerifyProtect)', async () => {
    const { run } = await ready();
    assert.equal(outcome(await run(cdbVerify(10, 0, 1, 0, { dpo: true }), null, 0)), 'GOOD');
    for (let p = 1; p < 8; p++) assert.equal(outcome(await run(cdbVerify(10, 0, 1, 1, { protect: p }), fill(1, 0))), INVALID_FIELD_IN_CDB);
  });
});

describe('WRITE AND VERIFY (WriteVerify10/12/16.*)', () => {
  it('writes the data, durably', async () => {
    const mem = createMemoryBackstore(BLOCKS * BS);
    const fuas: boolean[] = [];
    const spy: Backstore = Object.create(mem, {
      write: {
        value(buf: Buffer, off: number, len: number, pos: number, fua: boolean, cb: IoCallback) {
          fuas.push(fua);
          mem.write(buf, off, len, pos, fua, cb);
        },
      },
    });
    const { run } = await ready(spy);
    for (const size of [10, 12, 16] as const) {
      assert.equal(outcome(await run(cdbWriteAndVerify(size, 5, 2, 1), fill(2, size))), 'GOOD');
      assert.ok((await run(cdbRead10(5, 2))).data.every((b) => b === size), '(await run(cdbRead10(5, 2))).data.every((b) => b === size)');
    }
    assert.deepEqual(fuas, [true, true, true]);
  });

  it('0 blocks is GOOD at 0 and LBA OUT OF RANGE past the end; DPO is accepted', async () => {
    const { run } = await ready();
    assert.equal(outcome(await run(cdbWriteAndVerify(10, 0, 0, 0), null, 0)), 'GOOD');
    assert.equal(outcome(await run(cdbWriteAndVerify(10, BLOCKS + 1, 0, 0), null, 0)), LBA_OOB);
    assert.equal(outcome(await run(cdbWriteAndVerify(10, 0, 1, 1, { dpo: true }), fill(1, 1))), 'GOOD');
    for (let p = 1; p < 8; p++) assert.equal(outcome(await run(cdbWriteAndVerify(16, 0, 1, 1, { protect: p }), fill(1, 1))), INVALID_FIELD_IN_CDB);
  });
});

describe('COMPARE AND WRITE (CompareAndWrite.*)', () => {
  it('writes the second half when the first half matches the medium', async () => {
    const { run } = await ready();
    for (const n of [1, 2, 17, 255]) {
      await run(cdbWrite10(0, n), fill(n, 0x41));
      const r = await run(cdbCompareAndWrite(0, n), Buffer.concat([fill(n, 0x41), fill(n, 0x42)]));
      assert.equal(outcome(r), 'GOOD', `${n} blocks`);
      assert.ok((await run(cdbRead10(0, n))).data.every((b) => b === 0x42), '(await run(cdbRead10(0, n))).data.every((b) => b === 0x42)');
    }
  });

  it('a miscompare writes nothing and reports the offset of the first differing byte', async () => {
    const { run } = await ready();
    await run(cdbWrite10(BLOCKS - 3, 3), fill(3, 0x41));
    const cmp = fill(3, 0x41);
    cmp[3 * BS - 27] = 0x43;
    const r = await run(cdbCompareAndWrite(BLOCKS - 3, 3), Buffer.concat([cmp, fill(3, 0x42)]));
    assert.equal(outcome(r), MISCOMPARE);
    assert.equal(r.sense?.information, BigInt(3 * BS - 27));
    assert.ok((await run(cdbRead10(BLOCKS - 3, 3))).data.every((b) => b === 0x41), 'unchanged');
  });

  it('Data-Out other than 2 x NUMBER OF LOGICAL BLOCKS blocks is ILLEGAL REQUEST (InvalidDataOutSize; 256 blocks wraps to 0)', async () => {
    const { run } = await ready();
    const data = fill(4, 0xa6);
    assert.equal((await run(cdbCompareAndWrite(0, 1), data)).sense?.key, 5);
    assert.equal((await run(cdbCompareAndWrite(0, 3), data)).sense?.key, 5);
    assert.equal(outcome(await run(cdbCompareAndWrite(0, 0), fill(512, 0x41))), INVALID_FIELD_IN_CDB, 'NUMBER OF LOGICAL BLOCKS 0 with data');
    assert.equal(outcome(await run(cdbCompareAndWrite(0, 0), null, 0)), 'GOOD', 'NUMBER OF LOGICAL BLOCKS 0, no data');
  });

  it('DPO and FUA are accepted; WRPROTECT is INVALID FIELD IN CDB; past the end is LBA OUT OF RANGE', async () => {
    const { run } = await ready();
    const data = Buffer.concat([fill(1, 0), fill(1, 0)]);
    assert.equal(outcome(await run(cdbCompareAndWrite(0, 1, { dpo: true, fua: true }), data)), 'GOOD');
    assert.equal(outcome(await run(cdbCompareAndWrite(0, 1, { protect: 1 }), data)), INVALID_FIELD_IN_CDB);
    assert.equal(outcome(await run(cdbCompareAndWrite(BLOCKS, 1), data)), LBA_OOB);
  });

  it('is atomic: a WRITE to the same block issued during the compare waits for it', async () => {
    const mem = createMemoryBackstore(BLOCKS * BS);
    // Reads take a while, so the WRITE arrives between the CAW's read and its write.
    const slow: Backstore = Object.create(mem, {
      read: {
        value(buf: Buffer, off: number, len: number, pos: number, cb: IoCallback) {
          setTimeout(() => mem.read(buf, off, len, pos, cb), 20);
        },
      },
    });
    const { run } = await ready(slow);
    await run(cdbWrite10(7, 1), fill(1, 0x41));
    const caw = run(cdbCompareAndWrite(7, 1), Buffer.concat([fill(1, 0x41), fill(1, 0x42)]));
    await new Promise((r) => setTimeout(r, 5));
    const wr = run(cdbWrite10(7, 1), fill(1, 0x43));
    assert.equal(outcome(await caw), 'GOOD');
    assert.equal(outcome(await wr), 'GOOD');
    assert.ok((await run(cdbRead10(7, 1))).data.every((b) => b === 0x43), 'the WRITE landed after the CAW, not inside it');
  });

  it('two racing COMPARE AND WRITEs with the same compare data: exactly one wins', async () => {
    const mem = createMemoryBackstore(BLOCKS * BS);
    const slow: Backstore = Object.create(mem, {
      read: {
        value(buf: Buffer, off: number, len: number, pos: number, cb: IoCallback) {
          setTimeout(() => mem.read(buf, off, len, pos, cb), 5);
        },
      },
    });
    const { run } = await ready(slow);
    await run(cdbWrite10(0, 1), fill(1, 0));
    const results = await Promise.all([
      run(cdbCompareAndWrite(0, 1), Buffer.concat([fill(1, 0), fill(1, 1)])),
      run(cdbCompareAndWrite(0, 1), Buffer.concat([fill(1, 0), fill(1, 2)])),
    ]);
    assert.deepEqual(results.map(outcome).sort(), ['CHECK CONDITION 0e/1d/00', 'GOOD']);
  });
});

describe('ORWRITE (OrWrite.*)', () => {
  it('ORs the Data-Out into the medium', async () => {
    const { run } = await ready();
    await run(cdbWrite10(0, 4), fill(4, 0));
    assert.equal(outcome(await run(orWrite16(0, 4), fill(4, 0xa5))), 'GOOD');
    assert.ok((await run(cdbRead10(0, 4))).data.every((b) => b === 0xa5), '(await run(cdbRead10(0, 4))).data.every((b) => b === 0xa5)');
    assert.equal(outcome(await run(orWrite16(0, 4), fill(4, 0x5a))), 'GOOD');
    assert.ok((await run(cdbRead10(0, 4))).data.every((b) => b === 0xff), '(await run(cdbRead10(0, 4))).data.every((b) => b === 0xff)');
  });

  it('0 blocks, past the end, 2^63 and -1 (OrWrite.ZeroBlocks, BeyondEol)', async () => {
    const { run } = await ready();
    assert.equal(outcome(await run(orWrite16(0, 0), null, 0)), 'GOOD');
    assert.equal(outcome(await run(orWrite16(BLOCKS + 1, 0), null, 0)), LBA_OOB);
    const hi = orWrite16(0, 1);
    hi.writeUInt32BE(0x80000000, 2);
    assert.equal(outcome(await run(hi, fill(1, 1))), LBA_OOB);
    assert.equal(outcome(await run(orWrite16(BLOCKS - 1, 2), fill(2, 1))), LBA_OOB);
  });

  it('DPO/FUA accepted, ORPROTECT refused', async () => {
    const { run } = await ready();
    assert.equal(outcome(await run(orWrite16(0, 1, { dpo: true, fua: true }), fill(1, 1))), 'GOOD');
    assert.equal(outcome(await run(orWrite16(0, 1, { protect: 3 }), fill(1, 1))), INVALID_FIELD_IN_CDB);
  });
});

describe('WRITE ATOMIC(16) (WriteAtomic16.*)', () => {
  it('writes up to 256 blocks at the start and the end', async () => {
    const { run } = await ready();
    for (const n of [1, 8, 256]) {
      assert.equal(outcome(await run(writeAtomic16(0, n), fill(n, n - 1))), 'GOOD');
      assert.ok((await run(cdbRead10(0, n))).data.every((b) => b === n - 1), `${n} blocks at LBA 0`);
      assert.equal(outcome(await run(writeAtomic16(BLOCKS - n, n), fill(n, 3))), 'GOOD');
    }
  });

  it('past the end is LBA OUT OF RANGE even when also longer than the atomic limit', async () => {
    const { run } = await ready();
    assert.equal(outcome(await run(writeAtomic16(BLOCKS - 256, 512), fill(512, 0))), LBA_OOB);
    assert.equal(outcome(await run(writeAtomic16(BLOCKS + 1, 0), null, 0)), LBA_OOB);
    assert.equal(outcome(await run(writeAtomic16(0, 0), null, 0)), 'GOOD');
  });

  it('WRPROTECT and a non-zero ATOMIC BOUNDARY are INVALID FIELD IN CDB', async () => {
    const { run } = await ready();
    for (let p = 1; p < 8; p++) assert.equal(outcome(await run(writeAtomic16(0, 1, { protect: p }), fill(1, 0))), INVALID_FIELD_IN_CDB);
    const cdb = writeAtomic16(0, 1);
    cdb.writeUInt16BE(4, 10);
    assert.equal(outcome(await run(cdb, fill(1, 0))), INVALID_FIELD_IN_CDB);
  });
});
