// Thin provisioning: UNMAP, WRITE SAME (with UNMAP), GET LBA STATUS —
// libiscsi's Unmap.*, WriteSame10/16.*, GetLBAStatus.* suites.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryBackstore } from '../../src-main/backstore/memory';
import type { Backstore } from '../../src-main/backstore/types';
import { cdbGetLbaStatus, cdbRead10, cdbUnmap, cdbWrite10, cdbWriteSame10, cdbWriteSame16, unmapParameterList } from '../../src-main/iscsi/cdb';
import { LogicalUnit } from '../../src-main/target/scsi/logical-unit';
import { makeNexus, outcome, runScsi } from '../../src-main/target/scsi/loopback';
import { ScsiTarget } from '../../src-main/target/scsi/target';

const BS = 512;
const BLOCKS = 1 << 16; // 32 MiB, 4 KiB chunks below so unmaps really free memory
const LBA_OOB = 'CHECK CONDITION 05/21/00';
const INVALID_FIELD_IN_CDB = 'CHECK CONDITION 05/24/00';

async function ready(opts: { backstore?: Backstore; readOnly?: boolean } = {}) {
  const backstore = opts.backstore ?? createMemoryBackstore(BLOCKS * BS, { chunkSize: 4096 });
  const target = new ScsiTarget();
  const lu = new LogicalUnit({ backstore, seed: 'tp-test', readOnly: opts.readOnly });
  target.addLun(0, lu);
  const nexus = makeNexus('iqn.2024-01.test:tp');
  const run = (cdb: Buffer, dataOut?: Buffer | null, edtl?: number) => runScsi(target, nexus, { cdb, dataOut, edtl });
  await run(Buffer.alloc(6));
  return { lu, run, backstore };
}

const fill = (blocks: number, byte: number): Buffer => Buffer.alloc(blocks * BS, byte);
const unmapCmd = (extents: Array<{ lba: number; blocks: number }>) => {
  const list = unmapParameterList(extents);
  return [cdbUnmap(list.length), list] as const;
};

/** [lba, blocks, status] of a GET LBA STATUS response. */
function lbaStatus(data: Buffer): Array<[number, number, number]> {
  const n = (data.readUInt32BE(0) - 4) / 16;
  const out: Array<[number, number, number]> = [];
  for (let i = 0; i < n && 8 + 16 * i + 16 <= data.length; i++) {
    const at = 8 + 16 * i;
    out.push([data.readUInt32BE(at) * 2 ** 32 + data.readUInt32BE(at + 4), data.readUInt32BE(at + 8), data[at + 12] & 0x0f]);
  }
  return out;
}

