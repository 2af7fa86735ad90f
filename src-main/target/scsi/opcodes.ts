/**
 * The command table: operation code (and service action) → handler, with
 * what the dispatcher and REPORT SUPPORTED OPERATION CODES need to know —
 * CDB usage data (which doubles as the reserved-bit check), whether the
 * command reports unit attentions, needs the medium, and how it fares
 * under SPC-2 and persistent reservations held by another I_T nexus.
 */
import { MaintenanceIn, ScsiOp, ServiceActionIn16 } from '../../iscsi/cdb';
import type { LogicalUnit } from './logical-unit';
import { persistentReserveIn, persistentReserveOut, type PrClass } from './pr';
import { allocated, good, invalidCdb } from './response';
import {
  compareAndWrite,
  compareAndWriteDataOutLength,
  getLbaStatus,
  orWrite,
  preFetch,
  read,
  readCapacity10,
  readCapacity16,
  readDefectData,
  synchronizeCache,
  unmap,
  unmapDataOutLength,
  verify,
  verifyDataOutLength,
  write,
  writeAtomic,
  writeDataOutLength,
  writeSame,
  writeSameDataOutLength,
} from './sbc';
import {
  inquiry,
  modeSelect,
  modeSelectDataOutLength,
  modeSense,
  preventAllow,
  release,
  reportLuns,
  reportSupportedTmfs,
  requestSense,
  reserve,
  sendDiagnostic,
  startStopUnit,
  testUnitReady,
} from './spc';
import type { ScsiCallback, ScsiCommand } from './types';
import { extendedCopy, extendedCopyDataOutLength, receiveCopyResults } from './xcopy';

export type Handler = (lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback) => void;

export interface CommandDescriptor {
  readonly name: string;
  readonly opcode: number;
  /** Set for operation codes that have service actions (SERVACTV). */
  readonly serviceAction?: number;
  /** CDB USAGE DATA (SPC-4 §6.35.3); its length is the CDB length. Bits that are 0 must be 0 in the CDB. */
  readonly usage: Uint8Array;
  /** false for INQUIRY, REPORT LUNS, REQUEST SENSE (SAM-5 §5.14). */
  readonly reportsUa: boolean;
  /** NOT READY / MEDIUM NOT PRESENT while the medium is ejected. */
  readonly needsMedium: boolean;
  /**
   * Writes the medium: DATA PROTECT / WRITE PROTECTED, checked by the
   * dispatcher, when the LU is read-only or the nexus set SWP (its Control
   * mode page is per I_T nexus, see mode.ts).
   */
  readonly writesMedium: boolean;
  /** Allowed from other nexuses while an SPC-2 reservation is held. */
  readonly spc2Allowed: boolean;
  /** Treatment under a persistent reservation held by someone else. */
  readonly prClass: PrClass;
  readonly prClassOf?: (cdb: Buffer) => PrClass;
  /** Data-Out bytes the CDB calls for (commands with Data-Out only). */
  readonly dataOutLength?: (lu: LogicalUnit, cdb: Buffer) => number;
  /** Offered by this LU at all (default: always). */
  readonly available?: (lu: LogicalUnit) => boolean;
  /** RECOMMENDED COMMAND TIMEOUT (seconds) for RCTD. */
  readonly timeout: number;
  readonly handler: Handler;
}

type Options = Partial<Omit<CommandDescriptor, 'name' | 'opcode' | 'serviceAction' | 'usage' | 'handler'>>;

const COMMANDS: CommandDescriptor[] = [];

function def(name: string, opcode: number, serviceAction: number | undefined, usage: number[], handler: Handler, o: Options = {}): void {
  const u = Uint8Array.from(usage);
  u[0] = opcode;
  if (serviceAction !== undefined) u[1] |= serviceAction;
  COMMANDS.push({
    name,
    opcode,
    serviceAction,
    usage: u,
    reportsUa: o.reportsUa ?? true,
    needsMedium: o.needsMedium ?? false,
    writesMedium: o.writesMedium ?? false,
    spc2Allowed: o.spc2Allowed ?? false,
    prClass: o.prClass ?? 'allowed',
    prClassOf: o.prClassOf,
    dataOutLength: o.dataOutLength,
    available: o.available,
    timeout: o.timeout ?? 30,
    handler,
  });
}

