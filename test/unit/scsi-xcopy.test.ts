// EXTENDED COPY (LID1) and RECEIVE COPY RESULTS — libiscsi's
// ExtendedCopy.* and ReceiveCopyResults.* suites, built the way its
// populate_tgt_desc / populate_seg_desc_b2b / populate_param_header build them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryBackstore } from '../../src-main/backstore/memory';
import { ScsiOp, cdbRead16, cdbWrite16 } from '../../src-main/iscsi/cdb';
import { LogicalUnit } from '../../src-main/target/scsi/logical-unit';
import { makeNexus, outcome, runScsi } from '../../src-main/target/scsi/loopback';
import { ScsiTarget } from '../../src-main/target/scsi/target';

const BS = 512;
const BLOCKS = 8192;
const COPY_ABORTED = ['CHECK CONDITION 0a/00/00', 'CHECK CONDITION 0a/08/04', 'CHECK CONDITION 0a/0d/02'];

async function ready() {
  const target = new ScsiTarget();
  const lu = new LogicalUnit({ backstore: createMemoryBackstore(BLOCKS * BS), seed: 'xcopy-0' });
  const other = new LogicalUnit({ backstore: createMemoryBackstore(BLOCKS * BS), seed: 'xcopy-1' });
  target.addLun(0, lu);
  target.addLun(1, other);
  const nexus = makeNexus('iqn.2024-01.test:xcopy');
  const run = (cdb: Buffer, dataOut?: Buffer | null, lun = 0) => runScsi(target, nexus, { cdb, dataOut, lun });
  await run(Buffer.alloc(6));
  await run(Buffer.alloc(6), null, 1);
  return { target, lu, other, nexus, run };
}

/** E4h identification target descriptor naming an LU by its NAA designator. */
function targetDescriptor(naa: Buffer, luIdType = 0, type = 0xe4): Buffer {
  const d = Buffer.alloc(32);
  d[0] = type;
  d[1] = luIdType << 6;
  d[4] = 0x01; // code set binary
  d[5] = 0x03; // NAA, association LU
  d[7] = naa.length;
  naa.copy(d, 8);
  d.writeUIntBE(BS, 29, 3);
  return d;
}

function b2bSegment(src: number, dst: number, blocks: number, srcLba: number, dstLba: number, type = 0x02): Buffer {
  const d = Buffer.alloc(28);
  d[0] = type;
  d.writeUInt16BE(0x18, 2);
  d.writeUInt16BE(src, 4);
  d.writeUInt16BE(dst, 6);
  d.writeUInt16BE(blocks, 10);
  d.writeUInt32BE(Math.floor(srcLba / 2 ** 32), 12);
  d.writeUInt32BE(srcLba >>> 0, 16);
  d.writeUInt32BE(Math.floor(dstLba / 2 ** 32), 20);
  d.writeUInt32BE(dstLba >>> 0, 24);
  return d;
}

function paramList(listId: number, usage: number, targets: Buffer[], segments: Buffer[]): Buffer {
  const t = Buffer.concat(targets);
  const s = Buffer.concat(segments);
  const h = Buffer.alloc(16);
  h[0] = listId;
  h[1] = (usage & 3) << 3;
  h.writeUInt16BE(t.length, 2);
  h.writeUInt32BE(s.length, 8);
  return Buffer.concat([h, t, s]);
}

function xcopyCdb(len: number): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = ScsiOp.EXTENDED_COPY;
  cdb.writeUInt32BE(len, 10);
  return cdb;
}

function receiveCopyResults(sa: number, listId = 0): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = ScsiOp.RECEIVE_COPY_RESULTS;
  cdb[1] = sa;
  cdb[2] = listId;
  cdb.writeUInt32BE(1024, 10);
  return cdb;
}