describe('UNMAP (Unmap.Simple, Unmap.ZeroBlocks, Unmap.VPD)', () => {
  it('UNMAP of a range reads back zeros when LBPRZ', async () => {
    const { run } = await ready();
    await run(cdbWrite10(0, 256), fill(256, 0x61));
    for (const n of [1, 7, 64, 256]) {
      await run(cdbWrite10(0, 256), fill(256, 0x61));
      const [cdb, list] = unmapCmd([{ lba: 0, blocks: n }]);
      assert.equal(outcome(await run(cdb, list)), 'GOOD');
      const back = await run(cdbRead10(0, 256));
      assert.ok(back.data.subarray(0, n * BS).every((b) => b === 0), `${n} blocks zeroed`);
      assert.ok(back.data.subarray(n * BS).every((b) => b === 0x61), 'the rest untouched');
    }
  });

  it('one descriptor per block, up to 256 descriptors', async () => {
    const { run } = await ready();
    await run(cdbWrite10(0, 256), fill(256, 0x61));
    const extents = Array.from({ length: 256 }, (_, i) => ({ lba: i, blocks: 1 }));
    const [cdb, list] = unmapCmd(extents);
    assert.equal(outcome(await run(cdb, list)), 'GOOD');
    assert.ok((await run(cdbRead10(0, 256))).data.every((b) => b === 0), '(await run(cdbRead10(0, 256))).data.every((b) => b === 0)');
  });

  it('zero-block descriptors, LBA = capacity with 0 blocks, and an empty list are GOOD', async () => {
    const { run } = await ready();
    for (const ext of [[{ lba: 5, blocks: 0 }], [{ lba: BLOCKS, blocks: 0 }], []]) {
      const [cdb, list] = unmapCmd(ext);
      assert.equal(outcome(await run(cdb, list)), 'GOOD');
    }
    assert.equal(outcome(await run(cdbUnmap(0), null, 0)), 'GOOD', 'PARAMETER LIST LENGTH 0');
  });

  it('a descriptor past the end is LBA OUT OF RANGE and nothing is unmapped', async () => {
    const { run } = await ready();
    await run(cdbWrite10(0, 1), fill(1, 0x61));
    const [cdb, list] = unmapCmd([
      { lba: 0, blocks: 1 },
      { lba: BLOCKS - 1, blocks: 2 },
    ]);
    assert.equal(outcome(await run(cdb, list)), LBA_OOB);
    assert.ok((await run(cdbRead10(0, 1))).data.every((b) => b === 0x61), 'the first descriptor was not carried out');
  });

  it('parameter list errors: shorter than 8 bytes, descriptor data past the list, too many descriptors, too many blocks', async () => {
    const { run, lu } = await ready();
    assert.equal(outcome(await run(cdbUnmap(6), Buffer.alloc(6))), 'CHECK CONDITION 05/1a/00', 'PARAMETER LIST LENGTH ERROR');
    const lying = unmapParameterList([{ lba: 0, blocks: 1 }]);
    lying.writeUInt16BE(32, 2);
    assert.equal(outcome(await run(cdbUnmap(lying.length), lying)), 'CHECK CONDITION 05/1a/00');
    const many = Array.from({ length: lu.limits.maxUnmapDescriptors + 1 }, (_, i) => ({ lba: i, blocks: 1 }));
    const [c1, l1] = unmapCmd(many);
    assert.equal(outcome(await run(c1, l1)), 'CHECK CONDITION 05/26/00', 'INVALID FIELD IN PARAMETER LIST');
    const big = createMemoryBackstore(2 * lu.limits.maxUnmapBlocks * BS, { chunkSize: 1 << 20 });
    const { run: run2 } = await ready({ backstore: big });
    const [c2, l2] = unmapCmd([{ lba: 0, blocks: lu.limits.maxUnmapBlocks + 1 }]);
    assert.equal(outcome(await run2(c2, l2)), 'CHECK CONDITION 05/26/00');
  });

  it('ANCHOR is refused (ANC_SUP = 0); a read-only LU is WRITE PROTECTED', async () => {
    const { run } = await ready();
    const [cdb, list] = unmapCmd([{ lba: 0, blocks: 1 }]);
    cdb[1] = 0x01;
    assert.equal(outcome(await run(cdb, list)), INVALID_FIELD_IN_CDB);
    const ro = await ready({ backstore: createMemoryBackstore(BLOCKS * BS) , readOnly: true });
    const [c2, l2] = unmapCmd([{ lba: 0, blocks: 1 }]);
    assert.equal(outcome(await ro.run(c2, l2)), 'CHECK CONDITION 07/27/00', 'a read-only LU refuses UNMAP as a write');
  });

  it('UNMAP deallocates: the memory backstore frees whole chunks', async () => {
    const { run, backstore } = await ready();
    await run(cdbWrite10(0, 64), fill(64, 1));
    const before = (backstore as Backstore & { allocatedBytes: number }).allocatedBytes;
    const [cdb, list] = unmapCmd([{ lba: 0, blocks: 64 }]);
    await run(cdb, list);
    assert.equal((backstore as Backstore & { allocatedBytes: number }).allocatedBytes, before - 64 * BS);
  });
});