const ff4 = [0xff, 0xff, 0xff, 0xff];
const ff8 = [...ff4, ...ff4];
const READ = { needsMedium: true, prClass: 'read' } as const;
const WRITE = { needsMedium: true, prClass: 'write' } as const;
const WRITES_MEDIUM = { ...WRITE, writesMedium: true } as const;
const WRITE_DATA = { ...WRITES_MEDIUM, dataOutLength: writeDataOutLength };
const INFO = { reportsUa: false, spc2Allowed: true } as const;

// DPO | FUA | FUA_NV (obsolete, ignored) in byte 1 of the READ/WRITE CDBs; RDPROTECT/WRPROTECT must be 0.
const RW = 0x1a;

// SPC
def('TEST UNIT READY', ScsiOp.TEST_UNIT_READY, undefined, [0, 0, 0, 0, 0, 0], testUnitReady, { needsMedium: true });
def('REQUEST SENSE', ScsiOp.REQUEST_SENSE, undefined, [0, 0x01, 0, 0, 0xff, 0], requestSense, INFO);
def('INQUIRY', ScsiOp.INQUIRY, undefined, [0, 0x01, 0xff, 0xff, 0xff, 0], inquiry, INFO);
def('MODE SELECT(6)', ScsiOp.MODE_SELECT_6, undefined, [0, 0x11, 0, 0, 0xff, 0], modeSelect, { prClass: 'write', dataOutLength: modeSelectDataOutLength });
def('MODE SELECT(10)', ScsiOp.MODE_SELECT_10, undefined, [0, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, 0], modeSelect, { prClass: 'write', dataOutLength: modeSelectDataOutLength });
def('MODE SENSE(6)', ScsiOp.MODE_SENSE_6, undefined, [0, 0x08, 0xff, 0xff, 0xff, 0], modeSense, { prClass: 'write' });
def('MODE SENSE(10)', ScsiOp.MODE_SENSE_10, undefined, [0, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0], modeSense, { prClass: 'write' });
def('RESERVE(6)', ScsiOp.RESERVE_6, undefined, [0, 0, 0, 0, 0, 0], reserve, { prClass: 'write' });
def('RELEASE(6)', ScsiOp.RELEASE_6, undefined, [0, 0, 0, 0, 0, 0], release, { prClass: 'write', spc2Allowed: true });
def('RESERVE(10)', ScsiOp.RESERVE_10, undefined, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], reserve, { prClass: 'write' });
def('RELEASE(10)', ScsiOp.RELEASE_10, undefined, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], release, { prClass: 'write', spc2Allowed: true });
def('SEND DIAGNOSTIC', ScsiOp.SEND_DIAGNOSTIC, undefined, [0, 0x04, 0, 0xff, 0xff, 0], sendDiagnostic, { prClass: 'write' });
def('PERSISTENT RESERVE IN / READ KEYS', ScsiOp.PERSISTENT_RESERVE_IN, 0x00, [0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0], persistentReserveIn);
def('PERSISTENT RESERVE IN / READ RESERVATION', ScsiOp.PERSISTENT_RESERVE_IN, 0x01, [0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0], persistentReserveIn);
def('PERSISTENT RESERVE IN / REPORT CAPABILITIES', ScsiOp.PERSISTENT_RESERVE_IN, 0x02, [0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0], persistentReserveIn);
def('PERSISTENT RESERVE IN / READ FULL STATUS', ScsiOp.PERSISTENT_RESERVE_IN, 0x03, [0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0], persistentReserveIn);
const prOutLength = (_lu: LogicalUnit, cdb: Buffer): number => cdb.readUInt32BE(5);
for (const [sa, what] of [
  [0x00, 'REGISTER'],
  [0x01, 'RESERVE'],
  [0x02, 'RELEASE'],
  [0x03, 'CLEAR'],
  [0x04, 'PREEMPT'],
  [0x05, 'PREEMPT AND ABORT'],
  [0x06, 'REGISTER AND IGNORE EXISTING KEY'],
  [0x07, 'REGISTER AND MOVE'],
] as const) {
  def(`PERSISTENT RESERVE OUT / ${what}`, ScsiOp.PERSISTENT_RESERVE_OUT, sa, [0, 0, 0xff, 0, 0, ...ff4, 0], persistentReserveOut, {
    spc2Allowed: true,
    dataOutLength: prOutLength,
  });
}
def('EXTENDED COPY(LID1)', ScsiOp.EXTENDED_COPY, 0x00, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...ff4, 0, 0], extendedCopy, {
  prClass: 'write',
  dataOutLength: extendedCopyDataOutLength,
  timeout: 120,
});
def('RECEIVE COPY RESULTS / COPY STATUS', ScsiOp.RECEIVE_COPY_RESULTS, 0x00, [0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, ...ff4, 0, 0], receiveCopyResults, { prClass: 'write' });
def('RECEIVE COPY RESULTS / OPERATING PARAMETERS', ScsiOp.RECEIVE_COPY_RESULTS, 0x03, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...ff4, 0, 0], receiveCopyResults, { prClass: 'write' });
def('REPORT LUNS', ScsiOp.REPORT_LUNS, undefined, [0, 0, 0xff, 0, 0, 0, ...ff4, 0, 0], reportLuns, INFO);
def('REPORT SUPPORTED OPERATION CODES', ScsiOp.MAINTENANCE_IN, MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES, [0, 0, 0x87, 0xff, 0xff, 0xff, ...ff4, 0, 0], reportSupportedOpcodes, {
  spc2Allowed: true,
});
def('REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS', ScsiOp.MAINTENANCE_IN, MaintenanceIn.REPORT_SUPPORTED_TASK_MANAGEMENT_FUNCTIONS, [0, 0, 0x80, 0, 0, 0, ...ff4, 0, 0], reportSupportedTmfs, {
  spc2Allowed: true,
});