describe('EXTENDED COPY', () => {
  it('copies 2048 blocks from the start of the LU to its end (ExtendedCopy.Simple)', async () => {
    const { run, lu } = await ready();
    const data = Buffer.alloc(2048 * BS);
    for (let i = 0; i < data.length; i++) data[i] = (i >> 9) & 0xff;
    await run(cdbWrite16(0, 2048), data);
    const list = paramList(1, 2, [targetDescriptor(lu.identity.naa)], [b2bSegment(0, 0, 2048, 0, BLOCKS - 2048)]);
    assert.equal(outcome(await run(xcopyCdb(list.length), list)), 'GOOD');
    assert.deepEqual((await run(cdbRead16(BLOCKS - 2048, 2048))).data, data);
  });

  it('copies between two LUs of the same target, found by NAA', async () => {
    const { run, lu, other } = await ready();
    await run(cdbWrite16(10, 4), Buffer.alloc(4 * BS, 0x77));
    const list = paramList(2, 2, [targetDescriptor(lu.identity.naa), targetDescriptor(other.identity.naa)], [b2bSegment(0, 1, 4, 10, 100)]);
    assert.equal(outcome(await run(xcopyCdb(list.length), list)), 'GOOD');
    assert.ok((await run(cdbRead16(100, 4), null, 1)).data.every((b) => b === 0x77), 'copied to LUN 1');
  });

  it('an overlapping copy towards higher LBAs behaves like memmove', async () => {
    const { run, lu } = await ready();
    const data = Buffer.alloc(3000 * BS);
    for (let i = 0; i < 3000; i++) data.fill(i & 0xff, i * BS, (i + 1) * BS);
    await run(cdbWrite16(0, 3000), data);
    const list = paramList(3, 2, [targetDescriptor(lu.identity.naa)], [b2bSegment(0, 0, 3000, 0, 1000)]);
    assert.equal(outcome(await run(xcopyCdb(list.length), list)), 'GOOD');
    assert.deepEqual((await run(cdbRead16(1000, 3000))).data, data);
  });

  it('a PARAMETER LIST LENGTH of 0 is GOOD; one that cuts a descriptor short is PARAMETER LIST LENGTH ERROR (ExtendedCopy.ParamHdr)', async () => {
    const { run, lu } = await ready();
    const list = paramList(1, 0, [targetDescriptor(lu.identity.naa)], [b2bSegment(0, 0, 2048, 0, BLOCKS - 2048)]);
    assert.equal(outcome(await run(xcopyCdb(16 + 32 - 1), list.subarray(0, 16 + 32 - 1))), 'CHECK CONDITION 05/1a/00');
    assert.equal(outcome(await run(xcopyCdb(16 + 32 + 28 - 1), list.subarray(0, 16 + 32 + 28 - 1))), 'CHECK CONDITION 05/1a/00');
    assert.equal(outcome(await run(xcopyCdb(0), null)), 'GOOD');
  });

  it('too many target or segment descriptors, or a list over the maximum length, are refused (ExtendedCopy.DescrLimits)', async () => {
    const { run, lu } = await ready();
    const op = (await run(receiveCopyResults(3))).data;
    const maxTargets = op.readUInt16BE(8);
    const maxSegments = op.readUInt16BE(10);
    const maxListLength = op.readUInt32BE(12);
    const tgt = targetDescriptor(lu.identity.naa);
    const seg = b2bSegment(0, 0, 2048, 0, BLOCKS - 2048);
    const tooManyTargets = paramList(1, 0, Array(maxTargets + 1).fill(tgt), [seg]);
    assert.equal(outcome(await run(xcopyCdb(tooManyTargets.length), tooManyTargets)), 'CHECK CONDITION 05/26/06');
    const tooManySegments = paramList(2, 0, [tgt], Array(maxSegments + 1).fill(seg));
    assert.equal(outcome(await run(xcopyCdb(tooManySegments.length), tooManySegments)), 'CHECK CONDITION 05/26/08');
    const count = Math.ceil((maxListLength + 28 - (maxTargets + 1) * 32) / 28);
    const tooLong = paramList(3, 0, Array(maxTargets + 1).fill(tgt), Array(count).fill(seg));
    assert.equal(outcome(await run(xcopyCdb(tooLong.length), tooLong)), 'CHECK CONDITION 05/1a/00');
  });

  it('an unsupported target or segment descriptor type is refused (ExtendedCopy.DescrType)', async () => {
    const { run, lu } = await ready();
    const fc = paramList(1, 0, [targetDescriptor(lu.identity.naa, 0, 0xe0)], [b2bSegment(0, 0, 2048, 0, BLOCKS - 2048)]);
    assert.equal(outcome(await run(xcopyCdb(fc.length), fc)), 'CHECK CONDITION 05/26/07');
    const stream = b2bSegment(0, 0, 0, 0, 0, 0x03).subarray(0, 20);
    stream.writeUInt16BE(0x10, 2);
    const s2s = paramList(1, 0, [targetDescriptor(lu.identity.naa)], [stream]);
    assert.equal(outcome(await run(xcopyCdb(s2s.length), s2s)), 'CHECK CONDITION 05/26/09');
  });

  it('a reserved LU ID TYPE is ignored under SPC-4 (ExtendedCopy.ValidTgtDescr)', async () => {
    const { run, lu } = await ready();
    const list = paramList(1, 0, [targetDescriptor(lu.identity.naa, 2)], [b2bSegment(0, 0, 2048, 0, BLOCKS - 2048)]);
    assert.equal(outcome(await run(xcopyCdb(list.length), list)), 'GOOD');
  });

  it('an inaccessible target index or a segment past the end is COPY ABORTED (ExtendedCopy.ValidSegDescr)', async () => {
    const { run, lu } = await ready();
    const badIndex = paramList(1, 0, [targetDescriptor(lu.identity.naa)], [b2bSegment(0, 1, 2048, 0, BLOCKS - 2048)]);
    assert.ok(COPY_ABORTED.includes(outcome(await run(xcopyCdb(badIndex.length), badIndex))), 'destination index 1 of 1 descriptor');
    const beyond = paramList(1, 0, [targetDescriptor(lu.identity.naa)], [b2bSegment(0, 0, 2048, 0, BLOCKS - 1)]);
    assert.ok(COPY_ABORTED.includes(outcome(await run(xcopyCdb(beyond.length), beyond))), 'destination past the end');
    const unknown = paramList(1, 0, [targetDescriptor(Buffer.alloc(16, 0x66))], [b2bSegment(0, 0, 1, 0, 1)]);
    assert.equal(outcome(await run(xcopyCdb(unknown.length), unknown)), 'CHECK CONDITION 0a/0d/02', 'an NAA no LU has');
  });

  it('is COPY ABORTED when the destination is write-protected', async () => {
    const target = new ScsiTarget();
    const lu = target.add(0, { backstore: createMemoryBackstore(BLOCKS * BS), seed: 'xcopy-ro', readOnly: true });
    const nexus = makeNexus('iqn.2024-01.test:xcopy');
    const run = (cdb: Buffer, dataOut?: Buffer | null) => runScsi(target, nexus, { cdb, dataOut });
    await run(Buffer.alloc(6));
    const list = paramList(1, 2, [targetDescriptor(lu.identity.naa)], [b2bSegment(0, 0, 1, 0, 1)]);
    assert.equal(outcome(await run(xcopyCdb(list.length), list)), 'CHECK CONDITION 0a/27/00');
  });
});