describe('WRITE SAME (WriteSame10/16.*)', () => {
  it('WRITE SAME(10) replicates the block over the range (WriteSame10.Check)', async () => {
    const { run } = await ready();
    for (const n of [1, 3, 255]) {
      assert.equal(outcome(await run(cdbWriteSame10(0, n), fill(1, n))), 'GOOD');
      const back = await run(cdbRead10(0, n + 1));
      assert.ok(back.data.subarray(0, n * BS).every((b) => b === n), 'back.data.subarray(0, n * BS).every((b) => b === n)');
    }
  });

  it('WRITE SAME(16) with NDOB writes zeros without Data-Out', async () => {
    const { run } = await ready();
    await run(cdbWrite10(100, 4), fill(4, 9));
    assert.equal(outcome(await run(cdbWriteSame16(100, 4, { ndob: true }), null, 0)), 'GOOD');
    assert.ok((await run(cdbRead10(100, 4))).data.every((b) => b === 0), '(await run(cdbRead10(100, 4))).data.every((b) => b === 0)');
  });

  it('NUMBER OF LOGICAL BLOCKS 0 writes to the end of the medium, unless that exceeds MAXIMUM WRITE SAME LENGTH (WriteSame*.ZeroBlocks)', async () => {
    const max = 0xffff;
    const blocks = max + 1024;
    const { run, lu } = await ready({ backstore: createMemoryBackstore(blocks * BS) });
    assert.equal(lu.limits.maxWriteSameBlocks, max);
    assert.equal(outcome(await run(cdbWriteSame10(0, 0), fill(1, 0))), INVALID_FIELD_IN_CDB);
    assert.equal(outcome(await run(cdbWriteSame16(blocks - (max + 1), 0), fill(1, 0))), INVALID_FIELD_IN_CDB);
    assert.equal(outcome(await run(cdbWriteSame16(blocks - max, 0), fill(1, 7))), 'GOOD');
    assert.ok((await run(cdbRead10(blocks - 8, 8))).data.every((b) => b === 7), '(await run(cdbRead10(blocks - 8, 8))).data.every((b) => b === 7)');
    assert.ok((await run(cdbRead10(blocks - max, 8))).data.every((b) => b === 7), '(await run(cdbRead10(blocks - max, 8))).data.every((b) => b === 7)');
    assert.equal(outcome(await run(cdbWriteSame16(blocks - (max - 1), 0, { unmap: true }), fill(1, 0))), 'GOOD');
    assert.equal(outcome(await run(cdbWriteSame10(blocks + 1, 0), fill(1, 0))), LBA_OOB);
    assert.equal(outcome(await run(cdbWriteSame10(0x80000000, 0), fill(1, 0))), LBA_OOB);
    assert.equal(outcome(await run(cdbWriteSame10(0xffffffff, 0), fill(1, 0))), LBA_OOB);
  });

  it('past the end is LBA OUT OF RANGE (WriteSame*.BeyondEol)', async () => {
    const { run } = await ready();
    for (let i = 1; i <= 4; i++) assert.equal(outcome(await run(cdbWriteSame10(BLOCKS - i + 1, i), fill(1, 0))), LBA_OOB);
    assert.equal(outcome(await run(cdbWriteSame16(BLOCKS - 1, 2), fill(1, 0))), LBA_OOB);
  });

  it('UNMAP bit with a zero block deallocates and reads back zeros (WriteSame*.Unmap, UnmapUntilEnd)', async () => {
    const { run, backstore } = await ready();
    await run(cdbWrite10(0, 256), fill(256, 0xff));
    const before = (backstore as Backstore & { allocatedBytes: number }).allocatedBytes;
    assert.equal(outcome(await run(cdbWriteSame10(0, 256, { unmap: true }), fill(1, 0))), 'GOOD');
    assert.ok((await run(cdbRead10(0, 256))).data.every((b) => b === 0), '(await run(cdbRead10(0, 256))).data.every((b) => b === 0)');
    assert.ok((backstore as Backstore & { allocatedBytes: number }).allocatedBytes < before, 'space was given back');
    await run(cdbWrite10(BLOCKS - 10, 10), fill(10, 0xff));
    assert.equal(outcome(await run(cdbWriteSame16(BLOCKS - 10, 0, { unmap: true }), fill(1, 0))), 'GOOD');
    assert.ok((await run(cdbRead10(BLOCKS - 10, 10))).data.every((b) => b === 0), '(await run(cdbRead10(BLOCKS - 10, 10))).data.every((b) => b === 0)');
  });

  it('UNMAP bit deallocates whatever the block holds (WriteSame10.UnmapUntilEnd sends 0xff and expects zeros)', async () => {
    const { run } = await ready();
    await run(cdbWrite10(8, 4), fill(4, 0xff));
    assert.equal(outcome(await run(cdbWriteSame16(8, 4, { unmap: true }), fill(1, 0xff))), 'GOOD');
    assert.ok((await run(cdbRead10(8, 4))).data.every((b) => b === 0), 'read back as zeros');
  });

  it('ANCHOR without UNMAP, and ANCHOR with UNMAP (no ANC_SUP), are INVALID FIELD IN CDB', async () => {
    const { run } = await ready();
    assert.equal(outcome(await run(cdbWriteSame10(0, 1, { anchor: true }), fill(1, 0))), INVALID_FIELD_IN_CDB);
    assert.equal(outcome(await run(cdbWriteSame10(0, 1, { anchor: true, unmap: true }), fill(1, 0))), INVALID_FIELD_IN_CDB);
  });

  it('Data-Out of half a block or two blocks is ILLEGAL REQUEST (WriteSame*.InvalidDataOutSize)', async () => {
    const { run } = await ready();
    for (const len of [BS / 2, 2 * BS]) {
      const r = await run(cdbWriteSame10(0, 1, { unmap: true }), Buffer.alloc(len, 0xa6));
      assert.equal(r.sense?.key, 5, `${len} bytes`);
      assert.equal(r.residual.count, Math.abs(len - BS), 'residual against the one block WRITE SAME needs');
    }
  });

  it('non-zero WRPROTECT is INVALID FIELD IN CDB; a read-only LU is WRITE PROTECTED even with UNMAP and no data', async () => {
    const { run } = await ready();
    for (let p = 1; p < 8; p++) assert.equal(outcome(await run(cdbWriteSame10(0, 1, { protect: p }), fill(1, 0))), INVALID_FIELD_IN_CDB);
    const ro = await ready({ readOnly: true });
    assert.equal(outcome(await ro.run(cdbWriteSame10(0, 1), fill(1, 0))), 'CHECK CONDITION 07/27/00');
    assert.equal(outcome(await ro.run(cdbWriteSame16(0, 1, { unmap: true }), null, 0)), 'CHECK CONDITION 07/27/00');
  });
});

