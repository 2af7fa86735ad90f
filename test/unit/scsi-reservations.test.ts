// RESERVE/RELEASE and PERSISTENT RESERVE IN/OUT — libiscsi's Reserve6.*,
// PrinReadKeys.*, PrinServiceactionRange, PrinReportCapabilities,
// ProutRegister, ProutReserve.* (Simple, Access*, Ownership*), ProutClear,
// ProutPreempt suites.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryBackstore } from '../../src-main/backstore/memory';
import { PrIn, PrOut, PrType, cdbInquiry, cdbModeSense6, cdbPersistentReserveIn, cdbPersistentReserveOut, cdbRead10, cdbWrite10, prOutParameters } from '../../src-main/iscsi/cdb';
import { LogicalUnit } from '../../src-main/target/scsi/logical-unit';
import { makeNexus, outcome, runScsi, type LoopbackResult } from '../../src-main/target/scsi/loopback';
import { ScsiTarget } from '../../src-main/target/scsi/target';
import type { ItNexus } from '../../src-main/target/scsi/types';

const BS = 512;
const CONFLICT = 'RESERVATION CONFLICT';
const RESERVE6 = Buffer.from([0x16, 0, 0, 0, 0, 0]);
const RELEASE6 = Buffer.from([0x17, 0, 0, 0, 0, 0]);

async function ready() {
  const target = new ScsiTarget();
  const lu = new LogicalUnit({ backstore: createMemoryBackstore(1024 * BS), seed: 'pr-test' });
  target.addLun(0, lu);
  const i1 = makeNexus('iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test', '230000000001');
  const i2 = makeNexus('iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test-2', '230000000002');
  const run = (nexus: ItNexus, cdb: Buffer, dataOut?: Buffer | null) => runScsi(target, nexus, { cdb, dataOut });
  await run(i1, Buffer.alloc(6));
  await run(i2, Buffer.alloc(6));
  const prout = (nexus: ItNexus, sa: number, key: bigint, saKey = 0n, type = 0) => run(nexus, cdbPersistentReserveOut(sa, type), prOutParameters(key, saKey));
  const prin = (nexus: ItNexus, sa: number, alloc = 8192) => run(nexus, cdbPersistentReserveIn(sa, alloc));
  const keys = async (nexus: ItNexus) => {
    const d = (await prin(nexus, PrIn.READ_KEYS)).data;
    return { generation: d.readUInt32BE(0), keys: Array.from({ length: d.readUInt32BE(4) / 8 }, (_, i) => d.readBigUInt64BE(8 + 8 * i)) };
  };
  const reservation = async (nexus: ItNexus) => {
    const d = (await prin(nexus, PrIn.READ_RESERVATION)).data;
    return d.readUInt32BE(4) === 0 ? null : { key: d.readBigUInt64BE(8), type: d[21] & 0x0f, scope: d[21] >> 4 };
  };
  const canRead = async (n: ItNexus) => outcome(await run(n, cdbRead10(1, 1))) === 'GOOD';
  const canWrite = async (n: ItNexus) => outcome(await run(n, cdbWrite10(1, 1), Buffer.alloc(BS))) === 'GOOD';
  return { target, lu, i1, i2, run, prout, prin, keys, reservation, canRead, canWrite };
}

const ok = (r: LoopbackResult, what: string) => assert.equal(outcome(r), 'GOOD', what);

