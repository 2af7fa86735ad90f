/**
 * Building ScsiResponses: GOOD with or without Data-In, CHECK CONDITION
 * with fixed-format sense, and the mapping of backstore errors to sense.
 */
import { ScsiStatus } from '../../iscsi/constants';
import { AdditionalSense, SenseKey, buildFixedSense, type FieldPointer } from '../../iscsi/sense';
import type { ScsiResponse } from './types';

/**
 * Thrown by command handlers while validating a command; the dispatcher
 * turns it into CHECK CONDITION. Only thrown synchronously, before a
 * handler has started any I/O.
 */
export class SenseError extends Error {
  constructor(
    readonly key: number,
    readonly code: number,
    readonly field?: FieldPointer,
    readonly information?: number,
  ) {
    super(`sense ${key.toString(16)}/${code.toString(16).padStart(4, '0')}`);
    this.name = 'SenseError';
  }
}

/** ILLEGAL REQUEST / INVALID FIELD IN CDB, pointing at CDB byte `byte` (and `bit`). */
export function invalidCdb(byte: number, bit?: number): SenseError {
  return new SenseError(SenseKey.ILLEGAL_REQUEST, AdditionalSense.INVALID_FIELD_IN_CDB, { inCdb: true, byte, bit });
}

/** ILLEGAL REQUEST / INVALID FIELD IN PARAMETER LIST, pointing at parameter byte `byte`. */
export function invalidParam(byte: number, bit?: number): SenseError {
  return new SenseError(SenseKey.ILLEGAL_REQUEST, AdditionalSense.INVALID_FIELD_IN_PARAMETER_LIST, { inCdb: false, byte, bit });
}

export function illegal(code: number, field?: FieldPointer): SenseError {
  return new SenseError(SenseKey.ILLEGAL_REQUEST, code, field);
}

export const lbaOutOfRange = (): SenseError => illegal(AdditionalSense.LBA_OUT_OF_RANGE);
export const parameterListLengthError = (): SenseError => illegal(AdditionalSense.PARAMETER_LIST_LENGTH_ERROR);
export const writeProtected = (): SenseError => new SenseError(SenseKey.DATA_PROTECT, AdditionalSense.WRITE_PROTECTED);

export function good(data: Buffer | null = null): ScsiResponse {
  return { status: ScsiStatus.GOOD, data, sense: null };
}

export function checkCondition(key: number, code: number, field?: FieldPointer, information?: number): ScsiResponse {
  return { status: ScsiStatus.CHECK_CONDITION, data: null, sense: buildFixedSense({ key, code, field, information }) };
}

export function fromSenseError(e: SenseError): ScsiResponse {
  return checkCondition(e.key, e.code, e.field, e.information);
}

export function reservationConflict(): ScsiResponse {
  return { status: ScsiStatus.RESERVATION_CONFLICT, data: null, sense: null };
}

export function taskAborted(): ScsiResponse {
  return { status: ScsiStatus.TASK_ABORTED, data: null, sense: null };
}

/** CHECK CONDITION for a failed backstore read or write. */
export function ioErrorResponse(err: NodeJS.ErrnoException, writing: boolean): ScsiResponse {
  switch (err.code) {
    case 'ENOSPC':
    case 'EDQUOT':
      // SPACE ALLOCATION FAILED WRITE PROTECT (SBC-3 §4.7.3.7): the thin image ran out of room.
      return checkCondition(SenseKey.DATA_PROTECT, 0x2707);
    case 'EROFS':
    case 'EPERM':
    case 'EACCES':
      return writing ? checkCondition(SenseKey.DATA_PROTECT, AdditionalSense.WRITE_PROTECTED) : checkCondition(SenseKey.MEDIUM_ERROR, AdditionalSense.UNRECOVERED_READ_ERROR);
    case 'EIO':
    case 'ENXIO':
      return writing
        ? checkCondition(SenseKey.MEDIUM_ERROR, AdditionalSense.WRITE_ERROR)
        : checkCondition(SenseKey.MEDIUM_ERROR, AdditionalSense.UNRECOVERED_READ_ERROR);
    default:
      return checkCondition(SenseKey.HARDWARE_ERROR, AdditionalSense.INTERNAL_TARGET_FAILURE);
  }
}

/**
 * A GOOD response carrying `buf.subarray(0, length)` whose `release` hands
 * `buf` back to `give` once (a second call does nothing).
 */
export function goodPooled(buf: Buffer, length: number, give: (b: Buffer) => void): ScsiResponse {
  let held = true;
  return {
    status: ScsiStatus.GOOD,
    data: buf.subarray(0, length),
    sense: null,
    release: () => {
      if (!held) return;
      held = false;
      give(buf);
    },
  };
}

/** Data-In no longer than the CDB's allocation length. */
export function allocated(data: Buffer, allocationLength: number): Buffer {
  return data.length > allocationLength ? data.subarray(0, allocationLength) : data;
}
