// INQUIRY (standard data and VPD pages), READ CAPACITY, REPORT LUNS and
// commands to absent LUNs — what libiscsi's Inquiry.*, ReadCapacity*.* and
// Mandatory.* suites check.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryBackstore } from '../../src-main/backstore/memory';
import type { Backstore } from '../../src-main/backstore/types';
import { cdbInquiry, cdbReadCapacity10, cdbReadCapacity16, cdbReportLuns, cdbRequestSense, decodeLun, ScsiOp } from '../../src-main/iscsi/cdb';
import { LogicalUnit } from '../../src-main/target/scsi/logical-unit';
import { makeNexus, outcome, runScsi } from '../../src-main/target/scsi/loopback';
import { ScsiTarget } from '../../src-main/target/scsi/target';
import { deriveIdentity } from '../../src-main/target/scsi/identity';

const BS = 512;
const BLOCKS = 8192;

async function ready(opts: { backstore?: Backstore; removable?: boolean; seed?: string } = {}) {
  const backstore = opts.backstore ?? createMemoryBackstore(BLOCKS * BS);
  const target = new ScsiTarget();
  const lu = new LogicalUnit({ backstore, seed: opts.seed ?? 'inq-test', removable: opts.removable });
  target.addLun(0, lu);
  const nexus = makeNexus('iqn.2024-01.test:inq', '400001370000', 'iqn.2024-01.dev.spindle:disk1', 1, 1);
  const run = (cdb: Buffer, lun = 0, edtl?: number) => runScsi(target, nexus, { cdb, lun, edtl });
  await run(Buffer.alloc(6));
  return { target, lu, run, nexus };
}

/** Designation descriptors of a VPD 0x83 page. */
function designators(page: Buffer) {
  const out: Array<{ protocol: number; codeSet: number; piv: boolean; assoc: number; type: number; value: Buffer }> = [];
  let at = 4;
  while (at + 4 <= page.length) {
    const len = page[at + 3];
    out.push({
      protocol: page[at] >> 4,
      codeSet: page[at] & 0x0f,
      piv: (page[at + 1] & 0x80) !== 0,
      assoc: (page[at + 1] >> 4) & 0x03,
      type: page[at + 1] & 0x0f,
      value: page.subarray(at + 4, at + 4 + len),
    });
    at += 4 + len;
  }
  return out;
}

describe('standard INQUIRY (Inquiry.Standard, AllocLength, VersionDescriptors)', () => {
  it('claims SPC-4, response data format 2, HiSup and CmdQue, with ASCII identification', async () => {
    const { run } = await ready();
    const r = await run(cdbInquiry(260));
    assert.equal(outcome(r), 'GOOD');
    const d = r.data;
    assert.ok(d.length >= 36, 'd.length >= 36');
    assert.equal(d[0], 0x00, 'peripheral qualifier 0, direct access block device');
    assert.equal(d[2], 0x06, 'VERSION = SPC-4');
    assert.equal(d[3] & 0x0f, 2, 'RESPONSE DATA FORMAT');
    assert.equal(d[3] & 0x10, 0x10, 'HISUP');
    assert.equal(d[3] & 0xc0, 0, 'AERC/TRMTSK clear');
    assert.equal(d[7] & 0x02, 0x02, 'CMDQUE');
    assert.equal(d[4], d.length - 5, 'ADDITIONAL LENGTH matches the data');
    assert.equal(d.subarray(8, 16).toString('ascii'), 'SPINDLE ');
    assert.ok(d.subarray(8, 36).every((c) => c === 0 || (c >= 0x20 && c <= 0x7e)), 'd.subarray(8, 36).every((c) => c === 0 || (c >= 0x20 && c <= 0x7e))');
    const versions = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => d.readUInt16BE(58 + 2 * i));
    assert.ok(versions.includes(0x0460), 'SPC-4 version descriptor');
    assert.ok(versions.includes(0x04c0), 'SBC-3 version descriptor (libiscsi reads this as sbc3_support)');
  });

  it('answers every allocation length from 5 to 255 and truncates to it', async () => {
    const { run } = await ready();
    for (let len = 5; len < 256; len += 25) {
      const r = await run(cdbInquiry(len));
      assert.equal(outcome(r), 'GOOD');
      assert.equal(r.data.length, Math.min(len, 96));
    }
  });

  it('gives the same data for allocation lengths 511 and 512 (16-bit ALLOCATION LENGTH)', async () => {
    const { run } = await ready();
    assert.deepEqual((await run(cdbInquiry(511))).data, (await run(cdbInquiry(512))).data);
  });

  it('EVPD = 0 with a non-zero PAGE CODE is INVALID FIELD IN CDB (Inquiry.EVPD)', async () => {
    const { run } = await ready();
    const cdb = cdbInquiry(256);
    cdb[2] = 1;
    const r = await run(cdb);
    assert.equal(outcome(r), 'CHECK CONDITION 05/24/00');
    assert.deepEqual(r.sense?.field, { inCdb: true, byte: 2 });
  });

  it('sets RMB only for a removable logical unit', async () => {
    assert.equal((await (await ready()).run(cdbInquiry(96))).data[1] & 0x80, 0);
    assert.equal((await (await ready({ removable: true })).run(cdbInquiry(96))).data[1] & 0x80, 0x80);
  });

  it('is answered without reporting the pending unit attention', async () => {
    const target = new ScsiTarget();
    target.addLun(0, new LogicalUnit({ backstore: createMemoryBackstore(1 << 20), seed: 'x' }));
    const nexus = makeNexus('iqn.2024-01.test:fresh');
    assert.equal(outcome(await runScsi(target, nexus, { cdb: cdbInquiry(96) })), 'GOOD');
    assert.equal(outcome(await runScsi(target, nexus, { cdb: Buffer.alloc(6) })), 'CHECK CONDITION 06/29/00');
  });
});

