// scsi-task.ts placeDataOut with a real PduFramer: a WRITE's immediate data
// and its solicited Data-Out land straight in the command's pooled buffer
// (one copy, from the socket chunk), the SCSI layer gets exactly the bytes
// sent, and PDUs that do not fit the task's state are not placed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cdbWrite10 } from '../../src-main/iscsi/cdb';
import { Opcode, RESERVED_TAG } from '../../src-main/iscsi/constants';
import { encodeDataOut } from '../../src-main/iscsi/data';
import { PduFramer, type RawPdu } from '../../src-main/iscsi/framer';
import { parseR2T } from '../../src-main/iscsi/r2t';
import { encodeScsiCommand } from '../../src-main/iscsi/scsi-command';
import { PduWriter } from '../../src-main/iscsi/writer';
import { handleDataOut, handleScsiCommand, placeDataOut, type TaskHost } from '../../src-main/target/scsi-task';
import { IoStats } from '../../src-main/target/stats';
import type { ScsiCallback, ScsiCommand } from '../../src-main/target/scsi/types';

const KiB = 1024;

interface Harness {
  host: TaskHost;
  framer: PduFramer;
  sent: Buffer[];
  executed: ScsiCommand[];
  placed: Buffer[];
  log: string[];
}

function harness(params: { immediate: boolean; initialR2T: boolean; firstBurst: number; maxBurst: number }): Harness {
  const sent: Buffer[] = [];
  const executed: ScsiCommand[] = [];
  const placed: Buffer[] = [];
  const log: string[] = [];
  let statSN = 1;
  let ttt = 0;
  const session = {
    target: {
      lunTable: {
        execute(cmd: ScsiCommand, cb: ScsiCallback) {
          // A copy of the bytes (the buffer goes back to the pool), and the buffer itself to compare memory.
          executed.push(Object.assign({ ...cmd, dataOut: cmd.dataOut === null ? null : Buffer.from(cmd.dataOut) }, { sameMemoryAs: cmd.dataOut }));
          process.nextTick(cb, { status: 0, data: null, sense: null });
        },
      },
    },
    tasks: new Map(),
    params: {
      ImmediateData: params.immediate,
      InitialR2T: params.initialR2T,
      FirstBurstLength: params.firstBurst,
      MaxBurstLength: params.maxBurst,
      MaxOutstandingR2T: 1,
      MaxRecvDataSegmentLength: { initiator: 256 * KiB, target: 256 * KiB },
    },
    pendingWriteBytes: 0,
    window: { expCmdSN: 1 },
    maxCmdSN: () => 64,
    stats: new IoStats(),
    nexus: { key: 'test' },
    closed: false,
  };
  const host = {
    session,
    writer: new PduWriter({ cork() {}, uncork() {}, write: (chunk: Uint8Array) => (sent.push(Buffer.from(chunk)), true) }),
    hdr: Buffer.alloc(48),
    initiatorMrdsl: 256 * KiB,
    closed: false,
    nextStatSN: () => statSN++,
    peekStatSN: () => statSN,
    nextTtt: () => ++ttt,
    flushOutput() {},
    reserveDataIn: () => true,
    releaseDataIn() {},
    deferStart() {},
    protocolError: (m: string) => log.push(`protocol error: ${m}`),
    internalError: (e: unknown) => log.push(`internal error: ${String(e)}`),
    reject: () => log.push('reject'),
    log: (_l: string, m: string) => log.push(m),
    lunStats: () => undefined,
  } as unknown as TaskHost;
  const framer = new PduFramer({
    maxRecvDataSegmentLength: 256 * KiB,
    onPdu: (pdu: RawPdu) => {
      const op = pdu.bhs[0] & 0x3f;
      if (op === Opcode.SCSI_COMMAND) handleScsiCommand(host, pdu);
      else if (op === Opcode.SCSI_DATA_OUT) handleDataOut(host, pdu);
    },
    onError: (err) => log.push(`framing error: ${err.message}`),
    placeData: (bhs, n) => {
      const b = placeDataOut(host, bhs, n);
      if (b !== null) placed.push(b);
      return b;
    },
  });
  return { host, framer, sent, executed, placed, log };
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed + (i >> 9)) & 0xff;
  return b;
}

function pad(b: Buffer): Buffer {
  const p = (4 - (b.length % 4)) % 4;
  return p === 0 ? b : Buffer.concat([b, Buffer.alloc(p)]);
}

