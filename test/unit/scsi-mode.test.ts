// MODE SENSE / MODE SELECT — libiscsi's ModeSense6.* suite (AllPages,
// Control, Control-D_SENSE, Control-SWP, Residuals) and the caching page.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryBackstore } from '../../src-main/backstore/memory';
import type { Backstore, IoCallback } from '../../src-main/backstore/types';
import {
  cdbCompareAndWrite,
  cdbModeSelect10,
  cdbModeSelect6,
  cdbModeSense10,
  cdbModeSense6,
  cdbRead10,
  cdbRead16,
  cdbSynchronizeCache10,
  cdbUnmap,
  cdbWrite10,
  cdbWriteAndVerify,
  cdbWriteSame10,
} from '../../src-main/iscsi/cdb';
import { LogicalUnit } from '../../src-main/target/scsi/logical-unit';
import { makeNexus, outcome, runScsi } from '../../src-main/target/scsi/loopback';
import { ScsiTarget } from '../../src-main/target/scsi/target';

const BS = 512;
const BLOCKS = 1024;

async function ready(backstore: Backstore = createMemoryBackstore(BLOCKS * BS)) {
  const target = new ScsiTarget();
  const lu = new LogicalUnit({ backstore, seed: 'mode-test' });
  target.addLun(0, lu);
  const a = makeNexus('iqn.2024-01.test:mode-a');
  const b = makeNexus('iqn.2024-01.test:mode-b');
  const run = (cdb: Buffer, dataOut?: Buffer | null, nexus = a, edtl?: number) => runScsi(target, nexus, { cdb, dataOut, edtl });
  await run(Buffer.alloc(6));
  await run(Buffer.alloc(6), null, b);
  return { lu, run, a, b, target };
}

/** MODE SELECT(6) setting (or clearing) SWP in the Control page, as nexus `nexus` sees it. */
async function setSwp(run: Awaited<ReturnType<typeof ready>>['run'], on: boolean, nexus: Awaited<ReturnType<typeof ready>>['a']) {
  const control = pages((await run(cdbModeSense6({ page: 0x0a, dbd: true }), null, nexus)).data).get(0x0a) as Buffer;
  const page = Buffer.from(control);
  page[4] = on ? page[4] | 0x08 : page[4] & ~0x08;
  const list = selectList(page);
  return outcome(await run(cdbModeSelect6(list.length), list, nexus));
}

/** Mode pages of a MODE SENSE(6) response, by page code. */
function pages(data: Buffer, six = true): Map<number, Buffer> {
  const hdr = six ? 4 : 8;
  const bd = six ? data[3] : data.readUInt16BE(6);
  const out = new Map<number, Buffer>();
  let at = hdr + bd;
  while (at + 2 <= data.length) {
    const len = data[at + 1] + 2;
    out.set(data[at] & 0x3f, data.subarray(at, at + len));
    at += len;
  }
  return out;
}

/** A MODE SELECT(6) parameter list carrying one page. */
function selectList(page: Buffer): Buffer {
  const p = Buffer.from(page);
  p[0] &= 0x3f; // PS is reserved in MODE SELECT
  return Buffer.concat([Buffer.alloc(4), p]);
}

