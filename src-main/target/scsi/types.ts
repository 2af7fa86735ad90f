/**
 * The contract between the iSCSI connection layer and the SCSI device
 * emulation (SPC-4 / SBC-3). The connection layer turns SCSI Command PDUs
 * (and their Data-Out) into `ScsiCommand`s, hands them to
 * `ScsiTarget.execute`, and turns the `ScsiResponse` into Data-In and a
 * SCSI Response PDU. Everything here is plain data plus callbacks: no
 * promises on the I/O path.
 *
 * How the connection layer uses it:
 * - One ScsiTarget per iSCSI target (its LUN map); `addLun`/`removeLun`
 *   (or `add`/`remove`) at runtime.
 * - Gather the command's Data-Out (immediate, unsolicited, R2T-solicited,
 *   up to ExpectedDataTransferLength) into one Buffer, then `execute`.
 *   The callback runs exactly once, possibly synchronously.
 * - `residualOf(cmd, resp)` (residual.ts) gives the O/U flags, the
 *   Residual Count and how many Data-In bytes to send. Send
 *   `resp.data.subarray(0, dataInLength)` only if the command had the R bit.
 *   Status may ride on the last Data-In PDU when it is GOOD and there is no
 *   sense; otherwise send a SCSI Response with the sense (SenseLength +
 *   sense).
 * - Call `resp.release?.()` once the Data-In has been written (or dropped).
 * - Task management: LOGICAL UNIT RESET → `lunReset(lun, nexus)` (false:
 *   LUN DOES NOT EXIST); TARGET WARM/COLD RESET → `targetReset(kind)`; for
 *   aborted tasks set `cmd.aborted = true` and drop their responses.
 * - When a session ends (logout, connection dropped at ERL 0, session
 *   reinstatement, I_T NEXUS RESET): `nexusGone(nexus)`.
 */
import type { Backstore } from '../../backstore/types';

/**
 * One I_T nexus: an initiator port talking to a target port. Its identity
 * is what SCSI keys state by — persistent reservation registrations, SPC-2
 * reservations, unit attentions, PREVENT state, held copy results.
 *
 * `key` must be the same for every session that is the same I_T nexus
 * (same initiator name + ISID, same target portal group), e.g.
 * `${initiatorPortName}|${targetPortName}`; two sessions at once never share
 * one (session reinstatement ends the old one first).
 */
export interface ItNexus {
  /** iSCSI initiator port name: `iqn...,i,0x<ISID as 12 hex digits>` (the SPC-4 iSCSI TransportID form). */
  readonly initiatorPortName: string;
  /** iSCSI target port name: `iqn...,t,0x<TPGT as 4 hex digits>`. */
  readonly targetPortName: string;
  /** RELATIVE TARGET PORT IDENTIFIER of the target port (1-based, VPD 0x83). */
  readonly relativeTargetPortId: number;
  /** Stable identity of this I_T nexus (see above). */
  readonly key: string;
}

/** SCSI task attribute (SAM-5), the ATTR field of the SCSI Command PDU. */
export const TaskAttr = { UNTAGGED: 0, SIMPLE: 1, ORDERED: 2, HEAD_OF_QUEUE: 3, ACA: 4 } as const;

export interface ScsiCommand {
  /** LUN decoded from the 8-byte LUN field (`decodeLun` in iscsi/cdb.ts); -1 if undecodable. */
  lun: number;
  /** The CDB, 6..16 bytes (an extended CDB from the AHS may make it longer). */
  cdb: Buffer;
  nexus: ItNexus;
  /**
   * All the Data-Out the initiator sent for this command (immediate,
   * unsolicited and solicited), in order, as one buffer — at most
   * ExpectedDataTransferLength bytes. null when there was none. The SCSI
   * layer writes straight from it and never keeps it past the callback.
   */
  dataOut: Buffer | null;
  /** ExpectedDataTransferLength from the PDU (bytes). */
  expectedDataTransferLength: number;
  /** ATTR (TaskAttr). ORDERED waits for everything before it; HEAD OF QUEUE runs at once. */
  taskAttribute: number;
  /**
   * Set by the connection layer when the task is aborted (ABORT TASK, ABORT
   * TASK SET, CLEAR TASK SET, LU reset, connection loss). A command still
   * queued behind an ORDERED task is then completed with TASK ABORTED
   * without touching the medium; one already running completes normally and
   * its response is the connection layer's to drop.
   */
  aborted?: boolean;
}

export interface ScsiResponse {
  /** SCSI status (ScsiStatus in iscsi/constants.ts). */
  status: number;
  /**
   * Data-In, untrimmed: the full amount the command produced (at most the
   * CDB's allocation length). The connection layer sends the first
   * min(data.length, ExpectedDataTransferLength) bytes.
   */
  data: Buffer | null;
  /** Sense data for CHECK CONDITION (fixed format, 18 bytes), else null. */
  sense: Buffer | null;
  /**
   * For commands that take Data-Out: how many bytes the CDB asked for. The
   * write residual is ExpectedDataTransferLength against this (see
   * residualOf in residual.ts). Absent on commands without Data-Out.
   */
  dataOutLength?: number;
  /** Gives pooled buffers back; call once the Data-In has been sent (or dropped). */
  release?: () => void;
}

export type ScsiCallback = (response: ScsiResponse) => void;

/** Which task management functions the connection layer carries out (REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS). */
export interface SupportedTmfs {
  abortTask: boolean;
  abortTaskSet: boolean;
  clearAca: boolean;
  clearTaskSet: boolean;
  logicalUnitReset: boolean;
  queryTask: boolean;
  targetReset: boolean;
  wakeup: boolean;
  queryUnitAttention: boolean;
  queryTaskSet: boolean;
  itNexusReset: boolean;
}

export interface LogicalUnitOptions {
  backstore: Backstore;
  /**
   * Stable per-LUN seed (e.g. a UUID kept in the store, or `${targetIqn}/${lun}`
   * for ephemeral targets). The unit serial number and the NAA identifier
   * are derived from it, so the same seed gives the same identity after a
   * restart — which multipath and /dev/disk/by-id rely on.
   */
  seed: string;
  /** T10 VENDOR IDENTIFICATION, up to 8 ASCII characters. Default "SPINDLE". */
  vendor?: string;
  /** PRODUCT IDENTIFICATION, up to 16 ASCII characters. Default "Spindle disk". */
  product?: string;
  /** PRODUCT REVISION LEVEL, up to 4 ASCII characters. Default "0001". */
  revision?: string;
  /** Export read-only even if the backstore is writable. */
  readOnly?: boolean;
  /**
   * Report removable medium (RMB): START STOP UNIT with LOEJ ejects and
   * loads, PREVENT ALLOW MEDIUM REMOVAL guards it. Default false (a disk).
   * libiscsi's PreventAllow.* and StartStopUnit.Simple run only on a
   * removable LU: the conformance run wants this on.
   */
  removable?: boolean;
  /** 24-bit IEEE company ID in the NAA identifier. Default 0x025350 (locally administered). */
  ieeeCompanyId?: number;
  /**
   * LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT for READ CAPACITY(16).
   * Default 0. Above 0, libiscsi 1.19's GetLBAStatus.UnmapSingle fails on
   * any target that puts the requested LBA in the first descriptor (as
   * SBC-3 requires) — it expects the descriptor at the next physical block.
   */
  physicalBlockExponent?: number;
}