describe('GET LBA STATUS (GetLBAStatus.*)', () => {
  it('reports mapped and deallocated extents from the starting LBA', async () => {
    const { run } = await ready();
    await run(cdbWrite10(0, 64), fill(64, 1));
    const r = await run(cdbGetLbaStatus(0, 8 + 16 * 4));
    assert.equal(outcome(r), 'GOOD');
    const ext = lbaStatus(r.data);
    assert.deepEqual(ext[0], [0, 64, 0], 'the written blocks are mapped');
    assert.deepEqual(ext[1].slice(0, 1).concat(ext[1][2]), [64, 1], 'then deallocated');
  });

  it('the first descriptor starts at the requested LBA, after an UNMAP too (GetLBAStatus.UnmapSingle)', async () => {
    const { run } = await ready();
    await run(cdbWrite10(0, 257), fill(257, 0x41));
    for (let i = 0; i + 1 <= 256; i += 37) {
      const [cdb, list] = unmapCmd([{ lba: i, blocks: 1 }]);
      assert.equal(outcome(await run(cdb, list)), 'GOOD');
      const r = await run(cdbGetLbaStatus(i + 1, 24));
      const [first] = lbaStatus(r.data);
      assert.deepEqual([first[0], first[2]], [i + 1, 0], 'LBA i+1 is still mapped');
    }
  });

  it('LBA at or past the end is LBA OUT OF RANGE (GetLBAStatus.BeyondEol)', async () => {
    const { run } = await ready();
    assert.equal(outcome(await run(cdbGetLbaStatus(BLOCKS + 1, 24))), LBA_OOB);
    const big = cdbGetLbaStatus(0, 24);
    big.writeUInt32BE(0x80000000, 2);
    assert.equal(outcome(await run(big)), LBA_OOB);
    big.writeUInt32BE(0xffffffff, 2);
    big.writeUInt32BE(0xffffffff, 6);
    assert.equal(outcome(await run(big)), LBA_OOB);
  });

  it('works near the end of the LU (GetLBAStatus.Simple)', async () => {
    const { run } = await ready();
    for (const lba of [1, BLOCKS - 1, BLOCKS - 256]) {
      const r = await run(cdbGetLbaStatus(lba, 24));
      assert.equal(outcome(r), 'GOOD');
      assert.equal(lbaStatus(r.data)[0][0], lba);
    }
  });
});