// SBC
def('READ(6)', ScsiOp.READ_6, undefined, [0, 0x1f, 0xff, 0xff, 0xff, 0], read, READ);
def('WRITE(6)', ScsiOp.WRITE_6, undefined, [0, 0x1f, 0xff, 0xff, 0xff, 0], write, WRITE_DATA);
def('READ(10)', ScsiOp.READ_10, undefined, [0, RW, ...ff4, 0x1f, 0xff, 0xff, 0], read, READ);
def('WRITE(10)', ScsiOp.WRITE_10, undefined, [0, RW, ...ff4, 0x1f, 0xff, 0xff, 0], write, WRITE_DATA);
def('READ(12)', ScsiOp.READ_12, undefined, [0, RW, ...ff4, ...ff4, 0x1f, 0], read, READ);
def('WRITE(12)', ScsiOp.WRITE_12, undefined, [0, RW, ...ff4, ...ff4, 0x1f, 0], write, WRITE_DATA);
def('READ(16)', ScsiOp.READ_16, undefined, [0, RW, ...ff8, ...ff4, 0x1f, 0], read, READ);
def('WRITE(16)', ScsiOp.WRITE_16, undefined, [0, RW, ...ff8, ...ff4, 0x1f, 0], write, WRITE_DATA);
def('WRITE AND VERIFY(10)', ScsiOp.WRITE_AND_VERIFY_10, undefined, [0, 0x12, ...ff4, 0x1f, 0xff, 0xff, 0], write, WRITE_DATA);
def('WRITE AND VERIFY(12)', ScsiOp.WRITE_AND_VERIFY_12, undefined, [0, 0x12, ...ff4, ...ff4, 0x1f, 0], write, WRITE_DATA);
def('WRITE AND VERIFY(16)', ScsiOp.WRITE_AND_VERIFY_16, undefined, [0, 0x12, ...ff8, ...ff4, 0x1f, 0], write, WRITE_DATA);
const VERIFY = { ...READ, dataOutLength: verifyDataOutLength };
def('VERIFY(10)', ScsiOp.VERIFY_10, undefined, [0, 0x16, ...ff4, 0x1f, 0xff, 0xff, 0], verify, VERIFY);
def('VERIFY(12)', ScsiOp.VERIFY_12, undefined, [0, 0x16, ...ff4, ...ff4, 0x1f, 0], verify, VERIFY);
def('VERIFY(16)', ScsiOp.VERIFY_16, undefined, [0, 0x16, ...ff8, ...ff4, 0x1f, 0], verify, VERIFY);
def('PRE-FETCH(10)', ScsiOp.PRE_FETCH_10, undefined, [0, 0x02, ...ff4, 0x1f, 0xff, 0xff, 0], preFetch, READ);
def('PRE-FETCH(16)', ScsiOp.PRE_FETCH_16, undefined, [0, 0x02, ...ff8, ...ff4, 0x1f, 0], preFetch, READ);
def('SYNCHRONIZE CACHE(10)', ScsiOp.SYNCHRONIZE_CACHE_10, undefined, [0, 0x06, ...ff4, 0x1f, 0xff, 0xff, 0], synchronizeCache, WRITE);
def('SYNCHRONIZE CACHE(16)', ScsiOp.SYNCHRONIZE_CACHE_16, undefined, [0, 0x06, ...ff8, ...ff4, 0x1f, 0], synchronizeCache, WRITE);
const WRITE_SAME = { ...WRITES_MEDIUM, dataOutLength: writeSameDataOutLength };
def('WRITE SAME(10)', ScsiOp.WRITE_SAME_10, undefined, [0, 0x08, ...ff4, 0x1f, 0xff, 0xff, 0], writeSame, WRITE_SAME);
def('WRITE SAME(16)', ScsiOp.WRITE_SAME_16, undefined, [0, 0x09, ...ff8, ...ff4, 0x1f, 0], writeSame, WRITE_SAME);
def('UNMAP', ScsiOp.UNMAP, undefined, [0, 0, 0, 0, 0, 0, 0x1f, 0xff, 0xff, 0], unmap, {
  ...WRITES_MEDIUM,
  dataOutLength: unmapDataOutLength,
  // Offered on thin LUs, and on write-protected ones, where it is refused as a write (ReadOnly.ReadOnlySBC).
  available: (lu) => lu.thinProvisioned || lu.writeProtected,
});
def('COMPARE AND WRITE', ScsiOp.COMPARE_AND_WRITE, undefined, [0, RW, ...ff8, 0, 0, 0, 0xff, 0x1f, 0], compareAndWrite, {
  ...WRITES_MEDIUM,
  dataOutLength: compareAndWriteDataOutLength,
});
def('ORWRITE(16)', ScsiOp.ORWRITE_16, undefined, [0, RW, ...ff8, ...ff4, 0x1f, 0], orWrite, WRITE_DATA);
def('WRITE ATOMIC(16)', ScsiOp.WRITE_ATOMIC_16, undefined, [0, 0x18, ...ff8, 0, 0, 0xff, 0xff, 0x1f, 0], writeAtomic, WRITE_DATA);
def('READ CAPACITY(10)', ScsiOp.READ_CAPACITY_10, undefined, [0, 0, ...ff4, 0, 0, 0x01, 0], readCapacity10, { needsMedium: true });
def('READ CAPACITY(16)', ScsiOp.SERVICE_ACTION_IN_16, ServiceActionIn16.READ_CAPACITY_16, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...ff4, 0x01, 0], readCapacity16, {
  needsMedium: true,
});
def('GET LBA STATUS', ScsiOp.SERVICE_ACTION_IN_16, ServiceActionIn16.GET_LBA_STATUS, [0, 0, ...ff8, ...ff4, 0, 0], getLbaStatus, READ);
def('READ DEFECT DATA(10)', ScsiOp.READ_DEFECT_DATA_10, undefined, [0, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0], readDefectData, { prClass: 'read' });
def('READ DEFECT DATA(12)', ScsiOp.READ_DEFECT_DATA_12, undefined, [0, 0x1f, ...ff4, ...ff4, 0, 0], readDefectData, { prClass: 'read' });
def('START STOP UNIT', ScsiOp.START_STOP_UNIT, undefined, [0, 0x01, 0, 0x0f, 0xf7, 0], startStopUnit, {
  prClass: 'write',
  // START = 1 with POWER CONDITION 0 is allowed under any reservation (SBC-3 table 13).
  prClassOf: (cdb) => ((cdb[4] & 0xf1) === 0x01 ? 'allowed' : 'write'),
  timeout: 60,
});
def('PREVENT ALLOW MEDIUM REMOVAL', ScsiOp.PREVENT_ALLOW_MEDIUM_REMOVAL, undefined, [0, 0, 0, 0, 0x03, 0], preventAllow, {
  prClass: 'write',
  prClassOf: (cdb) => ((cdb[4] & 0x03) === 0 ? 'allowed' : 'write'),
});

