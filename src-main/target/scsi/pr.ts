/**
 * Persistent reservations (SPC-4 §5.9, §6.15, §6.16): PERSISTENT RESERVE IN
 * (READ KEYS, READ RESERVATION, REPORT CAPABILITIES, READ FULL STATUS) and
 * PERSISTENT RESERVE OUT (REGISTER, RESERVE, RELEASE, CLEAR, PREEMPT,
 * PREEMPT AND ABORT, REGISTER AND IGNORE EXISTING KEY, REGISTER AND MOVE).
 *
 * Registrations are kept per I_T nexus identity (nexus key) and survive the
 * nexus going away; nothing survives a restart (APTPL is not supported, and
 * REPORT CAPABILITIES says so).
 */
import { PrIn, PrOut, PrType } from '../../iscsi/cdb';
import { AdditionalSense } from '../../iscsi/sense';
import type { LogicalUnit } from './logical-unit';
import { allocated, good, illegal, invalidCdb, invalidParam, parameterListLengthError, reservationConflict } from './response';
import type { ItNexus, ScsiCallback, ScsiCommand } from './types';

/** How a command is treated under a persistent reservation held by someone else (SPC-4 table 63, SBC-3 table 13). */
export type PrClass = 'allowed' | 'read' | 'write';

export interface Registration {
  key: bigint;
  /** The nexus as last seen (for READ FULL STATUS). */
  nexus: ItNexus;
}

export interface Reservation {
  /** Nexus key of the holder (for all-registrants types: who reserved). */
  holder: string;
  type: number;
}

export interface PrState {
  generation: number;
  /** By nexus key. */
  registrations: Map<string, Registration>;
  reservation: Reservation | null;
}

const VALID_TYPES = new Set<number>(Object.values(PrType));

function allRegistrants(type: number): boolean {
  return type === PrType.WRITE_EXCLUSIVE_ALL_REGISTRANTS || type === PrType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS;
}

function registrantsOnly(type: number): boolean {
  return type === PrType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY || type === PrType.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY;
}

/** Is `nexusKey` a holder of the current reservation? */
export function isHolder(pr: PrState, nexusKey: string): boolean {
  const r = pr.reservation;
  if (r === null) return false;
  if (allRegistrants(r.type)) return pr.registrations.has(nexusKey);
  return r.holder === nexusKey;
}

/** Does a command of class `cls` from `nexusKey` conflict with the current reservation? */
export function prConflicts(pr: PrState, cls: PrClass, nexusKey: string): boolean {
  const r = pr.reservation;
  if (r === null || cls === 'allowed' || isHolder(pr, nexusKey)) return false;
  switch (r.type) {
    case PrType.WRITE_EXCLUSIVE:
      return cls === 'write';
    case PrType.EXCLUSIVE_ACCESS:
      return true;
    case PrType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY:
    case PrType.WRITE_EXCLUSIVE_ALL_REGISTRANTS:
      return !pr.registrations.has(nexusKey) && cls === 'write';
    default:
      return !pr.registrations.has(nexusKey);
  }
}

// ---------------------------------------------------------------------------
// PERSISTENT RESERVE IN
// ---------------------------------------------------------------------------

/** iSCSI TransportID of an initiator port (SPC-4 §7.6.4.6, format 01b). */
export function transportId(nexus: ItNexus): Buffer {
  const name = Buffer.from(nexus.initiatorPortName, 'utf8');
  const len = Math.max(20, (name.length + 1 + 3) & ~3);
  const b = Buffer.alloc(4 + len);
  b[0] = 0x40 | 0x05;
  b.writeUInt16BE(len, 2);
  name.copy(b, 4);
  return b;
}

