// REPORT SUPPORTED OPERATION CODES and REPORT SUPPORTED TASK MANAGEMENT
// FUNCTIONS — libiscsi's ReportSupportedOpcodes.* (Simple, OneCommand,
// RCTD, SERVACTV) and the CDB usage data the *.DpoFua tests read.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryBackstore } from '../../src-main/backstore/memory';
import { MaintenanceIn, ScsiOp, cdbReportSupportedOpcodes } from '../../src-main/iscsi/cdb';
import { LogicalUnit } from '../../src-main/target/scsi/logical-unit';
import { makeNexus, outcome, runScsi } from '../../src-main/target/scsi/loopback';
import { ALL_COMMANDS } from '../../src-main/target/scsi/opcodes';
import { ScsiTarget } from '../../src-main/target/scsi/target';

async function ready(opts: { supportedTmfs?: { queryTask?: boolean } } = {}) {
  const target = new ScsiTarget({ supportedTmfs: opts.supportedTmfs });
  target.addLun(0, new LogicalUnit({ backstore: createMemoryBackstore(1 << 20), seed: 'rsoc' }));
  const nexus = makeNexus('iqn.2024-01.test:rsoc');
  const run = (cdb: Buffer) => runScsi(target, nexus, { cdb });
  await run(Buffer.alloc(6));
  return { run };
}

interface Descriptor {
  opcode: number;
  sa: number;
  servactv: boolean;
  ctdp: boolean;
  cdbLength: number;
  timeoutLength?: number;
}

function parseAll(d: Buffer): Descriptor[] {
  const out: Descriptor[] = [];
  const end = 4 + d.readUInt32BE(0);
  let at = 4;
  while (at + 8 <= end) {
    const desc: Descriptor = { opcode: d[at], sa: d.readUInt16BE(at + 2), ctdp: (d[at + 5] & 2) !== 0, servactv: (d[at + 5] & 1) !== 0, cdbLength: d.readUInt16BE(at + 6) };
    at += 8;
    if (desc.ctdp) {
      desc.timeoutLength = d.readUInt16BE(at);
      at += 2 + desc.timeoutLength;
    }
    out.push(desc);
  }
  return out;
}