/** Feeds `wire` in chunks of `chunk` bytes, waiting a tick between chunks. */
async function feed(h: Harness, wire: Buffer, chunk: number): Promise<void> {
  for (let off = 0; off < wire.length; off += chunk) {
    h.framer.push(wire.subarray(off, off + chunk));
    await new Promise((r) => setImmediate(r));
  }
}

function lastR2T(h: Harness) {
  for (let i = h.sent.length - 1; i >= 0; i--) if ((h.sent[i][0] & 0x3f) === Opcode.R2T) return parseR2T(h.sent[i].subarray(0, 48));
  return null;
}

for (const chunk of [1000, 64 * KiB, 300 * KiB]) {
  test(`a 1 MiB WRITE: immediate data then R2T bursts, placed in the command's buffer (${chunk}-byte chunks)`, async () => {
    const h = harness({ immediate: true, initialR2T: true, firstBurst: 256 * KiB, maxBurst: 256 * KiB });
    const total = 1024 * KiB;
    const data = pattern(total, 7);
    const blocks = total / 512;
    const cmd = encodeScsiCommand({
      immediate: false,
      final: true,
      read: false,
      write: true,
      taskAttribute: 1,
      lun: 0,
      itt: 0x42,
      expectedDataTransferLength: total,
      cmdSN: 1,
      expStatSN: 1,
      cdb: cdbWrite10(0, blocks),
      data: data.subarray(0, 256 * KiB),
    } as Parameters<typeof encodeScsiCommand>[0]);
    await feed(h, Buffer.concat([cmd, data.subarray(0, 256 * KiB)]), chunk);
    for (let burst = 0; burst < 3; burst++) {
      const r2t = lastR2T(h);
      assert.ok(r2t, `R2T ${burst}`);
      const off = r2t.bufferOffset;
      const piece = data.subarray(off, off + r2t.desiredDataTransferLength);
      const dout = encodeDataOut({ final: true, lun: 0, itt: 0x42, ttt: r2t.ttt, expStatSN: 1, dataSN: 0, bufferOffset: off, data: piece });
      await feed(h, Buffer.concat([dout, pad(piece)]), chunk);
    }
    assert.deepEqual(h.log, []);
    assert.equal(h.executed.length, 1);
    const got = h.executed[0];
    assert.ok(got.dataOut!.equals(data), 'the SCSI layer gets exactly the bytes sent');
    if (chunk < 256 * KiB) {
      assert.equal(h.placed.length, 4, 'the immediate data and the three bursts were placed');
      const mem = (got as unknown as { sameMemoryAs: Buffer }).sameMemoryAs.buffer;
      for (const p of h.placed) assert.equal(p.buffer, mem, 'placed in the buffer the SCSI layer got');
    } else {
      assert.equal(h.placed.length, 0, 'whole PDUs in one chunk are copied from the chunk, not placed');
    }
  });
}

test('unsolicited Data-Out (InitialR2T=No) is placed; a Data-Out at the wrong offset is not placed and fails the write', async () => {
  const h = harness({ immediate: false, initialR2T: false, firstBurst: 64 * KiB, maxBurst: 256 * KiB });
  const total = 64 * KiB;
  const data = pattern(total, 3);
  const mk = (itt: number, cmdSN: number) =>
    encodeScsiCommand({
      immediate: false,
      final: false,
      read: false,
      write: true,
      taskAttribute: 1,
      lun: 0,
      itt,
      expectedDataTransferLength: total,
      cmdSN,
      expStatSN: 1,
      cdb: cdbWrite10(0, total / 512),
      data: Buffer.alloc(0),
    } as Parameters<typeof encodeScsiCommand>[0]);
  await feed(h, mk(1, 1), 48);
  const d1 = encodeDataOut({ final: true, lun: 0, itt: 1, ttt: RESERVED_TAG, expStatSN: 1, dataSN: 0, bufferOffset: 0, data });
  await feed(h, Buffer.concat([d1, data]), 5000);
  assert.equal(h.placed.length, 1);
  assert.equal(h.executed.length, 1);
  assert.ok(h.executed[0].dataOut!.equals(data));

  await feed(h, mk(2, 2), 48);
  const bad = encodeDataOut({ final: true, lun: 0, itt: 2, ttt: RESERVED_TAG, expStatSN: 1, dataSN: 0, bufferOffset: 512, data: data.subarray(0, 4096) });
  await feed(h, Buffer.concat([bad, data.subarray(0, 4096)]), 1000);
  assert.equal(h.placed.length, 1, 'the misplaced PDU was not placed');
  assert.equal(h.executed.length, 1, 'and the write never reached the SCSI layer');
  assert.ok(h.log.some((m) => /offset 512/.test(m)), h.log.join('\n'));
});