describe('RESERVE(6) / RELEASE(6) (Reserve6.*)', () => {
  it('a reservation holder can re-reserve; another initiator conflicts on RESERVE and MODE SENSE but not INQUIRY; RELEASE from it is a no-op', async () => {
    const { run, i1, i2 } = await ready();
    ok(await run(i1, RESERVE6), 'reserve');
    ok(await run(i1, RESERVE6), 're-reserve');
    assert.equal(outcome(await run(i2, RESERVE6)), CONFLICT);
    ok(await run(i2, RELEASE6), 'release from the other initiator is a no-op');
    ok(await run(i1, cdbModeSense6({ page: 0x3f })), 'holder MODE SENSE');
    assert.equal(outcome(await run(i2, cdbModeSense6({ page: 0x3f }))), CONFLICT);
    assert.equal(outcome(await run(i2, cdbRead10(0, 1))), CONFLICT);
    ok(await run(i2, cdbInquiry(96)), 'INQUIRY is never in conflict');
    assert.equal(outcome(await run(i2, RESERVE6)), CONFLICT);
    ok(await run(i1, RELEASE6), 'holder release');
    ok(await run(i2, RESERVE6), 'now the other initiator can reserve');
    ok(await run(i2, RELEASE6), 'and release');
  });

  it('is released by I_T nexus loss (logout / dropped connection), LUN reset and target reset', async () => {
    for (const how of ['nexus', 'lun', 'target'] as const) {
      const { target, run, i1, i2 } = await ready();
      ok(await run(i1, RESERVE6), 'reserve');
      assert.equal(outcome(await run(i2, RESERVE6)), CONFLICT);
      if (how === 'nexus') target.nexusGone(i1);
      else if (how === 'lun') target.lunReset(0, i1);
      else target.targetReset('cold');
      // After a reset the second initiator first sees a unit attention (libiscsi retries RESERVE(6) on 29/00).
      let r = await run(i2, RESERVE6);
      if (r.sense?.key === 6) r = await run(i2, RESERVE6);
      assert.equal(outcome(r), 'GOOD', `after ${how}`);
    }
  });

  it('RESERVE(6) conflicts while persistent reservation keys are registered (CRH)', async () => {
    const { run, prout, i1 } = await ready();
    ok(await prout(i1, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0x1234n), 'register');
    assert.equal(outcome(await run(i1, RESERVE6)), CONFLICT);
    ok(await prout(i1, PrOut.REGISTER, 0x1234n, 0n), 'unregister');
    ok(await run(i1, RESERVE6), 'reserve');
  });
});

describe('PERSISTENT RESERVE IN', () => {
  it('READ KEYS: ADDITIONAL LENGTH matches the keys; truncated to 8 bytes it still reports the full length (PrinReadKeys.*)', async () => {
    const { prin, prout, i1 } = await ready();
    const empty = await prin(i1, PrIn.READ_KEYS);
    assert.deepEqual([empty.data.length, empty.data.readUInt32BE(4)], [8, 0]);
    ok(await prout(i1, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0xabcdefn), 'register');
    const full = await prin(i1, PrIn.READ_KEYS);
    assert.equal(full.data.readUInt32BE(4), full.data.length - 8);
    const trunc = await prin(i1, PrIn.READ_KEYS, 8);
    assert.deepEqual([trunc.data.length, trunc.data.readUInt32BE(4)], [8, 8]);
  });

  it('service actions 0..3 work and 4..1Fh are INVALID FIELD IN CDB (PrinServiceactionRange)', async () => {
    const { prin, i1 } = await ready();
    for (let sa = 0; sa < 4; sa++) ok(await prin(i1, sa), `SA ${sa}`);
    for (let sa = 4; sa < 0x20; sa++) {
      const r = await prin(i1, sa);
      assert.equal(outcome(r), 'CHECK CONDITION 05/24/00', `SA ${sa}`);
      assert.equal(r.sense?.field?.byte, 1);
    }
  });

  it('REPORT CAPABILITIES: length 8, every type in the mask, nothing persists through power loss (PrinReportCapabilities)', async () => {
    const { prin, i1 } = await ready();
    const d = (await prin(i1, PrIn.REPORT_CAPABILITIES)).data;
    assert.equal(d.readUInt16BE(0), 8);
    assert.equal(d[2] & 0x01, 0, 'PTPL_C clear');
    assert.ok(((d[3] >> 4) & 7) <= 5, 'ALLOW COMMANDS <= 5');
    assert.equal(d[3] & 0x80, 0x80, 'TMV');
    assert.equal(d.readUInt16BE(4), 0xea01, 'WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX / EX_AC_AR');
  });

  it('READ FULL STATUS lists each registrant with its TransportID and marks the holder', async () => {
    const { prin, prout, i1, i2 } = await ready();
    await prout(i1, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0x11n);
    await prout(i2, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0x22n);
    await prout(i1, PrOut.RESERVE, 0x11n, 0n, PrType.WRITE_EXCLUSIVE);
    const d = (await prin(i1, PrIn.READ_FULL_STATUS)).data;
    const entries: Array<{ key: bigint; holder: boolean; type: number; name: string }> = [];
    let at = 8;
    while (at < 8 + d.readUInt32BE(4)) {
      const len = d.readUInt32BE(at + 20);
      const tid = d.subarray(at + 24, at + 24 + len);
      assert.equal(tid[0], 0x45, 'iSCSI TransportID, format 01b');
      entries.push({ key: d.readBigUInt64BE(at), holder: (d[at + 12] & 1) === 1, type: d[at + 13] & 0x0f, name: tid.subarray(4).toString('utf8').replace(/\0+$/, '') });
      at += 24 + len;
    }
    assert.deepEqual(entries, [
      { key: 0x11n, holder: true, type: PrType.WRITE_EXCLUSIVE, name: i1.initiatorPortName },
      { key: 0x22n, holder: false, type: 0, name: i2.initiatorPortName },
    ]);
  });
});