// ---------------------------------------------------------------------------
// Lookup
// ---------------------------------------------------------------------------

/** Operation codes whose byte 1 bits 4..0 hold a service action. */
const TABLE: Array<CommandDescriptor | Map<number, CommandDescriptor> | undefined> = new Array(256);
for (const d of COMMANDS) {
  if (d.serviceAction === undefined) {
    TABLE[d.opcode] = d;
  } else {
    let m = TABLE[d.opcode];
    if (!(m instanceof Map)) TABLE[d.opcode] = m = new Map();
    m.set(d.serviceAction, d);
  }
}

/** Every command in the table (for REPORT SUPPORTED OPERATION CODES and tests). */
export const ALL_COMMANDS: readonly CommandDescriptor[] = COMMANDS;

export type Lookup = CommandDescriptor | 'invalid-opcode' | 'invalid-service-action';

export function lookupCommand(lu: LogicalUnit, cdb: Buffer): Lookup {
  const entry = TABLE[cdb[0]];
  if (entry === undefined) return 'invalid-opcode';
  if (entry instanceof Map) {
    const d = cdb.length > 1 ? entry.get(cdb[1] & 0x1f) : undefined;
    if (d === undefined || (d.available !== undefined && !d.available(lu))) return 'invalid-service-action';
    return d;
  }
  if (entry.available !== undefined && !entry.available(lu)) return 'invalid-opcode';
  return entry;
}