describe('RECEIVE COPY RESULTS', () => {
  it('OPERATING PARAMETERS lists the limits and the implemented descriptor types (ReceiveCopyResults.OpParams)', async () => {
    const { run } = await ready();
    const r = await run(receiveCopyResults(3));
    assert.equal(outcome(r), 'GOOD');
    const d = r.data;
    assert.ok(d.readUInt32BE(0) >= 40, 'AVAILABLE DATA');
    assert.ok(d.readUInt16BE(8) >= 1 && d.readUInt16BE(10) >= 1, 'descriptor counts');
    assert.deepEqual([...d.subarray(44, 44 + d[43])], [0x02, 0xe4]);
  });

  it('COPY STATUS of an unknown list is INVALID FIELD IN CDB; after a held copy it reports success once (ReceiveCopyResults.CopyStatus)', async () => {
    const { run, lu } = await ready();
    assert.equal(outcome(await run(receiveCopyResults(0, 1))), 'CHECK CONDITION 05/24/00');
    const list = paramList(1, 0, [targetDescriptor(lu.identity.naa)], [b2bSegment(0, 0, 2048, 0, BLOCKS - 2048)]);
    assert.equal(outcome(await run(xcopyCdb(list.length), list)), 'GOOD');
    const st = await run(receiveCopyResults(0, 1));
    assert.equal(outcome(st), 'GOOD');
    assert.deepEqual([st.data.readUInt32BE(0), st.data[4] & 0x7f, st.data.readUInt16BE(5), st.data[7], st.data.readUInt32BE(8)], [8, 1, 1, 0, 2048 * BS]);
    assert.equal(outcome(await run(receiveCopyResults(0, 1))), 'CHECK CONDITION 05/24/00', 'reported once');
  });

  it('held results belong to the I_T nexus and go with it', async () => {
    const { target, run, lu, nexus } = await ready();
    const list = paramList(5, 0, [targetDescriptor(lu.identity.naa)], [b2bSegment(0, 0, 1, 0, 1)]);
    await run(xcopyCdb(list.length), list);
    target.nexusGone(nexus);
    await run(Buffer.alloc(6));
    assert.equal(outcome(await run(receiveCopyResults(0, 5))), 'CHECK CONDITION 05/24/00');
  });
});
