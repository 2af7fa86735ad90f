// Unit attentions, resets, I_T nexus loss, LUNs coming and going, and the
// task set (ORDERED / HEAD OF QUEUE / aborted tasks).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryBackstore } from '../../src-main/backstore/memory';
import type { Backstore, IoCallback } from '../../src-main/backstore/types';
import { cdbInquiry, cdbRead10, cdbReportLuns, cdbRequestSense, cdbWrite10 } from '../../src-main/iscsi/cdb';
import { LogicalUnit } from '../../src-main/target/scsi/logical-unit';
import { makeNexus, outcome, runScsi } from '../../src-main/target/scsi/loopback';
import { ScsiTarget } from '../../src-main/target/scsi/target';
import { TaskAttr, type ItNexus, type ScsiCommand, type ScsiResponse } from '../../src-main/target/scsi/types';

const BS = 512;
const TUR = Buffer.alloc(6);

function setup(backstore: Backstore = createMemoryBackstore(1024 * BS)) {
  const target = new ScsiTarget();
  const lu = new LogicalUnit({ backstore, seed: 'ua-test' });
  target.addLun(0, lu);
  const a = makeNexus('iqn.2024-01.test:ua-a');
  const b = makeNexus('iqn.2024-01.test:ua-b');
  const run = (nexus: ItNexus, cdb: Buffer, lun = 0, dataOut?: Buffer) => runScsi(target, nexus, { cdb, lun, dataOut });
  return { target, lu, a, b, run };
}

describe('unit attentions', () => {
  it('the first command from a nexus gets POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (06/29/00), once', async () => {
    const { run, a, b } = setup();
    assert.equal(outcome(await run(a, TUR)), 'CHECK CONDITION 06/29/00');
    assert.equal(outcome(await run(a, TUR)), 'GOOD');
    assert.equal(outcome(await run(b, cdbRead10(0, 1))), 'CHECK CONDITION 06/29/00', 'per nexus');
    assert.equal(outcome(await run(b, cdbRead10(0, 1))), 'GOOD');
  });

  it('INQUIRY and REPORT LUNS do not report it; REQUEST SENSE returns it as data and clears it', async () => {
    const { run, a } = setup();
    assert.equal(outcome(await run(a, cdbInquiry(96))), 'GOOD');
    assert.equal(outcome(await run(a, cdbReportLuns(256))), 'GOOD');
    const rs = await run(a, cdbRequestSense(18));
    assert.equal(outcome(rs), 'GOOD');
    assert.deepEqual([rs.data[0], rs.data[2] & 0x0f, rs.data[12], rs.data[13]], [0x70, 6, 0x29, 0]);
    assert.equal(outcome(await run(a, TUR)), 'GOOD');
    const none = await run(a, cdbRequestSense(18));
    assert.deepEqual([none.data[2] & 0x0f, none.data[12]], [0, 0], 'NO SENSE afterwards');
  });

  it('REQUEST SENSE with DESC = 1 returns descriptor-format sense', async () => {
    const { run, a } = setup();
    const rs = await run(a, cdbRequestSense(252, true));
    assert.deepEqual([rs.data[0], rs.data[1], rs.data[2], rs.data[3]], [0x72, 6, 0x29, 0]);
  });

  it('LUN reset gives every nexus BUS DEVICE RESET FUNCTION OCCURRED (06/29/03) and clears the SPC-2 reservation', async () => {
    const { target, run, a, b, lu } = setup();
    await run(a, TUR);
    await run(b, TUR);
    assert.equal(outcome(await run(a, Buffer.from([0x16, 0, 0, 0, 0, 0]))), 'GOOD');
    assert.ok(target.lunReset(0, a), 'the LUN exists');
    assert.equal(lu.spc2Holder, null);
    assert.equal(outcome(await run(a, TUR)), 'CHECK CONDITION 06/29/03');
    assert.equal(outcome(await run(b, TUR)), 'CHECK CONDITION 06/29/03');
    assert.equal(outcome(await run(b, TUR)), 'GOOD');
    assert.equal(target.lunReset(7), false, 'LUN 7 does not exist');
  });

  it('a reset supersedes pending unit attentions; others queue in order without duplicates', async () => {
    const { run, a, lu } = setup();
    await run(a, TUR);
    lu.capacityChanged();
    lu.capacityChanged();
    lu.establishUnitAttention(0x2a01);
    assert.equal(outcome(await run(a, TUR)), 'CHECK CONDITION 06/2a/09');
    assert.equal(outcome(await run(a, TUR)), 'CHECK CONDITION 06/2a/01');
    assert.equal(outcome(await run(a, TUR)), 'GOOD');
    lu.capacityChanged();
    lu.reset('lun');
    assert.equal(outcome(await run(a, TUR)), 'CHECK CONDITION 06/29/03');
    assert.equal(outcome(await run(a, TUR)), 'GOOD');
  });

  it('target reset resets every LU (06/29/00)', async () => {
    const { target, run, a } = setup();
    target.addLun(1, new LogicalUnit({ backstore: createMemoryBackstore(1 << 20), seed: 'one' }));
    await run(a, TUR);
    await run(a, TUR, 1);
    target.targetReset('warm');
    assert.equal(outcome(await run(a, TUR)), 'CHECK CONDITION 06/29/00');
    assert.equal(outcome(await run(a, TUR, 1)), 'CHECK CONDITION 06/29/00');
  });

  it('after the nexus goes away and comes back, it is a new nexus (POWER ON again)', async () => {
    const { target, run, a } = setup();
    await run(a, TUR);
    target.nexusGone(a);
    assert.equal(outcome(await run(a, TUR)), 'CHECK CONDITION 06/29/00');
  });
});

