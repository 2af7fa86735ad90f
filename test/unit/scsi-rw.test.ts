// READ/WRITE 6/10/12/16 against a real memory backstore, mirroring what
// libiscsi's iscsi-test-cu Read*/Write*/iSCSIResiduals suites check.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryBackstore } from '../../src-main/backstore/memory';
import type { Backstore } from '../../src-main/backstore/types';
import { cdbRead10, cdbRead12, cdbRead16, cdbRead6, cdbWrite10, cdbWrite12, cdbWrite16, cdbWrite6, ScsiOp } from '../../src-main/iscsi/cdb';
import { LogicalUnit } from '../../src-main/target/scsi/logical-unit';
import { makeNexus, outcome, runScsi } from '../../src-main/target/scsi/loopback';
import { ScsiTarget } from '../../src-main/target/scsi/target';

const BS = 512;
const BLOCKS = 4096;
const LBA_OOB = 'CHECK CONDITION 05/21/00';
const INVALID_FIELD_IN_CDB = 'CHECK CONDITION 05/24/00';

function setup(opts: { backstore?: Backstore } = {}) {
  const backstore = opts.backstore ?? createMemoryBackstore(BLOCKS * BS);
  const target = new ScsiTarget();
  const lu = new LogicalUnit({ backstore, seed: 'rw-test' });
  target.addLun(0, lu);
  const nexus = makeNexus('iqn.2024-01.test:init');
  const run = (cdb: Buffer, dataOut?: Buffer | null, edtl?: number) => runScsi(target, nexus, { cdb, dataOut, edtl });
  return { target, lu, backstore, nexus, run };
}

/** A set-up LU whose POWER ON unit attention has been consumed. */
async function ready(opts: { backstore?: Backstore } = {}) {
  const s = setup(opts);
  const first = await s.run(Buffer.from([0, 0, 0, 0, 0, 0]));
  assert.equal(outcome(first), 'CHECK CONDITION 06/29/00', 'first command from a nexus reports POWER ON');
  return s;
}

