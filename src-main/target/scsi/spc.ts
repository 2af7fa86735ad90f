/**
 * Primary commands (SPC-4) and the medium-handling block commands:
 * TEST UNIT READY, REQUEST SENSE, INQUIRY, MODE SENSE/SELECT, RESERVE/
 * RELEASE, START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL, SEND DIAGNOSTIC,
 * REPORT LUNS, REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS.
 */
import { ScsiOp, encodeLun } from '../../iscsi/cdb';
import { AdditionalSense, SenseKey, buildDescriptorSense, buildFixedSense } from '../../iscsi/sense';
import type { LogicalUnit } from './logical-unit';
import { ModePage, PageControl, SUPPORTED_PAGES, applyPage, buildPage, changeableMask, nexusPart, pageLength, sharedPart } from './mode';
import { allocated, good, illegal, invalidCdb, invalidParam, ioErrorResponse, parameterListLengthError, reservationConflict } from './response';
import type { ScsiCallback, ScsiCommand, SupportedTmfs } from './types';
import { buildVpdPage, standardInquiry } from './vpd';

export function testUnitReady(_lu: LogicalUnit, _cmd: ScsiCommand, done: ScsiCallback): void {
  done(good());
}

/** REQUEST SENSE: the pending unit attention (consumed), NOT READY without medium, else NO SENSE. */
export function requestSense(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const descriptor = (cmd.cdb[1] & 0x01) !== 0;
  const st = lu.nexusState(cmd.nexus);
  let key: number = SenseKey.NO_SENSE;
  let code: number = AdditionalSense.NO_ADDITIONAL_SENSE;
  if (st.ua.length > 0) {
    key = SenseKey.UNIT_ATTENTION;
    code = st.ua.shift() as number;
  } else if (!lu.mediumLoaded) {
    key = SenseKey.NOT_READY;
    code = AdditionalSense.MEDIUM_NOT_PRESENT;
  }
  const sense = descriptor ? buildDescriptorSense({ key, code }) : buildFixedSense({ key, code });
  done(good(allocated(sense, cmd.cdb[4])));
}

export function inquiry(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  const evpd = (cdb[1] & 0x01) !== 0;
  const page = cdb[2];
  const alloc = cdb.readUInt16BE(3);
  let data: Buffer | undefined;
  if (!evpd) {
    if (page !== 0) throw invalidCdb(2);
    data = standardInquiry({ vendor: lu.vendor, product: lu.product, revision: lu.revision, removable: lu.removable, thirdPartyCopy: true });
  } else {
    data = buildVpdPage(lu, page, cmd.nexus);
    if (data === undefined) throw invalidCdb(2);
  }
  done(good(allocated(data, alloc)));
}

// ---------------------------------------------------------------------------
// MODE SENSE / MODE SELECT
// ---------------------------------------------------------------------------

export function modeSense(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  const six = cdb[0] === ScsiOp.MODE_SENSE_6;
  const dbd = (cdb[1] & 0x08) !== 0;
  const llbaa = !six && (cdb[1] & 0x10) !== 0;
  const pc = cdb[2] >> 6;
  const page = cdb[2] & 0x3f;
  const subpage = cdb[3];
  const alloc = six ? cdb[4] : cdb.readUInt16BE(7);
  if (pc === PageControl.SAVED) throw illegal(AdditionalSense.SAVING_PARAMETERS_NOT_SUPPORTED);
  let pages: readonly number[];
  if (page === ModePage.ALL) {
    if (subpage !== 0x00 && subpage !== 0xff) throw invalidCdb(3);
    pages = SUPPORTED_PAGES;
  } else {
    if (pageLength(page) === undefined) throw invalidCdb(2, 5);
    if (subpage !== 0) throw invalidCdb(3);
    pages = [page];
  }
  const current = lu.modeFor(cmd.nexus);
  const body = Buffer.concat(pages.map((p) => buildPage(p, pc, current)));
  const bdLen = dbd ? 0 : llbaa ? 16 : 8;
  const hdrLen = six ? 4 : 8;
  const b = Buffer.alloc(hdrLen + bdLen + body.length);
  // DEVICE-SPECIFIC PARAMETER: WP (as this nexus sees it: its SWP counts), DPOFUA (SBC-3 §6.4.1).
  const dsp = (lu.writeProtectedFor(cmd.nexus) ? 0x80 : 0) | 0x10;
  if (six) {
    b[0] = b.length - 1;
    b[2] = dsp;
    b[3] = bdLen;
  } else {
    b.writeUInt16BE(b.length - 2, 0);
    b[3] = dsp;
    b[4] = llbaa ? 0x01 : 0x00;
    b.writeUInt16BE(bdLen, 6);
  }
  if (bdLen > 0 && pc !== PageControl.CHANGEABLE) {
    const n = lu.numBlocks;
    if (bdLen === 8) {
      b.writeUInt32BE(n > 0xffffffff ? 0xffffffff : n, hdrLen);
      b.writeUIntBE(lu.blockSize, hdrLen + 5, 3);
    } else {
      b.writeUInt32BE(Math.floor(n / 0x1_0000_0000), hdrLen);
      b.writeUInt32BE(n >>> 0, hdrLen + 4);
      b.writeUInt32BE(lu.blockSize, hdrLen + 12);
    }
  }
  body.copy(b, hdrLen + bdLen);
  done(good(allocated(b, alloc)));
}