describe('MODE SENSE', () => {
  it('all pages (3Fh) returns the caching, control and informational exceptions pages after an 8-byte block descriptor', async () => {
    const { run } = await ready();
    const r = await run(cdbModeSense6({ page: 0x3f }));
    assert.equal(outcome(r), 'GOOD');
    const d = r.data;
    assert.equal(d[0], d.length - 1, 'MODE DATA LENGTH');
    assert.ok(d[0] >= 3, 'mode data length >= 3');
    assert.equal(d[2] & 0x10, 0x10, 'DPOFUA');
    assert.equal(d[2] & 0x80, 0, 'WP clear');
    assert.equal(d[3], 8, 'block descriptor length');
    assert.equal(d.readUInt32BE(4), BLOCKS, 'NUMBER OF LOGICAL BLOCKS');
    assert.equal(d.readUIntBE(9, 3), BS, 'LOGICAL BLOCK LENGTH');
    assert.deepEqual([...pages(d).keys()], [0x08, 0x0a, 0x1c]);
  });

  it('the control page read directly equals the one in all pages, with sane values (ModeSense6.Control)', async () => {
    const { run } = await ready();
    const all = pages((await run(cdbModeSense6({ page: 0x3f }))).data).get(0x0a);
    const direct = pages((await run(cdbModeSense6({ page: 0x0a }))).data).get(0x0a);
    assert.ok(all !== undefined && direct !== undefined, 'control page present both ways');
    assert.deepEqual(direct, all);
    assert.equal(direct.length, 12);
    assert.ok(direct[2] >> 5 <= 1, 'TST 0 or 1');
    const qam = direct[3] >> 4;
    assert.ok(qam <= 1 || qam > 7, 'QUEUE ALGORITHM MODIFIER');
    assert.notEqual((direct[3] >> 1) & 3, 2, 'QERR != 2');
    assert.notEqual((direct[4] >> 4) & 3, 1, 'UA_INTLCK_CTRL != 1');
    assert.equal(direct[2] & 0x04, 0, 'D_SENSE clear: sense data is fixed format');
  });

  it('with D_SENSE clear, errors come back as fixed-format sense (ModeSense6.Control-D_SENSE)', async () => {
    const { run } = await ready();
    const cdb = cdbRead16(0, 1);
    cdb.fill(0xff, 2, 10);
    const r = await run(cdb);
    assert.equal(outcome(r), 'CHECK CONDITION 05/21/00');
    assert.equal((r.senseBytes?.[0] ?? 0) & 0x7f, 0x70);
  });

  it('DBD suppresses the block descriptor; MODE SENSE(10) with LLBAA gives a 16-byte one', async () => {
    const { run } = await ready();
    const noBd = (await run(cdbModeSense6({ page: 0x08, dbd: true }))).data;
    assert.equal(noBd[3], 0);
    assert.equal(noBd[4] & 0x3f, 0x08);
    const long = (await run(cdbModeSense10({ page: 0x08, llbaa: true }))).data;
    assert.equal(long.readUInt16BE(0), long.length - 2);
    assert.equal(long[4] & 1, 1, 'LONGLBA');
    assert.equal(long.readUInt16BE(6), 16);
    assert.equal(long.readUInt32BE(8) * 2 ** 32 + long.readUInt32BE(12), BLOCKS);
    assert.equal(long.readUInt32BE(20), BS);
  });

  it('changeable values show WCE and SWP; saved values are SAVING PARAMETERS NOT SUPPORTED (05/39/00)', async () => {
    const { run } = await ready();
    const ch = pages((await run(cdbModeSense6({ page: 0x3f, pageControl: 1 }))).data);
    assert.equal(ch.get(0x08)?.[2], 0x04, 'WCE changeable');
    assert.equal(ch.get(0x0a)?.[4], 0x08, 'SWP changeable');
    assert.ok(ch.get(0x1c)?.subarray(2).every((b) => b === 0), 'nothing changeable in the IE page');
    assert.equal(outcome(await run(cdbModeSense6({ page: 0x3f, pageControl: 3 }))), 'CHECK CONDITION 05/39/00');
  });

  it('an unsupported page or subpage is INVALID FIELD IN CDB', async () => {
    const { run } = await ready();
    assert.equal(outcome(await run(cdbModeSense6({ page: 0x19 }))), 'CHECK CONDITION 05/24/00');
    assert.equal(outcome(await run(cdbModeSense6({ page: 0x0a, subpage: 1 }))), 'CHECK CONDITION 05/24/00');
    assert.equal(outcome(await run(cdbModeSense6({ page: 0x3f, subpage: 0xff }))), 'GOOD', 'all pages and subpages');
  });

  it('allocation length 4 returns the header only; 255 returns less, with an underflow residual (ModeSense6.Residuals)', async () => {
    const { run, a } = await ready();
    const r = await run(cdbModeSense6({ page: 0x3f, allocationLength: 4 }), null, a, 4);
    assert.deepEqual([r.data.length, r.residual.overflow, r.residual.underflow], [4, false, false]);
    const full = await run(cdbModeSense6({ page: 0x3f, allocationLength: 255 }), null, a, 255);
    assert.ok(full.data.length < 255, 'less than 255 bytes of mode data');
    assert.deepEqual([full.residual.underflow, full.residual.count], [true, 255 - full.data.length]);
  });
});