function pattern(blocks: number, seed: number): Buffer {
  const b = Buffer.alloc(blocks * BS);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

describe('READ / WRITE data path', () => {
  it('WRITE(10) then READ(10) returns the written blocks', async () => {
    const { run } = await ready();
    const data = pattern(8, 1);
    assert.equal(outcome(await run(cdbWrite10(100, 8), data)), 'GOOD');
    const r = await run(cdbRead10(100, 8));
    assert.equal(outcome(r), 'GOOD');
    assert.deepEqual(r.data, data);
  });

  it('every READ/WRITE size (6/10/12/16) reaches the same blocks', async () => {
    const { run } = await ready();
    const writes = [cdbWrite6, cdbWrite10, cdbWrite12, cdbWrite16];
    const reads = [cdbRead6, cdbRead10, cdbRead12, cdbRead16];
    for (let w = 0; w < 4; w++) {
      const lba = 10 + 10 * w;
      const data = pattern(2, w + 10);
      assert.equal(outcome(await run(writes[w](lba, 2), data)), 'GOOD');
      for (const readCdb of reads) assert.deepEqual((await run(readCdb(lba, 2))).data, data, `write size #${w}, read 0x${readCdb(0, 1)[0].toString(16)}`);
    }
  });

  it('READ(6) with TRANSFER LENGTH 0 reads 256 blocks', async () => {
    const { run } = await ready();
    const r = await run(cdbRead6(0, 0));
    assert.equal(outcome(r), 'GOOD');
    assert.equal(r.data.length, 256 * BS);
  });

  it('READ(10/12/16) with TRANSFER LENGTH 0 is GOOD and moves no data', async () => {
    const { run } = await ready();
    for (const cdb of [cdbRead10(0, 0), cdbRead12(0, 0), cdbRead16(0, 0)]) {
      const r = await run(cdb);
      assert.equal(outcome(r), 'GOOD');
      assert.equal(r.data.length, 0);
    }
  });

  it('WRITE(10) of 0 blocks is GOOD at LBA 0 and LBA OUT OF RANGE (05/21/00) past the end', async () => {
    const { run } = await ready();
    assert.equal(outcome(await run(cdbWrite10(0, 0), null, 0)), 'GOOD');
    assert.equal(outcome(await run(cdbWrite10(BLOCKS + 1, 0), null, 0)), LBA_OOB);
    assert.equal(outcome(await run(cdbWrite10(0x80000000, 0), null, 0)), LBA_OOB);
    assert.equal(outcome(await run(cdbWrite10(0xffffffff, 0), null, 0)), LBA_OOB);
  });
});

describe('LBA range checks (Read*.BeyondEol, Write*.BeyondEol)', () => {
  it('READ(10) past the last LBA returns LBA OUT OF RANGE (05/21/00)', async () => {
    const { run } = await ready();
    for (let i = 1; i <= 4; i++) assert.equal(outcome(await run(cdbRead10(BLOCKS + 1 - i, i))), LBA_OOB, `${i} blocks one past the end`);
    assert.equal(outcome(await run(cdbRead10(BLOCKS - 1, 2))), LBA_OOB, 'all but one block beyond the end');
    assert.equal(outcome(await run(cdbRead10(0x80000000, 1))), LBA_OOB);
    assert.equal(outcome(await run(cdbRead10(0xffffffff, 1))), LBA_OOB);
    assert.equal(outcome(await run(cdbRead10(BLOCKS - 1, 1))), 'GOOD', 'the last block itself');
  });

  it('READ(16) at 2^63, 2^(64-log2(bs)), 2^(63-log2(bs)) and -1 returns LBA OUT OF RANGE', async () => {
    const { run } = await ready();
    const big = (hi: number, lo = 0): Buffer => {
      const cdb = cdbRead16(0, 1);
      cdb.writeUInt32BE(hi >>> 0, 2);
      cdb.writeUInt32BE(lo >>> 0, 6);
      return cdb;
    };
    assert.equal(outcome(await run(big(0x80000000))), LBA_OOB);
    assert.equal(outcome(await run(big(2 ** (64 - 9 - 32)))), LBA_OOB, '2^55 * 512 overflows 64 bits');
    assert.equal(outcome(await run(big(2 ** (63 - 9 - 32)))), LBA_OOB);
    assert.equal(outcome(await run(big(0xffffffff, 0xffffffff))), LBA_OOB);
  });

  it('READ(6) at LBA 0x1fffff is LBA OUT OF RANGE', async () => {
    const { run } = await ready();
    assert.equal(outcome(await run(cdbRead6(0x1fffff, 1))), LBA_OOB);
  });

  it('WRITE(16) past the end is refused before anything is written', async () => {
    const { run } = await ready();
    const data = pattern(2, 5);
    assert.equal(outcome(await run(cdbWrite16(BLOCKS - 1, 2), data)), LBA_OOB);
    const r = await run(cdbRead16(BLOCKS - 1, 1));
    assert.ok(r.data.every((b) => b === 0), 'the last block was not touched');
  });

  it('a transfer above MAXIMUM TRANSFER LENGTH is INVALID FIELD IN CDB pointing at TRANSFER LENGTH', async () => {
    const { run, lu } = await ready({ backstore: createMemoryBackstore(64 * 1024 * 1024) });
    const r = await run(cdbRead16(0, lu.limits.maxTransferBlocks + 1));
    assert.equal(outcome(r), INVALID_FIELD_IN_CDB);
    assert.equal(r.sense?.field?.byte, 10);
    assert.equal(r.sense?.field?.inCdb, true);
  });
});

describe('CDB flags (Read*.RdProtect, Write*.WrProtect, DpoFua, Write10.Flags)', () => {
  it('non-zero RDPROTECT / WRPROTECT without protection information is INVALID FIELD IN CDB with a field pointer at byte 1', async () => {
    const { run } = await ready();
    for (let p = 1; p < 8; p++) {
      const r = await run(cdbRead10(0, 1, { protect: p }));
      assert.equal(outcome(r), INVALID_FIELD_IN_CDB, `RDPROTECT ${p}`);
      assert.deepEqual(r.sense?.field, { inCdb: true, byte: 1, bit: 7 - (Math.clz32(p) - 29) });
      assert.equal(outcome(await run(cdbWrite16(0, 1, { protect: p }), pattern(1, 0))), INVALID_FIELD_IN_CDB, `WRPROTECT ${p}`);
      assert.equal(outcome(await run(cdbRead12(0, 1, { protect: p }))), INVALID_FIELD_IN_CDB);
    }
  });

  it('DPO and FUA are accepted on reads and writes (MODE SENSE reports DPOFUA)', async () => {
    const { run } = await ready();
    for (const f of [{ dpo: true }, { fua: true }, { dpo: true, fua: true }]) {
      assert.equal(outcome(await run(cdbRead10(0, 1, f))), 'GOOD');
      assert.equal(outcome(await run(cdbWrite10(0, 1, f), pattern(1, 1))), 'GOOD');
      assert.equal(outcome(await run(cdbWrite16(0, 1, f), pattern(1, 1))), 'GOOD');
    }
  });

  it('the obsolete FUA_NV bit and any GROUP NUMBER are ignored (Write10.Flags)', async () => {
    const { run } = await ready();
    const cdb = cdbWrite10(0, 1, { fua: true, group: 3 });
    cdb[1] |= 0x02;
    assert.equal(outcome(await run(cdb, pattern(1, 2))), 'GOOD');
  });

  it('a set NACA bit in the control byte is INVALID FIELD IN CDB (no ACA support)', async () => {
    const { run } = await ready();
    const cdb = cdbRead10(0, 1);
    cdb[9] = 0x04;
    const r = await run(cdb);
    assert.equal(outcome(r), INVALID_FIELD_IN_CDB);
    assert.deepEqual(r.sense?.field, { inCdb: true, byte: 9, bit: 2 });
  });

  it('FUA makes the write durable before status: the backstore is asked for a FUA write', async () => {
    const base = createMemoryBackstore(BLOCKS * BS);
    const fuas: boolean[] = [];
    const spy: Backstore = Object.create(base, {
      write: {
        value(buf: Buffer, off: number, len: number, pos: number, fua: boolean, cb: (e: NodeJS.ErrnoException | null) => void) {
          fuas.push(fua);
          base.write(buf, off, len, pos, fua, cb);
        },
      },
    });
    const { run } = await ready({ backstore: spy });
    await run(cdbWrite10(0, 1), pattern(1, 0));
    await run(cdbWrite10(0, 1, { fua: true }), pattern(1, 0));
    assert.deepEqual(fuas, [false, true]);
  });
});

describe('Data-Out of the wrong length (iSCSIResiduals.Write*Residuals)', () => {
  it('WRITE(10) of 1 block with no Data-Out (EDTL 0) is GOOD with a residual overflow of one block', async () => {
    const { run } = await ready();
    const r = await run(cdbWrite10(0, 1), null, 0);
    assert.equal(outcome(r), 'GOOD');
    assert.deepEqual([r.residual.overflow, r.residual.count], [true, BS]);
  });

  it('WRITE(10) of 1 block with 10000 bytes of Data-Out writes one block and reports an underflow of 10000 - 512', async () => {
    const { run } = await ready();
    const data = Buffer.alloc(10000, 0xa6);
    const r = await run(cdbWrite10(0, 1), data);
    assert.equal(outcome(r), 'GOOD');
    assert.deepEqual([r.residual.underflow, r.residual.count], [true, 10000 - BS]);
    const back = await run(cdbRead10(0, 2));
    assert.ok(back.data.subarray(0, BS).every((b) => b === 0xa6), 'back.data.subarray(0, BS).every((b) => b === 0xa6)');
    assert.ok(back.data.subarray(BS).every((b) => b === 0), 'nothing past the one block');
  });

  it('WRITE(10) of 1 block with 200 bytes is GOOD, writes nothing, and reports an overflow of 312', async () => {
    const { run } = await ready();
    const r = await run(cdbWrite10(0, 1), Buffer.alloc(200, 1));
    assert.equal(outcome(r), 'GOOD');
    assert.deepEqual([r.residual.overflow, r.residual.count], [true, BS - 200]);
    assert.ok((await run(cdbRead10(0, 1))).data.every((b) => b === 0), 'no partial block written');
  });

  it('WRITE(10) of 2 blocks with one block of Data-Out writes only the first block (overflow 512)', async () => {
    const { run } = await ready();
    await run(cdbWrite10(0, 2), Buffer.alloc(2 * BS, 0x61));
    const r = await run(cdbWrite10(0, 2), Buffer.alloc(BS, 0x62));
    assert.equal(outcome(r), 'GOOD');
    assert.deepEqual([r.residual.overflow, r.residual.count], [true, BS]);
    const back = await run(cdbRead10(0, 2));
    assert.ok(back.data.subarray(0, BS).every((b) => b === 0x62), 'first block written');
    assert.ok(back.data.subarray(BS).every((b) => b === 0x61), 'second block untouched');
  });

  it('WRITE(10) of 1 block with 2 blocks of Data-Out leaves the second block alone (underflow 512)', async () => {
    const { run } = await ready();
    await run(cdbWrite10(0, 2), Buffer.alloc(2 * BS, 0x61));
    const r = await run(cdbWrite10(0, 1), Buffer.alloc(2 * BS, 0x62));
    assert.deepEqual([outcome(r), r.residual.underflow, r.residual.count], ['GOOD', true, BS]);
    const back = await run(cdbRead10(0, 2));
    assert.ok(back.data.subarray(BS).every((b) => b === 0x61), 'back.data.subarray(BS).every((b) => b === 0x61)');
  });

  it('READ(10) of 1 block with EDTL 200 sends 200 bytes and reports an overflow of 312; EDTL 10000 an underflow', async () => {
    const { run } = await ready();
    const short = await run(cdbRead10(0, 1), null, 200);
    assert.deepEqual([outcome(short), short.data.length, short.residual.overflow, short.residual.count], ['GOOD', 200, true, BS - 200]);
    const long = await run(cdbRead10(0, 1), null, 10000);
    assert.deepEqual([long.data.length, long.residual.underflow, long.residual.count], [BS, true, 10000 - BS]);
    const none = await run(cdbRead10(0, 1), null, 0);
    assert.deepEqual([outcome(none), none.data.length, none.residual.overflow, none.residual.count], ['GOOD', 0, true, BS]);
  });
});

describe('read-only logical units (ReadOnly.ReadOnlySBC)', () => {
  it('every write command to a read-only LU is DATA PROTECT / WRITE PROTECTED (07/27/00); reads still work', async () => {
    const backstore = createMemoryBackstore(BLOCKS * BS);
    const target = new ScsiTarget();
    target.addLun(0, new LogicalUnit({ backstore, seed: 'ro', readOnly: true }));
    const nexus = makeNexus('iqn.2024-01.test:ro');
    const run = (cdb: Buffer, dataOut?: Buffer) => runScsi(target, nexus, { cdb, dataOut });
    await run(Buffer.alloc(6));
    const one = Buffer.alloc(BS);
    for (const cdb of [cdbWrite6(0, 1), cdbWrite10(0, 1), cdbWrite12(0, 1), cdbWrite16(0, 1)]) {
      assert.equal(outcome(await run(cdb, one)), 'CHECK CONDITION 07/27/00', `opcode 0x${cdb[0].toString(16)}`);
    }
    assert.equal(outcome(await run(cdbRead10(0, 1))), 'GOOD');
    const ms = await run(Buffer.from([ScsiOp.MODE_SENSE_6, 0, 0x3f, 0, 0xff, 0]));
    assert.equal(ms.data[2] & 0x80, 0x80, 'MODE SENSE device-specific parameter has WP set');
  });
});