// ---------------------------------------------------------------------------
// REPORT SUPPORTED OPERATION CODES (SPC-4 §6.35)
// ---------------------------------------------------------------------------

function timeoutsDescriptor(d: CommandDescriptor): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(0x0a, 0);
  b.writeUInt32BE(0, 4); // NOMINAL COMMAND PROCESSING TIMEOUT: not specified
  b.writeUInt32BE(d.timeout, 8);
  return b;
}

function oneCommand(d: CommandDescriptor | undefined, rctd: boolean): Buffer {
  if (d === undefined) {
    const b = Buffer.alloc(4);
    b[1] = 0x01; // SUPPORT 001b: not supported
    return b;
  }
  const b = Buffer.alloc(4 + d.usage.length + (rctd ? 12 : 0));
  b[1] = (rctd ? 0x80 : 0) | 0x03; // SUPPORT 011b: supported as the standard says
  b.writeUInt16BE(d.usage.length, 2);
  Buffer.from(d.usage).copy(b, 4);
  if (rctd) timeoutsDescriptor(d).copy(b, 4 + d.usage.length);
  return b;
}

function reportSupportedOpcodes(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  const rctd = (cdb[2] & 0x80) !== 0;
  const options = cdb[2] & 0x07;
  const op = cdb[3];
  const sa = cdb.readUInt16BE(4);
  const alloc = cdb.readUInt32BE(6);
  const offered = (d: CommandDescriptor): boolean => d.available === undefined || d.available(lu);
  let data: Buffer;
  switch (options) {
    case 0: {
      const parts: Buffer[] = [Buffer.alloc(4)];
      for (const d of COMMANDS) {
        if (!offered(d)) continue;
        const b = Buffer.alloc(8);
        b[0] = d.opcode;
        b.writeUInt16BE(d.serviceAction ?? 0, 2);
        b[5] = (rctd ? 0x02 : 0) | (d.serviceAction !== undefined ? 0x01 : 0);
        b.writeUInt16BE(d.usage.length, 6);
        parts.push(b);
        if (rctd) parts.push(timeoutsDescriptor(d));
      }
      data = Buffer.concat(parts);
      data.writeUInt32BE(data.length - 4, 0);
      break;
    }
    case 1:
    case 2:
    case 3: {
      const entry = TABLE[op];
      const hasSa = entry instanceof Map;
      // 001b names an operation code without service actions; 010b one with them (SPC-4 table 305).
      if (options === 1 && hasSa) throw invalidCdb(3);
      if (options === 2 && entry !== undefined && !hasSa) throw invalidCdb(3);
      let d: CommandDescriptor | undefined;
      if (entry instanceof Map) d = sa <= 0x1f ? entry.get(sa) : undefined;
      else d = entry;
      data = oneCommand(d !== undefined && offered(d) ? d : undefined, rctd);
      break;
    }
    default:
      throw invalidCdb(2, 2);
  }
  done(good(allocated(data, alloc)));
}