describe('MODE SELECT', () => {
  it('setting SWP write-protects the LU for this nexus; clearing it restores writes (Control-SWP)', async () => {
    const { run } = await ready();
    const control = pages((await run(cdbModeSense6({ page: 0x0a, dbd: true }))).data).get(0x0a) as Buffer;
    const on = Buffer.from(control);
    on[4] |= 0x08;
    const list = selectList(on);
    assert.equal(outcome(await run(cdbModeSelect6(list.length), list)), 'GOOD');
    const now = (await run(cdbModeSense6({ page: 0x0a }))).data;
    assert.equal((pages(now).get(0x0a)?.[4] ?? 0) & 0x08, 0x08, 'SWP reads back set');
    assert.equal(now[2] & 0x80, 0x80, 'WP in the device-specific parameter');
    assert.equal(outcome(await run(cdbRead10(0, 1))), 'GOOD');
    assert.equal(outcome(await run(cdbWrite10(0, 1), Buffer.alloc(BS))), 'CHECK CONDITION 07/27/00');
    const off = selectList(control);
    assert.equal(outcome(await run(cdbModeSelect6(off.length), off)), 'GOOD');
    assert.equal(outcome(await run(cdbWrite10(0, 1), Buffer.alloc(BS))), 'GOOD');
  });

  it('the Control page is per I_T nexus: SWP from one nexus neither protects the LU from another nor gives it MODE PARAMETERS CHANGED', async () => {
    const { run, a, b } = await ready();
    assert.equal(await setSwp(run, true, a), 'GOOD');
    assert.equal(outcome(await run(Buffer.alloc(6), null, b)), 'GOOD', 'no unit attention for the other nexus');
    const seen = (await run(cdbModeSense6({ page: 0x0a }), null, b)).data;
    assert.equal((pages(seen).get(0x0a)?.[4] ?? 0) & 0x08, 0, 'the other nexus has its own Control page, SWP clear');
    assert.equal(seen[2] & 0x80, 0, 'and no WP');
    assert.equal(outcome(await run(cdbWrite10(0, 1), Buffer.alloc(BS), b)), 'GOOD', 'the other nexus writes');
    assert.equal(outcome(await run(cdbWrite10(0, 1), Buffer.alloc(BS), a)), 'CHECK CONDITION 07/27/00');
    assert.equal(await setSwp(run, false, a), 'GOOD');
    assert.equal(outcome(await run(Buffer.alloc(6), null, b)), 'GOOD', 'clearing it is no news to the other nexus either');
  });

  it('the Caching page is shared: changing WCE gives every other nexus MODE PARAMETERS CHANGED, once', async () => {
    const { run, lu, a, b } = await ready();
    const caching = pages((await run(cdbModeSense6({ page: 0x08, dbd: true }))).data).get(0x08) as Buffer;
    const off = Buffer.from(caching);
    off[2] &= ~0x04;
    const list = selectList(off);
    assert.equal(outcome(await run(cdbModeSelect6(list.length), list, a)), 'GOOD');
    assert.equal(outcome(await run(Buffer.alloc(6), null, a)), 'GOOD', 'not the nexus that changed it');
    assert.equal(outcome(await run(Buffer.alloc(6), null, b)), 'CHECK CONDITION 06/2a/01');
    assert.equal(outcome(await run(Buffer.alloc(6), null, b)), 'GOOD');
    const seen = pages((await run(cdbModeSense6({ page: 0x08, dbd: true }), null, b)).data).get(0x08) as Buffer;
    assert.equal(seen[2] & 0x04, 0, 'the other nexus sees WCE clear');
    assert.equal(lu.mode.wce, false);
  });

  it('SWP refuses every command that writes the medium, from that nexus only; reads and SYNCHRONIZE CACHE go on', async () => {
    const { run, a, b } = await ready();
    assert.equal(await setSwp(run, true, a), 'GOOD');
    const unmapList = Buffer.alloc(24);
    unmapList.writeUInt16BE(22, 0);
    unmapList.writeUInt16BE(16, 2);
    unmapList.writeUInt32BE(1, 8 + 8);
    const writes: Array<[string, Buffer, Buffer | null]> = [
      ['WRITE AND VERIFY(10)', cdbWriteAndVerify(10, 0, 1), Buffer.alloc(BS)],
      ['WRITE SAME(10)', cdbWriteSame10(0, 1), Buffer.alloc(BS)],
      ['WRITE SAME(10) UNMAP', cdbWriteSame10(0, 1, { unmap: true }), Buffer.alloc(BS)],
      ['UNMAP', cdbUnmap(unmapList.length), unmapList],
      ['COMPARE AND WRITE', cdbCompareAndWrite(0, 1), Buffer.alloc(2 * BS)],
    ];
    for (const [name, cdb, data] of writes) {
      assert.equal(outcome(await run(cdb, data, a)), 'CHECK CONDITION 07/27/00', name);
      assert.equal(outcome(await run(cdb, data, b)), 'GOOD', `${name} from the other nexus`);
    }
    assert.equal(outcome(await run(cdbRead10(0, 1), null, a)), 'GOOD');
    assert.equal(outcome(await run(cdbSynchronizeCache10(), null, a)), 'GOOD');
  });

  it('a LOGICAL UNIT RESET, or the nexus going away, returns its Control page to the default', async () => {
    const { run, lu, a, target } = await ready();
    assert.equal(await setSwp(run, true, a), 'GOOD');
    lu.reset('lun');
    await run(Buffer.alloc(6), null, a); // BUS DEVICE RESET FUNCTION OCCURRED
    assert.equal(lu.modeFor(a).swp, false, 'reset');
    assert.equal(outcome(await run(cdbWrite10(0, 1), Buffer.alloc(BS), a)), 'GOOD');
    assert.equal(await setSwp(run, true, a), 'GOOD');
    target.nexusGone(a);
    await run(Buffer.alloc(6), null, a); // POWER ON, RESET, OR BUS DEVICE RESET OCCURRED: a new nexus
    assert.equal(lu.modeFor(a).swp, false, 'a new nexus starts from the defaults');
    assert.equal(outcome(await run(cdbWrite10(0, 1), Buffer.alloc(BS), a)), 'GOOD');
  });

  it('changing a bit that is not changeable is INVALID FIELD IN PARAMETER LIST with a pointer to it; nothing is applied', async () => {
    const { run, lu, a } = await ready();
    const control = pages((await run(cdbModeSense6({ page: 0x0a, dbd: true }))).data).get(0x0a) as Buffer;
    const bad = Buffer.from(control);
    bad[4] |= 0x08; // SWP: fine
    bad[2] |= 0x04; // D_SENSE: not changeable
    const list = selectList(bad);
    const r = await run(cdbModeSelect6(list.length), list);
    assert.equal(outcome(r), 'CHECK CONDITION 05/26/00');
    assert.deepEqual(r.sense?.field, { inCdb: false, byte: 4 + 2, bit: 2 });
    assert.equal(lu.modeFor(a).swp, false, 'SWP not applied either');
  });

  it('a wrong page length, PS set, an unknown page, or SP = 1 is refused', async () => {
    const { run } = await ready();
    const caching = pages((await run(cdbModeSense6({ page: 0x08, dbd: true }))).data).get(0x08) as Buffer;
    const short = selectList(caching.subarray(0, 12));
    short[5] = 10;
    assert.equal(outcome(await run(cdbModeSelect6(short.length), short)), 'CHECK CONDITION 05/26/00');
    const ps = selectList(caching);
    ps[4] |= 0x80;
    assert.equal(outcome(await run(cdbModeSelect6(ps.length), ps)), 'CHECK CONDITION 05/26/00');
    const unknown = Buffer.concat([Buffer.alloc(4), Buffer.from([0x19, 2, 0, 0])]);
    assert.equal(outcome(await run(cdbModeSelect6(unknown.length), unknown)), 'CHECK CONDITION 05/26/00');
    const ok = selectList(caching);
    assert.equal(outcome(await run(cdbModeSelect6(ok.length, true), ok)), 'CHECK CONDITION 05/24/00', 'SP');
    assert.equal(outcome(await run(cdbModeSelect6(3), Buffer.alloc(3))), 'CHECK CONDITION 05/1a/00', 'shorter than the header');
  });

  it('clearing WCE flushes first, then makes every write durable (FUA to the backstore)', async () => {
    const mem = createMemoryBackstore(BLOCKS * BS);
    const log: string[] = [];
    const spy: Backstore = Object.create(mem, {
      write: {
        value(buf: Buffer, off: number, len: number, pos: number, fua: boolean, cb: IoCallback) {
          log.push(fua ? 'write+fua' : 'write');
          mem.write(buf, off, len, pos, fua, cb);
        },
      },
      flush: {
        value(cb: IoCallback) {
          log.push('flush');
          mem.flush(cb);
        },
      },
    });
    const { run, lu } = await ready(spy);
    await run(cdbWrite10(0, 1), Buffer.alloc(BS));
    const caching = pages((await run(cdbModeSense10({ page: 0x08, dbd: true }))).data, false).get(0x08) as Buffer;
    assert.equal(caching[2] & 0x04, 0x04, 'WCE set by default');
    const off = Buffer.from(caching);
    off[2] &= ~0x04;
    const list = Buffer.concat([Buffer.alloc(8), off]);
    assert.equal(outcome(await run(cdbModeSelect10(list.length), list)), 'GOOD');
    assert.equal(lu.mode.wce, false);
    await run(cdbWrite10(0, 1), Buffer.alloc(BS));
    assert.deepEqual(log, ['write', 'flush', 'write+fua']);
  });

  it('a block descriptor with the current block length is accepted; another block length is not', async () => {
    const { run } = await ready();
    const caching = pages((await run(cdbModeSense6({ page: 0x08, dbd: true }))).data).get(0x08) as Buffer;
    const bd = Buffer.alloc(8);
    bd.writeUIntBE(BS, 5, 3);
    const good = Buffer.concat([Buffer.from([0, 0, 0, 8]), bd, selectList(caching).subarray(4)]);
    assert.equal(outcome(await run(cdbModeSelect6(good.length), good)), 'GOOD');
    bd.writeUIntBE(4096, 5, 3);
    const bad = Buffer.concat([Buffer.from([0, 0, 0, 8]), bd, selectList(caching).subarray(4)]);
    assert.equal(outcome(await run(cdbModeSelect6(bad.length), bad)), 'CHECK CONDITION 05/26/00');
  });
});