export function modeSelectDataOutLength(_lu: LogicalUnit, cdb: Buffer): number {
  return cdb[0] === ScsiOp.MODE_SELECT_6 ? cdb[4] : cdb.readUInt16BE(7);
}

/**
 * MODE SELECT(6/10): each page must match the current one (as this nexus
 * sees it) except in the changeable bits (WCE, SWP). Nothing is applied
 * unless everything checks out. A change to a shared page (WCE) gives the
 * other nexuses MODE PARAMETERS CHANGED (SPC-4 §6.11); the Control page
 * (SWP) is this nexus's own copy, so changing it concerns no other nexus.
 */
export function modeSelect(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  const six = cdb[0] === ScsiOp.MODE_SELECT_6;
  if (cdb[1] & 0x01) throw invalidCdb(1, 0); // SP: saved pages are not supported
  const plen = six ? cdb[4] : cdb.readUInt16BE(7);
  if (plen === 0) return done(good());
  const data = cmd.dataOut;
  const have = Math.min(plen, data === null ? 0 : data.length);
  const hdrLen = six ? 4 : 8;
  if (data === null || have < hdrLen) throw parameterListLengthError();
  const bdLen = six ? data[3] : data.readUInt16BE(6);
  const longLba = !six && (data[4] & 0x01) !== 0;
  if (bdLen !== 0 && bdLen !== (longLba ? 16 : 8)) throw invalidParam(six ? 3 : 6);
  if (hdrLen + bdLen > have) throw parameterListLengthError();
  if (bdLen > 0) {
    const at = hdrLen;
    const blockLength = longLba ? data.readUInt32BE(at + 12) : data.readUIntBE(at + 5, 3);
    if (blockLength !== lu.blockSize) throw invalidParam(at + (longLba ? 12 : 5));
    const blocks = longLba ? data.readUInt32BE(at) * 0x1_0000_0000 + data.readUInt32BE(at + 4) : data.readUInt32BE(at);
    const current = longLba ? lu.numBlocks : Math.min(lu.numBlocks, 0xffffffff);
    if (blocks !== 0 && blocks !== current) throw invalidParam(at);
  }
  // The nexus state is taken now: if the nexus goes during the flush below, its copy goes with it.
  const own = lu.nexusState(cmd.nexus).mode;
  const before = lu.modeFor(cmd.nexus);
  const staged = { ...before };
  let pos = hdrLen + bdLen;
  while (pos < have) {
    if (pos + 2 > have) throw parameterListLengthError();
    const code = data[pos] & 0x3f;
    if (data[pos] & 0x80) throw invalidParam(pos, 7); // PS is reserved in MODE SELECT
    if (data[pos] & 0x40) throw invalidParam(pos, 6); // no subpages
    const expected = pageLength(code);
    if (expected === undefined) throw invalidParam(pos, 5);
    const len = data[pos + 1] + 2;
    if (len !== expected) throw invalidParam(pos + 1);
    if (pos + len > have) throw parameterListLengthError();
    const current = buildPage(code, PageControl.CURRENT, before);
    const mask = changeableMask(code);
    for (let i = 2; i < len; i++) {
      const bad = (data[pos + i] ^ current[i]) & ~mask[i];
      if (bad !== 0) throw invalidParam(pos + i, 31 - Math.clz32(bad));
    }
    applyPage(code, data.subarray(pos, pos + len), staged);
    pos += len;
  }
  const sharedChanged = staged.wce !== before.wce;
  const flushFirst = before.wce && !staged.wce;
  const apply = (): void => {
    Object.assign(lu.mode, sharedPart(staged));
    Object.assign(own, nexusPart(staged));
    if (sharedChanged) lu.establishUnitAttention(AdditionalSense.MODE_PARAMETERS_CHANGED, { except: cmd.nexus.key });
    done(good());
  };
  // Turning the write cache off: what it held must be durable first.
  if (flushFirst) lu.backstore.flush((err) => (err ? done(ioErrorResponse(err, true)) : apply()));
  else apply();
}

// ---------------------------------------------------------------------------
// RESERVE / RELEASE (SPC-2)
// ---------------------------------------------------------------------------

