// START STOP UNIT and PREVENT ALLOW MEDIUM REMOVAL on a removable LU —
// libiscsi's StartStopUnit.*, PreventAllow.* and NoMedia.NoMediaSBC.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryBackstore } from '../../src-main/backstore/memory';
import {
  cdbCompareAndWrite,
  cdbGetLbaStatus,
  cdbInquiry,
  cdbModeSense6,
  cdbPreventAllow,
  cdbRead10,
  cdbRead16,
  cdbReadCapacity10,
  cdbReadCapacity16,
  cdbStartStopUnit,
  cdbSynchronizeCache10,
  cdbSynchronizeCache16,
  cdbUnmap,
  cdbVerify,
  cdbWrite10,
  cdbWriteAndVerify,
  cdbWriteSame16,
  unmapParameterList,
} from '../../src-main/iscsi/cdb';
import { LogicalUnit } from '../../src-main/target/scsi/logical-unit';
import { makeNexus, outcome, runScsi } from '../../src-main/target/scsi/loopback';
import { ScsiTarget } from '../../src-main/target/scsi/target';
import type { ItNexus } from '../../src-main/target/scsi/types';

const BS = 512;
const NO_MEDIUM = 'CHECK CONDITION 02/3a/00';
const PREVENTED = 'CHECK CONDITION 05/53/02';
const TUR = Buffer.alloc(6);
const eject = (immed = false) => cdbStartStopUnit({ loej: true, start: false, immed });
const load = (immed = false) => cdbStartStopUnit({ loej: true, start: true, immed });

async function ready(removable = true) {
  const target = new ScsiTarget();
  const lu = new LogicalUnit({ backstore: createMemoryBackstore(1024 * BS), seed: 'medium', removable });
  target.addLun(0, lu);
  const a = makeNexus('iqn.2024-01.test:medium-a');
  const b = makeNexus('iqn.2024-01.test:medium-b');
  const run = (nexus: ItNexus, cdb: Buffer, dataOut?: Buffer | null) => runScsi(target, nexus, { cdb, dataOut });
  await run(a, TUR);
  await run(b, TUR);
  return { target, lu, a, b, run };
}

describe('START STOP UNIT (StartStopUnit.*)', () => {
  it('LOEJ with START = 0 ejects (TEST UNIT READY: NOT READY / MEDIUM NOT PRESENT), START = 1 loads, with or without IMMED', async () => {
    const { run, a } = await ready();
    for (const immed of [true, false]) {
      assert.equal(outcome(await run(a, eject(immed))), 'GOOD');
      assert.equal(outcome(await run(a, TUR)), NO_MEDIUM);
      assert.equal(outcome(await run(a, eject(immed))), 'GOOD', 'ejecting again is harmless');
      assert.equal(outcome(await run(a, load(immed))), 'GOOD');
      assert.equal(outcome(await run(a, TUR)), 'GOOD');
    }
  });

  it('without LOEJ, START and NO_FLUSH in any combination leave the medium in place (StartStopUnit.NoLoej)', async () => {
    const { run, a } = await ready();
    for (const immed of [false, true])
      for (const noFlush of [false, true])
        for (const start of [false, true]) {
          assert.equal(outcome(await run(a, cdbStartStopUnit({ immed, noFlush, start }))), 'GOOD');
          assert.equal(outcome(await run(a, TUR)), 'GOOD');
        }
  });

  it('any POWER CONDITION is accepted and ejects nothing, even with LOEJ (StartStopUnit.PwrCnd)', async () => {
    const { run, a } = await ready();
    for (let pc = 1; pc < 16; pc++) {
      assert.equal(outcome(await run(a, cdbStartStopUnit({ immed: true, loej: true, powerCondition: pc }))), 'GOOD');
      assert.equal(outcome(await run(a, TUR)), 'GOOD');
    }
  });

  it('loading the medium gives the other nexuses NOT READY TO READY CHANGE (06/28/00)', async () => {
    const { run, a, b } = await ready();
    await run(a, eject());
    await run(a, load());
    assert.equal(outcome(await run(a, TUR)), 'GOOD');
    assert.equal(outcome(await run(b, TUR)), 'CHECK CONDITION 06/28/00');
  });

  it('LOEJ on a non-removable LU is INVALID FIELD IN CDB', async () => {
    const { run, a } = await ready(false);
    assert.equal(outcome(await run(a, eject())), 'CHECK CONDITION 05/24/00');
    assert.equal(outcome(await run(a, TUR)), 'GOOD');
  });
});