describe('PERSISTENT RESERVE OUT', () => {
  it('REGISTER: a key can be registered, re-registering with the wrong key conflicts, unregistering removes it (ProutRegister.Simple)', async () => {
    const { prout, keys, i1 } = await ready();
    const g0 = (await keys(i1)).generation;
    ok(await prout(i1, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0x5566n), 'register and ignore');
    assert.deepEqual((await keys(i1)).keys, [0x5566n]);
    assert.equal(outcome(await prout(i1, PrOut.REGISTER, 0n, 0x5567n)), CONFLICT, 'reservation key 0 does not match');
    ok(await prout(i1, PrOut.REGISTER, 0x5566n, 0n), 'unregister');
    const after = await keys(i1);
    assert.deepEqual(after.keys, []);
    assert.equal(after.generation, g0 + 2);
  });

  it('REGISTER from an unregistered nexus with a non-zero RESERVATION KEY conflicts; APTPL / ALL_TG_PT / SPEC_I_PT are refused', async () => {
    const { run, prout, i1 } = await ready();
    assert.equal(outcome(await prout(i1, PrOut.REGISTER, 7n, 8n)), CONFLICT);
    for (const flags of [{ aptpl: true }, { allTgPt: true }, { specIPt: true }]) {
      const r = await run(i1, cdbPersistentReserveOut(PrOut.REGISTER), prOutParameters(0n, 9n, flags));
      assert.equal(outcome(r), 'CHECK CONDITION 05/26/00', JSON.stringify(flags));
    }
    assert.equal(outcome(await run(i1, cdbPersistentReserveOut(PrOut.REGISTER, 0, 20), Buffer.alloc(20))), 'CHECK CONDITION 05/1a/00');
  });

  it('RESERVE and RELEASE every type; all-registrants types report key 0 (ProutReserve.Simple)', async () => {
    const { prout, reservation, keys, i1 } = await ready();
    await prout(i1, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0x77n);
    const gen = (await keys(i1)).generation;
    for (const type of Object.values(PrType)) {
      ok(await prout(i1, PrOut.RESERVE, 0x77n, 0n, type), `reserve type ${type}`);
      const allReg = type === PrType.WRITE_EXCLUSIVE_ALL_REGISTRANTS || type === PrType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS;
      assert.deepEqual(await reservation(i1), { key: allReg ? 0n : 0x77n, type, scope: 0 });
      ok(await prout(i1, PrOut.RESERVE, 0x77n, 0n, type), 'the same reservation again is GOOD');
      ok(await prout(i1, PrOut.RELEASE, 0x77n, 0n, type), `release type ${type}`);
      assert.equal(await reservation(i1), null);
    }
    assert.equal((await keys(i1)).generation, gen, 'RESERVE / RELEASE do not bump PRgeneration');
  });

  it('RESERVE with an invalid type or a non-LU scope is INVALID FIELD IN CDB; RELEASE with the wrong type is INVALID RELEASE (05/26/04)', async () => {
    const { run, prout, i1 } = await ready();
    await prout(i1, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 1n);
    assert.equal(outcome(await prout(i1, PrOut.RESERVE, 1n, 0n, 2)), 'CHECK CONDITION 05/24/00');
    assert.equal(outcome(await run(i1, cdbPersistentReserveOut(PrOut.RESERVE, PrType.EXCLUSIVE_ACCESS, 24, 1), prOutParameters(1n))), 'CHECK CONDITION 05/24/00');
    ok(await prout(i1, PrOut.RESERVE, 1n, 0n, PrType.EXCLUSIVE_ACCESS), 'reserve');
    assert.equal(outcome(await prout(i1, PrOut.RELEASE, 1n, 0n, PrType.WRITE_EXCLUSIVE)), 'CHECK CONDITION 05/26/04');
    assert.equal(outcome(await prout(i1, PrOut.RESERVE, 2n, 0n, PrType.EXCLUSIVE_ACCESS)), CONFLICT, 'wrong key');
  });

  // [type, registered i2 can read, can write, unregistered i2 can read, can write] — ProutReserve.Access*
  const ACCESS: Array<[string, number, boolean, boolean, boolean, boolean]> = [
    ['EA', PrType.EXCLUSIVE_ACCESS, false, false, false, false],
    ['WE', PrType.WRITE_EXCLUSIVE, true, false, true, false],
    ['EARO', PrType.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY, true, true, false, false],
    ['WERO', PrType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY, true, true, true, false],
    ['EAAR', PrType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS, true, true, false, false],
    ['WEAR', PrType.WRITE_EXCLUSIVE_ALL_REGISTRANTS, true, true, true, false],
  ];
  for (const [name, type, regRead, regWrite, unregRead, unregWrite] of ACCESS) {
    it(`${name}: the holder reads and writes; another initiator as SPC-4 table 63 says (ProutReserve.Access${name})`, async () => {
      const { prout, canRead, canWrite, i1, i2 } = await ready();
      ok(await prout(i1, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0xa1n), 'register i1');
      ok(await prout(i2, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0xa2n), 'register i2');
      ok(await prout(i1, PrOut.RESERVE, 0xa1n, 0n, type), 'reserve');
      assert.deepEqual([await canRead(i1), await canWrite(i1)], [true, true]);
      assert.deepEqual([await canRead(i2), await canWrite(i2)], [regRead, regWrite], 'registered i2');
      ok(await prout(i2, PrOut.REGISTER, 0xa2n, 0n), 'unregister i2');
      assert.deepEqual([await canRead(i2), await canWrite(i2)], [unregRead, unregWrite], 'unregistered i2');
      ok(await prout(i1, PrOut.RELEASE, 0xa1n, 0n, type), 'release');
      ok(await prout(i1, PrOut.REGISTER, 0xa1n, 0n), 'unregister i1');
    });
  }

  for (const [name, type, shared] of [
    ['EA', PrType.EXCLUSIVE_ACCESS, false],
    ['WE', PrType.WRITE_EXCLUSIVE, false],
    ['EARO', PrType.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY, false],
    ['WERO', PrType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY, false],
    ['EAAR', PrType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS, true],
    ['WEAR', PrType.WRITE_EXCLUSIVE_ALL_REGISTRANTS, true],
  ] as const) {
    it(`${name}: when the reserving initiator unregisters, the reservation ${shared ? 'stays with the other registrant' : 'goes'} (ProutReserve.Ownership${name})`, async () => {
      const { prout, reservation, run, i1, i2 } = await ready();
      await prout(i1, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0xb1n);
      await prout(i2, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0xb2n);
      ok(await prout(i1, PrOut.RESERVE, 0xb1n, 0n, type), 'reserve');
      ok(await prout(i1, PrOut.REGISTER, 0xb1n, 0n), 'unregister i1');
      if (shared) {
        assert.deepEqual(await reservation(i1), { key: 0n, type, scope: 0 });
        ok(await prout(i2, PrOut.RELEASE, 0xb2n, 0n, type), 'the other registrant releases it');
      } else {
        assert.equal(await reservation(i1), null);
        const ua = await run(i2, Buffer.alloc(6));
        const ro = type === PrType.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY || type === PrType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY;
        assert.equal(outcome(ua), ro ? 'CHECK CONDITION 06/2a/04' : 'GOOD', 'RESERVATIONS RELEASED only for registrants-only types');
      }
      ok(await prout(i2, PrOut.REGISTER, 0xb2n, 0n), 'unregister i2');
    });
  }

  it('CLEAR removes every registration and the reservation, bumping PRgeneration once (ProutClear.Simple)', async () => {
    const { prout, keys, reservation, run, i1, i2 } = await ready();
    await prout(i1, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0xc1n);
    await prout(i2, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0xc2n);
    const g = (await keys(i1)).generation;
    ok(await prout(i1, PrOut.RESERVE, 0xc1n, 0n, PrType.EXCLUSIVE_ACCESS), 'reserve');
    ok(await prout(i1, PrOut.CLEAR, 0xc1n), 'clear');
    assert.equal(await reservation(i1), null);
    const after = await keys(i1);
    assert.deepEqual([after.keys, after.generation], [[], g + 1]);
    assert.equal(outcome(await run(i2, Buffer.alloc(6))), 'CHECK CONDITION 06/2a/03', 'RESERVATIONS PREEMPTED for the other registrant');
  });

  it('PREEMPT of another registration without a reservation removes it (ProutPreempt.RemoveRegistration)', async () => {
    const { prout, keys, run, i1, i2 } = await ready();
    ok(await prout(i1, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0xd1n), 'k1');
    ok(await prout(i2, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0xd2n), 'k2');
    const before = await keys(i1);
    assert.equal(before.keys.length, 2);
    ok(await prout(i2, PrOut.PREEMPT, 0xd2n, 0xd1n, PrType.EXCLUSIVE_ACCESS), 'preempt k1');
    assert.equal(outcome(await run(i1, Buffer.alloc(6))), 'CHECK CONDITION 06/2a/05', 'REGISTRATIONS PREEMPTED');
    const after = await keys(i1);
    assert.deepEqual([after.keys, after.generation], [[0xd2n], before.generation + 1]);
    assert.equal(outcome(await prout(i2, PrOut.PREEMPT, 0xd2n, 0xd1n, PrType.EXCLUSIVE_ACCESS)), CONFLICT, 'no registration with that key any more');
  });

  it('PREEMPT of the reservation holder moves the reservation to the preemptor', async () => {
    const { prout, reservation, i1, i2 } = await ready();
    await prout(i1, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0xe1n);
    await prout(i2, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0xe2n);
    await prout(i1, PrOut.RESERVE, 0xe1n, 0n, PrType.WRITE_EXCLUSIVE);
    ok(await prout(i2, PrOut.PREEMPT_AND_ABORT, 0xe2n, 0xe1n, PrType.EXCLUSIVE_ACCESS), 'preempt and abort');
    assert.deepEqual(await reservation(i2), { key: 0xe2n, type: PrType.EXCLUSIVE_ACCESS, scope: 0 });
  });

  it('registrations survive the I_T nexus going away; the SPC-2 reservation does not', async () => {
    const { target, prout, keys, i1, i2 } = await ready();
    await prout(i1, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0xf1n);
    target.nexusGone(i1);
    assert.deepEqual((await keys(i2)).keys, [0xf1n]);
  });

  it('REGISTER AND MOVE hands the reservation to another I_T nexus named by TransportID', async () => {
    const { run, prout, reservation, keys, i1, i2 } = await ready();
    await prout(i1, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 0x101n);
    await prout(i1, PrOut.RESERVE, 0x101n, 0n, PrType.WRITE_EXCLUSIVE);
    const name = Buffer.from(i2.initiatorPortName + '\0');
    const tid = Buffer.alloc(4 + ((name.length + 3) & ~3));
    tid[0] = 0x45;
    tid.writeUInt16BE(tid.length - 4, 2);
    name.copy(tid, 4);
    const params = Buffer.alloc(24 + tid.length);
    params.writeBigUInt64BE(0x101n, 0);
    params.writeBigUInt64BE(0x202n, 8);
    params[17] = 0x02; // UNREG
    params.writeUInt16BE(i2.relativeTargetPortId, 18);
    params.writeUInt32BE(tid.length, 20);
    tid.copy(params, 24);
    ok(await run(i1, cdbPersistentReserveOut(PrOut.REGISTER_AND_MOVE, PrType.WRITE_EXCLUSIVE, params.length), params), 'register and move');
    assert.deepEqual(await reservation(i1), { key: 0x202n, type: PrType.WRITE_EXCLUSIVE, scope: 0 });
    assert.deepEqual((await keys(i1)).keys, [0x202n]);
  });

  it('an SPC-2 reservation held by another nexus makes PERSISTENT RESERVE IN/OUT conflict', async () => {
    const { run, prout, prin, i1, i2 } = await ready();
    ok(await run(i1, RESERVE6), 'reserve(6)');
    assert.equal(outcome(await prout(i2, PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 0n, 1n)), CONFLICT);
    assert.equal(outcome(await prin(i2, PrIn.READ_KEYS)), CONFLICT);
    ok(await prin(i1, PrIn.READ_KEYS), 'the holder may');
  });
});