describe('VPD pages (Inquiry.SupportedVPD, MandatoryVPDSBC, BlockLimits)', () => {
  it('lists 00h, 80h, 83h, 87h, B0h, B1h, B2h in ascending order, and every listed page can be read', async () => {
    const { run } = await ready();
    const r = await run(cdbInquiry(255, 0x00));
    assert.equal(outcome(r), 'GOOD');
    const pages = [...r.data.subarray(4, 4 + r.data[3])];
    assert.deepEqual(pages, [0x00, 0x80, 0x83, 0x87, 0xb0, 0xb1, 0xb2]);
    for (const p of pages) {
      const page = await run(cdbInquiry(255, p));
      assert.equal(outcome(page), 'GOOD', `page ${p.toString(16)}`);
      assert.equal(page.data[1], p);
      assert.equal(page.data.readUInt16BE(2) + 4, page.data.length, `page ${p.toString(16)} length`);
    }
  });

  it('Mode Page Policy (87h): caching and informational exceptions shared, control per I_T nexus, MLUS 0', async () => {
    const { run } = await ready();
    const r = await run(cdbInquiry(255, 0x87));
    assert.equal(outcome(r), 'GOOD');
    const d = r.data;
    assert.equal(d.readUInt16BE(2), d.length - 4);
    const descriptors: Array<[number, number, number]> = [];
    for (let at = 4; at + 4 <= d.length; at += 4) descriptors.push([d[at] & 0x3f, d[at + 1], d[at + 2]]);
    // [POLICY PAGE CODE, POLICY SUBPAGE CODE, MLUS | MODE PAGE POLICY]: 00b shared, 11b per I_T nexus.
    assert.deepEqual(descriptors, [
      [0x08, 0, 0b00],
      [0x0a, 0, 0b11],
      [0x1c, 0, 0b00],
    ]);
  });

  it('an unsupported VPD page is INVALID FIELD IN CDB', async () => {
    const { run } = await ready();
    assert.equal(outcome(await run(cdbInquiry(255, 0x86))), 'CHECK CONDITION 05/24/00');
  });

  it('unit serial number and NAA identifier come from the seed and are stable', async () => {
    const { run } = await ready({ seed: 'stable-seed' });
    const id = deriveIdentity('stable-seed');
    const serial = await run(cdbInquiry(255, 0x80));
    assert.equal(serial.data.subarray(4).toString('ascii'), id.serial);
    assert.match(id.serial, /^[0-9A-F]{16}$/);
    assert.equal(id.naa[0] >> 4, 6, 'NAA IEEE Registered Extended');
    assert.deepEqual(deriveIdentity('stable-seed'), id);
    assert.notDeepEqual(deriveIdentity('other-seed').naa, id.naa);
  });

  it('device identification carries NAA, T10 vendor ID, relative target port and SCSI name designators', async () => {
    const { run, lu } = await ready();
    const d = designators((await run(cdbInquiry(255, 0x83))).data);
    const naa = d.find((x) => x.type === 3);
    assert.ok(naa, 'naa');
    assert.deepEqual([naa.codeSet, naa.assoc, naa.value.length], [1, 0, 16]);
    assert.deepEqual(naa.value, lu.identity.naa);
    const t10 = d.find((x) => x.type === 1);
    assert.ok(t10, 't10');
    assert.equal(t10.value.subarray(0, 8).toString('ascii'), 'SPINDLE ');
    const rel = d.find((x) => x.type === 4);
    assert.ok(rel, 'rel');
    assert.deepEqual([rel.assoc, rel.piv, rel.protocol, rel.value.readUInt16BE(2)], [1, true, 5, 1]);
    const names = d.filter((x) => x.type === 8).map((x) => [x.assoc, x.value.toString('utf8').replace(/\0+$/, '')]);
    assert.deepEqual(names, [
      [1, 'iqn.2024-01.dev.spindle:disk1,t,0x0001'],
      [2, 'iqn.2024-01.dev.spindle:disk1'],
    ]);
    for (const x of d.filter((y) => y.type === 8)) assert.equal(x.value.length % 4, 0, 'SCSI name strings are padded to 4');
    // libiscsi's XCOPY target descriptor picks the highest of types 0..3: it must be the LU's NAA.
    const pick = d.filter((x) => x.type <= 3).sort((a, b) => a.type - b.type).pop();
    assert.deepEqual(pick?.value, lu.identity.naa);
  });

  it('block limits is the SBC-3 64-byte page with sane UNMAP, WRITE SAME and atomic limits', async () => {
    const { run, lu } = await ready();
    const b = (await run(cdbInquiry(255, 0xb0))).data;
    assert.equal(b.length, 64);
    assert.equal(b[3], 0x3c);
    assert.equal(b[4] & 1, 0, 'WSNZ = 0');
    assert.equal(b[5], 255, 'MAXIMUM COMPARE AND WRITE LENGTH');
    const maxXfer = b.readUInt32BE(8);
    assert.equal(maxXfer, lu.limits.maxTransferBlocks);
    const maxUnmap = b.readUInt32BE(20);
    assert.ok(maxUnmap > 0 && maxUnmap <= 1024 * 1024, 'maxUnmap > 0 && maxUnmap <= 1024 * 1024');
    const maxBdc = b.readUInt32BE(24);
    assert.ok(maxBdc > 1 && maxBdc <= 1024 * 1024, 'maxBdc > 1 && maxBdc <= 1024 * 1024');
    assert.equal(b[32] & 0x80, 0x80, 'UGAVALID');
    assert.equal(b.readUInt32BE(36) * 2 ** 32 + b.readUInt32BE(40), lu.limits.maxWriteSameBlocks);
    const maxAtomic = b.readUInt32BE(44);
    assert.ok(maxAtomic >= 256 && maxAtomic <= maxXfer, 'MAXIMUM ATOMIC TRANSFER LENGTH within MAXIMUM TRANSFER LENGTH');
    assert.equal(b.readUInt32BE(48), 0, 'no atomic alignment');
    assert.equal(b.readUInt32BE(52), 0, 'no atomic granularity');
  });

  it('physical blocks: READ CAPACITY(16) LBPPBE and LOWEST ALIGNED LBA agree with the block limits granularities', async () => {
    for (const exponent of [0, 3, 13]) {
      const target = new ScsiTarget();
      target.addLun(0, new LogicalUnit({ backstore: createMemoryBackstore(BLOCKS * BS * 4), seed: 'pbe', physicalBlockExponent: exponent }));
      const nexus = makeNexus('iqn.2024-01.test:pbe');
      const run = (cdb: Buffer) => runScsi(target, nexus, { cdb });
      await run(Buffer.alloc(6));
      const rc = (await run(cdbReadCapacity16())).data;
      assert.equal(rc[13] & 0x0f, exponent, 'LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT');
      assert.equal(rc.readUInt16BE(14) & 0x3fff, 0, 'LOWEST ALIGNED LBA');
      const b = (await run(cdbInquiry(255, 0xb0))).data;
      const granularity = b.readUInt16BE(6);
      assert.equal(granularity, Math.max(2 ** exponent, 4096 / BS), `OPTIMAL TRANSFER LENGTH GRANULARITY (exponent ${exponent})`);
      assert.equal(b.readUInt32BE(12) % granularity, 0, 'OPTIMAL TRANSFER LENGTH is whole granules');
      assert.ok(b.readUInt32BE(12) * BS >= 1 << 20, 'and at least 1 MiB');
      assert.equal(b.readUInt32BE(28), granularity, 'OPTIMAL UNMAP GRANULARITY');
    }
  });

  it('block device characteristics reports rotation rate 1 (non-rotating) for memory', async () => {
    const { run } = await ready();
    const b = (await run(cdbInquiry(255, 0xb1))).data;
    assert.equal(b.readUInt16BE(4), 1);
  });

  it('logical block provisioning: LBPU, LBPWS, LBPWS10, LBPRZ, thin', async () => {
    const { run } = await ready();
    const b = (await run(cdbInquiry(255, 0xb2))).data;
    assert.equal(b[5] & 0xe0, 0xe0, 'LBPU LBPWS LBPWS10');
    assert.equal(b[5] & 0x04, 0x04, 'LBPRZ');
    assert.equal(b[5] & 0x02, 0, 'ANC_SUP clear');
    assert.equal(b[6] & 0x07, 2, 'thin provisioned');
  });

  it('a backstore that cannot unmap is fully provisioned: no B2h page, no UNMAP limits, UNMAP not offered', async () => {
    const mem = createMemoryBackstore(BLOCKS * BS);
    const thick: Backstore = Object.create(mem, { capabilities: { value: { ...mem.capabilities, canUnmap: false } } });
    const { run } = await ready({ backstore: thick });
    const pages = [...(await run(cdbInquiry(255, 0))).data.subarray(4)];
    assert.ok(!pages.includes(0xb2), '!pages.includes(0xb2)');
    const bl = (await run(cdbInquiry(255, 0xb0))).data;
    assert.deepEqual([bl.readUInt32BE(20), bl.readUInt32BE(24)], [0, 0]);
    const rc = (await run(cdbReadCapacity16(32))).data;
    assert.equal(rc[14] & 0xc0, 0, 'LBPME and LBPRZ clear');
    const unmap = Buffer.from([ScsiOp.UNMAP, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(outcome(await run(unmap)), 'CHECK CONDITION 05/20/00');
  });
});

describe('READ CAPACITY (ReadCapacity10.Simple, ReadCapacity16.*)', () => {
  it('READ CAPACITY(10) reports the last LBA and the block size', async () => {
    const { run } = await ready();
    const d = (await run(cdbReadCapacity10())).data;
    assert.deepEqual([d.readUInt32BE(0), d.readUInt32BE(4)], [BLOCKS - 1, BS]);
  });

  it('READ CAPACITY(10) with a non-zero LBA and PMI = 0 is INVALID FIELD IN CDB', async () => {
    const { run } = await ready();
    const cdb = cdbReadCapacity10();
    cdb.writeUInt32BE(5, 2);
    assert.equal(outcome(await run(cdb)), 'CHECK CONDITION 05/24/00');
  });

  it('READ CAPACITY(16) reports LBPME/LBPRZ, protection off and the physical block exponent', async () => {
    const { run } = await ready();
    const d = (await run(cdbReadCapacity16(32))).data;
    assert.equal(d.length, 32);
    assert.equal(d.readUInt32BE(0) * 2 ** 32 + d.readUInt32BE(4), BLOCKS - 1);
    assert.equal(d.readUInt32BE(8), BS);
    assert.equal(d[12] & 0x0f, 0, 'P_TYPE 0, PROT_EN 0');
    assert.equal(d[13], 0, 'P_I_EXPONENT 0, LBPPBE 0');
    assert.equal(d[14] & 0xc0, 0xc0, 'LBPME, LBPRZ');
  });

  it('READ CAPACITY(16) honours allocation lengths 0..15 (ReadCapacity16.Alloclen)', async () => {
    const { run } = await ready();
    for (let len = 0; len < 16; len++) {
      const r = await run(cdbReadCapacity16(len));
      assert.equal(outcome(r), 'GOOD');
      assert.equal(r.data.length, len);
    }
  });

  it('reports 0xFFFFFFFF from READ CAPACITY(10) when the LU is too big for it', async () => {
    // A 3 TiB LU of 512-byte blocks is sparse in memory: nothing is written.
    const { run } = await ready({ backstore: createMemoryBackstore(3 * 2 ** 40) });
    assert.equal((await run(cdbReadCapacity10())).data.readUInt32BE(0), 0xffffffff);
    const d = (await run(cdbReadCapacity16(32))).data;
    assert.equal(d.readUInt32BE(0) * 2 ** 32 + d.readUInt32BE(4), (3 * 2 ** 40) / BS - 1);
  });
});

describe('LUN map (REPORT LUNS, absent LUNs)', () => {
  it('REPORT LUNS lists every mapped LUN in SAM-5 single-level format', async () => {
    const { run, target } = await ready();
    target.addLun(5, new LogicalUnit({ backstore: createMemoryBackstore(1 << 20), seed: 'five' }));
    target.addLun(300, new LogicalUnit({ backstore: createMemoryBackstore(1 << 20), seed: 'three hundred' }));
    const r = await run(cdbReportLuns(4096));
    assert.equal(outcome(r), 'GOOD');
    assert.equal(r.data.readUInt32BE(0), 24);
    const luns = [0, 1, 2].map((i) => decodeLun(r.data, 8 + 8 * i));
    assert.deepEqual(luns, [0, 5, 300]);
    assert.equal(r.data[8 + 16], 0x41, 'LUN 300 uses flat space addressing');
  });

  it('REPORT LUNS with SELECT REPORT 1 (well-known only) is empty; 3 is INVALID FIELD IN CDB', async () => {
    const { run } = await ready();
    assert.equal((await run(cdbReportLuns(4096, 1))).data.readUInt32BE(0), 0);
    assert.equal(outcome(await run(cdbReportLuns(4096, 3))), 'CHECK CONDITION 05/24/00');
  });

  it('REPORT LUNS addressed to an absent LUN still answers', async () => {
    const { run } = await ready();
    const r = await run(cdbReportLuns(4096), 7);
    assert.deepEqual([outcome(r), r.data.readUInt32BE(0)], ['GOOD', 8]);
  });

  it('INQUIRY to an absent LUN returns peripheral qualifier 011b and type 1Fh', async () => {
    const { run } = await ready();
    const r = await run(cdbInquiry(96), 9);
    assert.equal(outcome(r), 'GOOD');
    assert.equal(r.data[0], 0x7f);
  });

  it('other commands to an absent LUN are LOGICAL UNIT NOT SUPPORTED (05/25/00); REQUEST SENSE returns it as data', async () => {
    const { run } = await ready();
    assert.equal(outcome(await run(Buffer.alloc(6), 9)), 'CHECK CONDITION 05/25/00');
    assert.equal(outcome(await run(cdbReadCapacity10(), 9)), 'CHECK CONDITION 05/25/00');
    const rs = await run(cdbRequestSense(18), 9);
    assert.equal(outcome(rs), 'GOOD');
    assert.deepEqual([rs.data[2] & 0x0f, rs.data[12], rs.data[13]], [5, 0x25, 0]);
  });

  it('an unknown operation code is INVALID COMMAND OPERATION CODE (05/20/00); SANITIZE is not offered', async () => {
    const { run } = await ready();
    assert.equal(outcome(await run(Buffer.from([0xc5, 0, 0, 0, 0, 0, 0, 0, 0, 0]))), 'CHECK CONDITION 05/20/00');
    assert.equal(outcome(await run(Buffer.from([ScsiOp.SANITIZE, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]))), 'CHECK CONDITION 05/20/00');
  });

  it('an unknown SERVICE ACTION IN(16) service action is INVALID FIELD IN CDB pointing at byte 1', async () => {
    const { run } = await ready();
    const cdb = cdbReadCapacity16(32);
    cdb[1] = 0x11;
    const r = await run(cdb);
    assert.equal(outcome(r), 'CHECK CONDITION 05/24/00');
    assert.equal(r.sense?.field?.byte, 1);
  });

  it('the mandatory SBC commands all work (Mandatory.MandatorySBC)', async () => {
    const { run } = await ready();
    for (const cdb of [cdbInquiry(255), cdbReadCapacity10(), cdbReadCapacity16(15), Buffer.alloc(6)]) {
      assert.equal(outcome(await run(cdb)), 'GOOD', `opcode ${cdb[0].toString(16)}`);
    }
  });
});