/** RESERVE(6/10). Conflicts while persistent reservations are in use (CRH = 1). */
export function reserve(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  if (lu.pr.registrations.size > 0 || lu.pr.reservation !== null) return done(reservationConflict());
  const me = cmd.nexus.key;
  if (lu.spc2Holder !== null && lu.spc2Holder !== me) return done(reservationConflict());
  lu.spc2Holder = me;
  done(good());
}

/** RELEASE(6/10): releases our own reservation; from anyone else it does nothing. */
export function release(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  if (lu.pr.registrations.size > 0 || lu.pr.reservation !== null) return done(reservationConflict());
  if (lu.spc2Holder === cmd.nexus.key) lu.spc2Holder = null;
  done(good());
}

// ---------------------------------------------------------------------------
// START STOP UNIT / PREVENT ALLOW MEDIUM REMOVAL
// ---------------------------------------------------------------------------

/**
 * START STOP UNIT (SBC-3 §5.25). Power conditions are accepted and change
 * nothing (a virtual disk is always active); START = 0 flushes unless
 * NO_FLUSH. On a removable LU, LOEJ ejects (START = 0) or loads (START = 1)
 * the medium, unless some nexus prevents removal.
 */
export function startStopUnit(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const b4 = cmd.cdb[4];
  const powerCondition = b4 >> 4;
  const noFlush = (b4 & 0x04) !== 0;
  const loej = (b4 & 0x02) !== 0;
  const start = (b4 & 0x01) !== 0;
  if (powerCondition !== 0) return done(good());
  const flushThen = (then: () => void): void => {
    if (noFlush || !lu.mediumLoaded) return then();
    lu.backstore.flush((err) => (err ? done(ioErrorResponse(err, true)) : then()));
  };
  if (!loej) {
    if (start) return done(good());
    return flushThen(() => done(good()));
  }
  if (!lu.removable) throw invalidCdb(4, 1);
  if (lu.removalPrevented) throw illegal(AdditionalSense.MEDIUM_REMOVAL_PREVENTED);
  if (start) {
    if (!lu.mediumLoaded) {
      lu.mediumLoaded = true;
      lu.establishUnitAttention(AdditionalSense.NOT_READY_TO_READY_CHANGE, { except: cmd.nexus.key });
    }
    return done(good());
  }
  flushThen(() => {
    lu.mediumLoaded = false;
    done(good());
  });
}

export function preventAllow(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const prevent = cmd.cdb[4] & 0x03;
  if (prevent > 1) throw invalidCdb(4, 1);
  lu.nexusState(cmd.nexus).prevent = prevent === 1;
  done(good());
}

/** SEND DIAGNOSTIC: the default self-test (SELFTEST = 1) passes; nothing else is supported. */
export function sendDiagnostic(_lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  if (cmd.cdb.readUInt16BE(3) !== 0) throw invalidCdb(3);
  done(good());
}

// ---------------------------------------------------------------------------
// REPORT LUNS / REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS
// ---------------------------------------------------------------------------

/** REPORT LUNS parameter data for the given LUNs (SPC-4 §6.33). */
export function reportLunsData(cdb: Buffer, luns: readonly number[]): Buffer {
  const select = cdb[2];
  if (select !== 0x00 && select !== 0x01 && select !== 0x02) throw invalidCdb(2);
  // 01h: well known LUs only — there are none.
  const list = select === 0x01 ? [] : [...luns].sort((a, b) => a - b);
  const b = Buffer.alloc(8 + 8 * list.length);
  b.writeUInt32BE(8 * list.length, 0);
  list.forEach((lun, i) => encodeLun(lun, b, 8 + 8 * i));
  return b;
}

export function reportLuns(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const data = reportLunsData(cmd.cdb, lu.reportLuns(cmd.nexus.key));
  done(good(allocated(data, cmd.cdb.readUInt32BE(6))));
}

/** REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS data (SPC-4 §6.40). */
export function tmfData(tmfs: SupportedTmfs, repd: boolean): Buffer {
  const b = Buffer.alloc(repd ? 16 : 4);
  b[0] =
    (tmfs.abortTask ? 0x80 : 0) |
    (tmfs.abortTaskSet ? 0x40 : 0) |
    (tmfs.clearAca ? 0x20 : 0) |
    (tmfs.clearTaskSet ? 0x10 : 0) |
    (tmfs.logicalUnitReset ? 0x08 : 0) |
    (tmfs.queryTask ? 0x04 : 0) |
    (tmfs.targetReset ? 0x02 : 0) |
    (tmfs.wakeup ? 0x01 : 0);
  b[1] = (tmfs.queryUnitAttention ? 0x04 : 0) | (tmfs.queryTaskSet ? 0x02 : 0) | (tmfs.itNexusReset ? 0x01 : 0);
  if (repd) b[3] = 0x0c;
  return b;
}

export function reportSupportedTmfs(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const repd = (cmd.cdb[2] & 0x80) !== 0;
  done(good(allocated(tmfData(lu.supportedTmfs, repd), cmd.cdb.readUInt32BE(6))));
}