describe('LUNs added and removed at runtime', () => {
  it('adding a LUN gives nexuses already there REPORTED LUNS DATA HAS CHANGED (06/3f/0e); REPORT LUNS clears it', async () => {
    const { target, run, a, b } = setup();
    await run(a, TUR);
    await run(b, TUR);
    target.addLun(3, new LogicalUnit({ backstore: createMemoryBackstore(1 << 20), seed: 'three' }));
    assert.equal(outcome(await run(a, TUR)), 'CHECK CONDITION 06/3f/0e');
    assert.equal(outcome(await run(a, TUR)), 'GOOD');
    const luns = await run(b, cdbReportLuns(256));
    assert.equal(luns.data.readUInt32BE(0), 16);
    assert.equal(outcome(await run(b, TUR)), 'GOOD', 'REPORT LUNS cleared it for b');
    assert.equal(outcome(await run(b, TUR, 3)), 'CHECK CONDITION 06/29/00', 'the new LU itself starts with POWER ON');
  });

  it('a removed LUN answers LOGICAL UNIT NOT SUPPORTED and the others report the change', async () => {
    const { target, run, a } = setup();
    target.addLun(1, new LogicalUnit({ backstore: createMemoryBackstore(1 << 20), seed: 'one' }));
    await run(a, TUR);
    await run(a, TUR, 1);
    const lu1 = target.removeLun(1);
    assert.ok(lu1 !== undefined, 'removed');
    assert.equal(outcome(await run(a, TUR, 1)), 'CHECK CONDITION 05/25/00');
    assert.equal(outcome(await run(a, TUR)), 'CHECK CONDITION 06/3f/0e');
    assert.deepEqual(target.lunNumbers, [0]);
  });

  it('refuses a LUN number that is taken or out of range', () => {
    const { target } = setup();
    assert.throws(() => target.addLun(0, new LogicalUnit({ backstore: createMemoryBackstore(1 << 20), seed: 'dup' })), /already mapped/);
    assert.throws(() => target.addLun(16384, new LogicalUnit({ backstore: createMemoryBackstore(1 << 20), seed: 'big' })), RangeError);
  });

  it('the LunTable-style add/remove/has/luns work too', () => {
    const target = new ScsiTarget();
    const lu = target.add(2, { backstore: createMemoryBackstore(1 << 20), seed: 'x', readOnly: true });
    assert.equal(lu.writeProtected, true);
    assert.deepEqual([target.has(2), target.luns()], [true, [2]]);
    target.remove(2);
    assert.equal(target.has(2), false);
  });
});

/** A memory backstore whose reads and writes complete only when released. */
function gatedBackstore() {
  const mem = createMemoryBackstore(1024 * BS);
  const gates: Array<() => void> = [];
  const store: Backstore = Object.create(mem, {
    read: { value: (buf: Buffer, o: number, l: number, p: number, cb: IoCallback) => gates.push(() => mem.read(buf, o, l, p, cb)) },
    write: { value: (buf: Buffer, o: number, l: number, p: number, f: boolean, cb: IoCallback) => gates.push(() => mem.write(buf, o, l, p, f, cb)) },
  });
  return { store, open: () => gates.splice(0).forEach((g) => g()), pending: () => gates.length };
}