export function persistentReserveIn(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  const sa = cdb[1] & 0x1f;
  const alloc = cdb.readUInt16BE(7);
  const pr = lu.pr;
  let data: Buffer;
  switch (sa) {
    case PrIn.READ_KEYS: {
      const keys = [...pr.registrations.values()];
      data = Buffer.alloc(8 + 8 * keys.length);
      data.writeUInt32BE(pr.generation >>> 0, 0);
      data.writeUInt32BE(8 * keys.length, 4);
      keys.forEach((r, i) => data.writeBigUInt64BE(r.key, 8 + 8 * i));
      break;
    }
    case PrIn.READ_RESERVATION: {
      const r = pr.reservation;
      data = Buffer.alloc(r ? 24 : 8);
      data.writeUInt32BE(pr.generation >>> 0, 0);
      if (r) {
        data.writeUInt32BE(16, 4);
        const key = allRegistrants(r.type) ? 0n : (pr.registrations.get(r.holder)?.key ?? 0n);
        data.writeBigUInt64BE(key, 8);
        data[21] = r.type & 0x0f; // SCOPE 0h (LU)
      }
      break;
    }
    case PrIn.REPORT_CAPABILITIES: {
      data = Buffer.alloc(8);
      data.writeUInt16BE(8, 0);
      data[2] = 0x10; // CRH: RESERVE/RELEASE conflict while registrations exist; SIP_C, ATP_C, PTPL_C = 0
      data[3] = 0x80; // TMV; ALLOW COMMANDS 000b; PTPL_A 0
      data[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02; // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
      data[5] = 0x01; // EX_AC_AR
      break;
    }
    case PrIn.READ_FULL_STATUS: {
      const parts: Buffer[] = [];
      for (const [nexusKey, reg] of pr.registrations) {
        const tid = transportId(reg.nexus);
        const d = Buffer.alloc(24 + tid.length);
        d.writeBigUInt64BE(reg.key, 0);
        if (isHolder(pr, nexusKey)) {
          d[12] = 0x01; // R_HOLDER
          d[13] = (pr.reservation as Reservation).type & 0x0f;
        }
        d.writeUInt16BE(reg.nexus.relativeTargetPortId & 0xffff, 18);
        d.writeUInt32BE(tid.length, 20);
        tid.copy(d, 24);
        parts.push(d);
      }
      const body = Buffer.concat(parts);
      data = Buffer.alloc(8 + body.length);
      data.writeUInt32BE(pr.generation >>> 0, 0);
      data.writeUInt32BE(body.length, 4);
      body.copy(data, 8);
      break;
    }
    default:
      throw invalidCdb(1, 4);
  }
  done(good(allocated(data, alloc)));
}

// ---------------------------------------------------------------------------
// PERSISTENT RESERVE OUT
// ---------------------------------------------------------------------------

function removeRegistrations(lu: LogicalUnit, victims: string[], except: string): void {
  const pr = lu.pr;
  for (const k of victims) {
    pr.registrations.delete(k);
    if (pr.reservation !== null && pr.reservation.holder === k && !allRegistrants(pr.reservation.type)) pr.reservation = null;
  }
  const others = victims.filter((k) => k !== except);
  if (others.length > 0) lu.establishUnitAttention(AdditionalSense.REGISTRATIONS_PREEMPTED, { only: others });
  if (pr.reservation !== null && allRegistrants(pr.reservation.type) && pr.registrations.size === 0) pr.reservation = null;
}

/** Unregistering `nexusKey` (REGISTER with a zero service action key). */
function unregister(lu: LogicalUnit, nexusKey: string): void {
  const pr = lu.pr;
  pr.registrations.delete(nexusKey);
  const r = pr.reservation;
  if (r === null) return;
  if (allRegistrants(r.type)) {
    if (pr.registrations.size === 0) pr.reservation = null;
    // The reservation stays with the remaining registrants; the holder of record moves on.
    else if (r.holder === nexusKey) r.holder = pr.registrations.keys().next().value as string;
    return;
  }
  if (r.holder !== nexusKey) return;
  pr.reservation = null;
  if (registrantsOnly(r.type)) lu.establishUnitAttention(AdditionalSense.RESERVATIONS_RELEASED, { only: pr.registrations.keys() });
}

export function persistentReserveOut(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  const sa = cdb[1] & 0x1f;
  const scope = cdb[2] >> 4;
  const type = cdb[2] & 0x0f;
  const plen = cdb.readUInt32BE(5);
  const me = cmd.nexus.key;
  const pr = lu.pr;

  if (sa > PrOut.REGISTER_AND_MOVE) throw invalidCdb(1, 4);
  // An SPC-2 reservation held by another nexus conflicts with every PR command (SPC-4 §5.9.1).
  if (lu.spc2Holder !== null && lu.spc2Holder !== me) return done(reservationConflict());

  if (sa === PrOut.REGISTER_AND_MOVE) return registerAndMove(lu, cmd, done);

  if (plen !== 24) throw parameterListLengthError();
  const data = cmd.dataOut;
  if (data === null || data.length < 24) throw parameterListLengthError();
  const resKey = data.readBigUInt64BE(0);
  const saKey = data.readBigUInt64BE(8);
  const flags = data[20];
  if (flags & 0x08) throw invalidParam(20, 3); // SPEC_I_PT: not supported (SIP_C = 0)
  if (flags & 0x04) throw invalidParam(20, 2); // ALL_TG_PT: not supported (ATP_C = 0)
  if (flags & 0x01) throw invalidParam(20, 0); // APTPL: nothing persists across power loss (PTPL_C = 0)

  const mine = pr.registrations.get(me);
  switch (sa) {
    case PrOut.REGISTER:
    case PrOut.REGISTER_AND_IGNORE_EXISTING_KEY: {
      if (mine === undefined) {
        if (sa === PrOut.REGISTER && resKey !== 0n) return done(reservationConflict());
        if (saKey === 0n) return done(good());
        pr.registrations.set(me, { key: saKey, nexus: cmd.nexus });
      } else {
        if (sa === PrOut.REGISTER && resKey !== mine.key) return done(reservationConflict());
        if (saKey === 0n) unregister(lu, me);
        else {
          mine.key = saKey;
          mine.nexus = cmd.nexus;
        }
      }
      pr.generation = (pr.generation + 1) >>> 0;
      return done(good());
    }
    default:
      break;
  }

  // Everything below needs a registered nexus presenting its key.
  if (mine === undefined || mine.key !== resKey) return done(reservationConflict());

  switch (sa) {
    case PrOut.RESERVE: {
      if (scope !== 0) throw invalidCdb(2, 7);
      if (!VALID_TYPES.has(type)) throw invalidCdb(2, 3);
      const r = pr.reservation;
      if (r !== null) {
        if (isHolder(pr, me) && r.type === type) return done(good());
        return done(reservationConflict());
      }
      pr.reservation = { holder: me, type };
      return done(good());
    }
    case PrOut.RELEASE: {
      const r = pr.reservation;
      if (r === null || !isHolder(pr, me)) return done(good());
      if (scope !== 0 || r.type !== type) throw illegal(AdditionalSense.INVALID_RELEASE_OF_PERSISTENT_RESERVATION);
      pr.reservation = null;
      if (registrantsOnly(r.type) || allRegistrants(r.type)) {
        lu.establishUnitAttention(AdditionalSense.RESERVATIONS_RELEASED, { only: pr.registrations.keys(), except: me });
      }
      return done(good());
    }
    case PrOut.CLEAR: {
      const others = [...pr.registrations.keys()].filter((k) => k !== me);
      pr.registrations.clear();
      pr.reservation = null;
      pr.generation = (pr.generation + 1) >>> 0;
      if (others.length > 0) lu.establishUnitAttention(AdditionalSense.RESERVATIONS_PREEMPTED, { only: others });
      return done(good());
    }
    case PrOut.PREEMPT:
    case PrOut.PREEMPT_AND_ABORT:
      return preempt(lu, cmd, done, saKey, scope, type);
    default:
      throw invalidCdb(1, 4);
  }
}

function preempt(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback, saKey: bigint, scope: number, type: number): void {
  const pr = lu.pr;
  const me = cmd.nexus.key;
  const r = pr.reservation;
  const withKey = (key: bigint): string[] => [...pr.registrations].filter(([, reg]) => reg.key === key).map(([k]) => k);

  if (r !== null && allRegistrants(r.type) && saKey === 0n) {
    // Preempting an all-registrants reservation: everyone else goes, the preemptor reserves.
    if (scope !== 0) throw invalidCdb(2, 7);
    if (!VALID_TYPES.has(type)) throw invalidCdb(2, 3);
    removeRegistrations(lu, [...pr.registrations.keys()].filter((k) => k !== me), me);
    pr.reservation = { holder: me, type };
  } else if (r !== null && !allRegistrants(r.type) && pr.registrations.get(r.holder)?.key === saKey) {
    // Preempting the reservation holder: its key's registrations go, the preemptor reserves.
    if (scope !== 0) throw invalidCdb(2, 7);
    if (!VALID_TYPES.has(type)) throw invalidCdb(2, 3);
    const victims = withKey(saKey).filter((k) => k !== me);
    const oldType = r.type;
    pr.reservation = null;
    removeRegistrations(lu, victims, me);
    pr.reservation = { holder: me, type };
    if (oldType !== type) {
      const rest = [...pr.registrations.keys()].filter((k) => k !== me && !victims.includes(k));
      lu.establishUnitAttention(AdditionalSense.RESERVATIONS_RELEASED, { only: rest });
    }
  } else {
    // Only registrations are preempted.
    if (saKey === 0n) throw invalidParam(8);
    const victims = withKey(saKey);
    if (victims.length === 0) return done(reservationConflict());
    removeRegistrations(lu, victims, me);
  }
  pr.generation = (pr.generation + 1) >>> 0;
  done(good());
}

/** REGISTER AND MOVE (SPC-4 §6.16.9): the reservation moves to the I_T nexus named by a TransportID. */
function registerAndMove(lu: LogicalUnit, cmd: ScsiCommand, done: ScsiCallback): void {
  const cdb = cmd.cdb;
  const pr = lu.pr;
  const me = cmd.nexus.key;
  const plen = cdb.readUInt32BE(5);
  const data = cmd.dataOut;
  if (plen < 24 || data === null || data.length < Math.min(plen, 24)) throw parameterListLengthError();
  const resKey = data.readBigUInt64BE(0);
  const saKey = data.readBigUInt64BE(8);
  const unreg = (data[17] & 0x02) !== 0;
  if (data[17] & 0x01) throw invalidParam(17, 0); // APTPL
  const relPort = data.readUInt16BE(18);
  const tidLen = data.readUInt32BE(20);
  if (24 + tidLen > Math.min(plen, data.length)) throw parameterListLengthError();
  const mine = pr.registrations.get(me);
  if (mine === undefined) return done(reservationConflict());
  if (mine.key !== resKey) return done(reservationConflict());
  const r = pr.reservation;
  if (r === null || !isHolder(pr, me)) return done(reservationConflict());
  if (allRegistrants(r.type)) throw illegal(AdditionalSense.INVALID_FIELD_IN_CDB, { inCdb: true, byte: 2 });
  if (saKey === 0n) throw invalidParam(8);
  const tid = data.subarray(24, 24 + tidLen);
  if (tid.length < 4 || (tid[0] & 0x0f) !== 0x05 || (tid[0] & 0xc0) !== 0x40) throw invalidParam(24);
  const nameLen = tid.readUInt16BE(2);
  const raw = tid.subarray(4, 4 + nameLen);
  const nul = raw.indexOf(0);
  const initiatorPortName = raw.subarray(0, nul < 0 ? raw.length : nul).toString('utf8');
  // The destination I_T nexus: that initiator port through the target port with this relative identifier.
  let dest: ItNexus | undefined;
  for (const st of lu.nexuses.values()) {
    if (st.nexus.initiatorPortName.toLowerCase() === initiatorPortName.toLowerCase() && st.nexus.relativeTargetPortId === relPort) dest = st.nexus;
  }
  if (dest === undefined) {
    for (const reg of pr.registrations.values()) {
      if (reg.nexus.initiatorPortName.toLowerCase() === initiatorPortName.toLowerCase() && reg.nexus.relativeTargetPortId === relPort) dest = reg.nexus;
    }
  }
  if (dest === undefined) throw invalidParam(24);
  if (dest.key === me) throw invalidParam(24);
  pr.registrations.set(dest.key, { key: saKey, nexus: dest });
  pr.reservation = { holder: dest.key, type: r.type };
  if (unreg) pr.registrations.delete(me);
  pr.generation = (pr.generation + 1) >>> 0;
  done(good());
}