describe('PREVENT ALLOW MEDIUM REMOVAL (PreventAllow.*)', () => {
  it('PREVENT blocks eject and load with MEDIUM REMOVAL PREVENTED (05/53/02); ALLOW lifts it (PreventAllow.Eject)', async () => {
    const { run, a } = await ready();
    assert.equal(outcome(await run(a, cdbPreventAllow(true))), 'GOOD');
    assert.equal(outcome(await run(a, eject())), PREVENTED);
    assert.equal(outcome(await run(a, TUR)), 'GOOD');
    assert.equal(outcome(await run(a, cdbPreventAllow(false))), 'GOOD');
    assert.equal(outcome(await run(a, eject())), 'GOOD');
    assert.equal(outcome(await run(a, TUR)), NO_MEDIUM);
    assert.equal(outcome(await run(a, cdbPreventAllow(true))), 'GOOD', 'PREVENT works with the medium out');
    assert.equal(outcome(await run(a, load())), PREVENTED);
    assert.equal(outcome(await run(a, cdbPreventAllow(false))), 'GOOD');
    assert.equal(outcome(await run(a, load())), 'GOOD');
  });

  it('one nexus preventing removal blocks the others too (PreventAllow.2ITNexuses)', async () => {
    const { run, a, b } = await ready();
    await run(a, cdbPreventAllow(true));
    assert.equal(outcome(await run(b, eject())), PREVENTED);
    await run(a, cdbPreventAllow(false));
    assert.equal(outcome(await run(b, eject())), 'GOOD');
  });

  for (const how of ['I_T nexus loss', 'LUN reset', 'target warm reset', 'target cold reset'] as const) {
    it(`${how} clears PREVENT (PreventAllow.${how === 'I_T nexus loss' ? 'ITNexusLoss/Logout' : how === 'LUN reset' ? 'LUNReset' : 'Warm/ColdReset'})`, async () => {
      const { target, run, a } = await ready();
      await run(a, cdbPreventAllow(true));
      assert.equal(outcome(await run(a, eject())), PREVENTED);
      if (how === 'I_T nexus loss') target.nexusGone(a);
      else if (how === 'LUN reset') target.lunReset(0);
      else target.targetReset(how === 'target warm reset' ? 'warm' : 'cold');
      while (outcome(await run(a, TUR)) !== 'GOOD');
      assert.equal(outcome(await run(a, eject())), 'GOOD');
      assert.equal(outcome(await run(a, TUR)), NO_MEDIUM);
      await run(a, load());
    });
  }

  it('PREVENT 2 and 3 are INVALID FIELD IN CDB', async () => {
    const { run, a } = await ready();
    const cdb = cdbPreventAllow(false);
    cdb[4] = 2;
    assert.equal(outcome(await run(a, cdb)), 'CHECK CONDITION 05/24/00');
  });
});

describe('without a medium (NoMedia.NoMediaSBC)', () => {
  it('every medium-access command is NOT READY / MEDIUM NOT PRESENT; INQUIRY and MODE SENSE still answer', async () => {
    const { run, a } = await ready();
    assert.equal(outcome(await run(a, eject(true))), 'GOOD');
    const block = Buffer.alloc(BS);
    const unmapList = unmapParameterList([{ lba: 0, blocks: 1 }]);
    const commands: Array<[string, Buffer, Buffer | null]> = [
      ['TEST UNIT READY', TUR, null],
      ['SYNCHRONIZE CACHE(10)', cdbSynchronizeCache10(0, 1, true), null],
      ['SYNCHRONIZE CACHE(16)', cdbSynchronizeCache16(0, 1, true), null],
      ['READ(10)', cdbRead10(0, 1), null],
      ['READ(16)', cdbRead16(0, 1), null],
      ['READ CAPACITY(10)', cdbReadCapacity10(), null],
      ['READ CAPACITY(16)', cdbReadCapacity16(15), null],
      ['VERIFY(10)', cdbVerify(10, 0, 1, 1), block],
      ['GET LBA STATUS', cdbGetLbaStatus(0, 24), null],
      ['PRE-FETCH(10)', Buffer.from([0x34, 0x02, 0, 0, 0, 0, 0, 0, 1, 0]), null],
      ['COMPARE AND WRITE', cdbCompareAndWrite(0, 1), Buffer.alloc(2 * BS)],
      ['UNMAP', cdbUnmap(unmapList.length), unmapList],
      ['WRITE(10)', cdbWrite10(0, 1), block],
      ['WRITE SAME(16)', cdbWriteSame16(0, 1), block],
      ['WRITE AND VERIFY(10)', cdbWriteAndVerify(10, 0, 1, 1), block],
    ];
    for (const [name, cdb, data] of commands) assert.equal(outcome(await run(a, cdb, data)), NO_MEDIUM, name);
    assert.equal(outcome(await run(a, cdbInquiry(96))), 'GOOD');
    assert.equal(outcome(await run(a, cdbModeSense6({ page: 0x3f }))), 'GOOD');
    const rs = await run(a, Buffer.from([0x03, 0, 0, 0, 18, 0]));
    assert.deepEqual([rs.data[2] & 0x0f, rs.data[12]], [2, 0x3a], 'REQUEST SENSE reports the missing medium');
    assert.equal(outcome(await run(a, load(true))), 'GOOD');
  });
});