describe('REPORT SUPPORTED OPERATION CODES', () => {
  it('lists every command; with RCTD each descriptor carries a 0Ah-byte timeouts descriptor, without RCTD none does', async () => {
    const { run } = await ready();
    const plain = parseAll((await run(cdbReportSupportedOpcodes({ allocationLength: 65535 }))).data);
    assert.equal(plain.length, ALL_COMMANDS.length);
    assert.ok(plain.every((d) => !d.ctdp), 'no CTDP without RCTD');
    const timed = parseAll((await run(cdbReportSupportedOpcodes({ rctd: true, allocationLength: 65535 }))).data);
    assert.equal(timed.length, plain.length);
    assert.ok(timed.every((d) => d.ctdp && d.timeoutLength === 0x0a), 'CTDP and a 10-byte timeouts descriptor on each');
    const ops = new Set(plain.map((d) => d.opcode));
    for (const op of [ScsiOp.READ_10, ScsiOp.WRITE_16, ScsiOp.COMPARE_AND_WRITE, ScsiOp.UNMAP, ScsiOp.WRITE_SAME_16, ScsiOp.EXTENDED_COPY, ScsiOp.ORWRITE_16, ScsiOp.WRITE_ATOMIC_16]) {
      assert.ok(ops.has(op), `0x${op.toString(16)} listed`);
    }
    assert.ok(!ops.has(ScsiOp.SANITIZE), 'SANITIZE not listed');
  });

  it('SERVICE ACTION is zero whenever SERVACTV is clear (ReportSupportedOpcodes.SERVACTV)', async () => {
    const { run } = await ready();
    for (const d of parseAll((await run(cdbReportSupportedOpcodes({ allocationLength: 65535 }))).data)) {
      if (!d.servactv) assert.equal(d.sa, 0, `0x${d.opcode.toString(16)}`);
    }
  });

  it('one command: option 1 for plain opcodes and 2 for service actions work, the other way round is INVALID FIELD IN CDB not pointing at byte 1 (OneCommand)', async () => {
    const { run } = await ready();
    const all = parseAll((await run(cdbReportSupportedOpcodes({ allocationLength: 65535 }))).data);
    for (const d of all) {
      const right = await run(cdbReportSupportedOpcodes({ options: d.servactv ? 2 : 1, opcode: d.opcode, serviceAction: d.sa }));
      assert.equal(outcome(right), 'GOOD');
      const usage = right.data.subarray(4, 4 + right.data.readUInt16BE(2));
      assert.equal(right.data[1] & 0x07, 3, 'SUPPORT: supported');
      assert.equal(usage.length, d.cdbLength);
      assert.equal(usage[0], d.opcode, 'CDB USAGE DATA starts with the opcode');
      const wrong = await run(cdbReportSupportedOpcodes({ options: d.servactv ? 1 : 2, opcode: d.opcode, serviceAction: d.sa }));
      assert.equal(outcome(wrong), 'CHECK CONDITION 05/24/00', `0x${d.opcode.toString(16)}/${d.sa}`);
      // libiscsi counts INVALID FIELD IN CDB at byte 1 of MAINTENANCE IN as "not implemented".
      assert.notEqual(wrong.sense?.field?.byte, 1);
    }
  });

  it('an unsupported opcode reports SUPPORT 001b; an unknown reporting option is INVALID FIELD IN CDB', async () => {
    const { run } = await ready();
    const r = await run(cdbReportSupportedOpcodes({ options: 1, opcode: 0xc5 }));
    assert.deepEqual([outcome(r), r.data[1] & 7, r.data.readUInt16BE(2)], ['GOOD', 1, 0]);
    assert.equal(outcome(await run(cdbReportSupportedOpcodes({ options: 5 }))), 'CHECK CONDITION 05/24/00');
  });

  it('CDB usage data of the DPO/FUA commands has DPO and FUA set (Read10/Write10/…DpoFua, Verify*.Dpo)', async () => {
    const { run } = await ready();
    for (const op of [ScsiOp.READ_10, ScsiOp.READ_12, ScsiOp.READ_16, ScsiOp.WRITE_10, ScsiOp.WRITE_12, ScsiOp.WRITE_16, ScsiOp.COMPARE_AND_WRITE, ScsiOp.ORWRITE_16, ScsiOp.WRITE_ATOMIC_16]) {
      const r = await run(cdbReportSupportedOpcodes({ options: 1, opcode: op }));
      assert.equal(r.data[4 + 1] & 0x18, 0x18, `0x${op.toString(16)}`);
    }
    for (const op of [ScsiOp.VERIFY_10, ScsiOp.VERIFY_12, ScsiOp.VERIFY_16, ScsiOp.WRITE_AND_VERIFY_10, ScsiOp.WRITE_AND_VERIFY_12, ScsiOp.WRITE_AND_VERIFY_16]) {
      const r = await run(cdbReportSupportedOpcodes({ options: 1, opcode: op }));
      assert.equal(r.data[4 + 1] & 0x10, 0x10, `DPO for 0x${op.toString(16)}`);
    }
  });

  it('a short allocation length truncates the list', async () => {
    const { run } = await ready();
    const r = await run(cdbReportSupportedOpcodes({ allocationLength: 20 }));
    assert.equal(r.data.length, 20);
  });
});

describe('REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS', () => {
  it('reports what the connection layer says it implements', async () => {
    const cdb = Buffer.from([ScsiOp.MAINTENANCE_IN, MaintenanceIn.REPORT_SUPPORTED_TASK_MANAGEMENT_FUNCTIONS, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0]);
    const plain = await (await ready()).run(cdb);
    assert.equal(outcome(plain), 'GOOD');
    assert.equal(plain.data.length, 4);
    assert.equal(plain.data[0], 0x80 | 0x40 | 0x10 | 0x08 | 0x02, 'ATS ATSS CTSS LURS TRS');
    const withQuery = await (await ready({ supportedTmfs: { queryTask: true } })).run(cdb);
    assert.equal(withQuery.data[0] & 0x04, 0x04, 'QTS');
    cdb[2] = 0x80;
    const repd = await (await ready()).run(cdb);
    assert.deepEqual([repd.data.length, repd.data[3]], [16, 0x0c]);
  });
});