describe('task set management', () => {
  function exec(target: ScsiTarget, nexus: ItNexus, cdb: Buffer, attr: number, order: string[], tag: string, extra: Partial<ScsiCommand> = {}): ScsiCommand {
    const cmd: ScsiCommand = { lun: 0, cdb, nexus, dataOut: null, expectedDataTransferLength: 1 << 20, taskAttribute: attr, ...extra };
    target.execute(cmd, (r: ScsiResponse) => {
      r.release?.();
      order.push(`${tag}:${r.status}`);
    });
    return cmd;
  }
  const flush = () => new Promise((r) => setImmediate(r));

  it('an ORDERED command waits for earlier commands, and later SIMPLE commands wait for it', async () => {
    const gate = gatedBackstore();
    const { target, run, a } = setup(gate.store);
    await run(a, TUR);
    const order: string[] = [];
    exec(target, a, cdbRead10(0, 1), TaskAttr.SIMPLE, order, 's1');
    exec(target, a, Buffer.alloc(6), TaskAttr.ORDERED, order, 'o');
    exec(target, a, Buffer.alloc(6), TaskAttr.SIMPLE, order, 's2');
    await flush();
    assert.deepEqual(order, [], 'the ORDERED TUR waits for the read, the SIMPLE TUR for it');
    gate.open();
    await flush();
    await flush();
    assert.deepEqual(order, ['s1:0', 'o:0', 's2:0']);
  });

  it('HEAD OF QUEUE runs at once, ahead of a waiting ORDERED command', async () => {
    const gate = gatedBackstore();
    const { target, run, a } = setup(gate.store);
    await run(a, TUR);
    const order: string[] = [];
    exec(target, a, cdbRead10(0, 1), TaskAttr.SIMPLE, order, 's1');
    exec(target, a, Buffer.alloc(6), TaskAttr.ORDERED, order, 'o');
    exec(target, a, Buffer.alloc(6), TaskAttr.HEAD_OF_QUEUE, order, 'h');
    assert.deepEqual(order, ['h:0']);
    gate.open();
    await flush();
    assert.deepEqual(order, ['h:0', 's1:0', 'o:0']);
  });

  it('a queued command the transport aborted completes with TASK ABORTED and never touches the medium', async () => {
    const gate = gatedBackstore();
    const { target, run, a } = setup(gate.store);
    await run(a, TUR);
    const order: string[] = [];
    exec(target, a, cdbRead10(0, 1), TaskAttr.ORDERED, order, 'o');
    const w = exec(target, a, cdbWrite10(5, 1), TaskAttr.SIMPLE, order, 'w', { dataOut: Buffer.alloc(BS, 1) });
    w.aborted = true;
    assert.equal(gate.pending(), 1, 'only the ORDERED read is at the backstore');
    gate.open();
    await flush();
    assert.deepEqual(order, ['o:0', 'w:64']);
    assert.equal(gate.pending(), 0, 'the aborted write never reached the backstore');
  });

  it('a LUN reset completes queued commands with TASK ABORTED; running ones finish', async () => {
    const gate = gatedBackstore();
    const { target, run, a } = setup(gate.store);
    await run(a, TUR);
    const order: string[] = [];
    exec(target, a, cdbRead10(0, 1), TaskAttr.ORDERED, order, 'o');
    exec(target, a, cdbRead10(1, 1), TaskAttr.SIMPLE, order, 's');
    target.lunReset(0, a);
    assert.deepEqual(order, ['s:64']);
    gate.open();
    await flush();
    assert.deepEqual(order, ['s:64', 'o:0']);
  });

  it('many SIMPLE commands run concurrently', async () => {
    const gate = gatedBackstore();
    const { target, run, a } = setup(gate.store);
    await run(a, TUR);
    const order: string[] = [];
    for (let i = 0; i < 32; i++) exec(target, a, cdbRead10(i, 1), TaskAttr.SIMPLE, order, `r${i}`);
    assert.equal(gate.pending(), 32);
    gate.open();
    await flush();
    assert.equal(order.length, 32);
  });
});
