/**
 * Driving a ScsiTarget without a network: build I_T nexuses and run one CDB
 * to completion as a promise, with the transport's view of the outcome
 * (Data-In trimmed to ExpectedDataTransferLength, residuals, parsed sense).
 * For tests and local tools — the connection layer calls execute() itself.
 */
import { parseSense, type ParsedSense } from '../../iscsi/sense';
import { residualOf, type Residual } from './residual';
import type { ScsiTarget } from './target';
import { TaskAttr, type ItNexus } from './types';

export function makeNexus(initiatorName: string, isid = '23d000000001', targetName = 'iqn.2024-01.dev.spindle:loopback', tpgt = 1, relativeTargetPortId = 1): ItNexus {
  const initiatorPortName = `${initiatorName},i,0x${isid.toLowerCase()}`;
  const targetPortName = `${targetName},t,0x${tpgt.toString(16).padStart(4, '0')}`;
  return { initiatorPortName, targetPortName, relativeTargetPortId, key: `${initiatorPortName}|${targetPortName}` };
}

export interface LoopbackCommand {
  cdb: Buffer;
  lun?: number;
  dataOut?: Buffer | null;
  /** ExpectedDataTransferLength; default: the Data-Out length if any, else 16 MiB. */
  edtl?: number;
  taskAttribute?: number;
}

export interface LoopbackResult {
  status: number;
  /** Data-In as the initiator receives it (a copy; pooled buffers are given back). */
  data: Buffer;
  sense: ParsedSense | null;
  senseBytes: Buffer | null;
  residual: Residual;
}

const DEFAULT_READ_EDTL = 16 << 20;

/** Runs one command and resolves with what the initiator would see. */
export function runScsi(target: ScsiTarget, nexus: ItNexus, command: LoopbackCommand): Promise<LoopbackResult> {
  const dataOut = command.dataOut ?? null;
  const edtl = command.edtl ?? (dataOut !== null ? dataOut.length : DEFAULT_READ_EDTL);
  const cmd = {
    lun: command.lun ?? 0,
    cdb: command.cdb,
    nexus,
    dataOut,
    expectedDataTransferLength: edtl,
    taskAttribute: command.taskAttribute ?? TaskAttr.SIMPLE,
  };
  return new Promise((resolve) => {
    target.execute(cmd, (resp) => {
      const residual = residualOf(cmd, resp);
      const data = resp.data === null ? Buffer.alloc(0) : Buffer.from(resp.data.subarray(0, residual.dataInLength));
      resp.release?.();
      resolve({ status: resp.status, data, sense: parseSense(resp.sense), senseBytes: resp.sense, residual });
    });
  });
}

const STATUS_NAMES: Record<number, string> = {
  0x00: 'GOOD',
  0x02: 'CHECK CONDITION',
  0x04: 'CONDITION MET',
  0x08: 'BUSY',
  0x18: 'RESERVATION CONFLICT',
  0x28: 'TASK SET FULL',
  0x40: 'TASK ABORTED',
};

/**
 * Short outcome for assertions and logs: `GOOD`, `RESERVATION CONFLICT`,
 * or `CHECK CONDITION 05/21/00` (sense key / ASC / ASCQ in hex).
 */
export function outcome(r: Pick<LoopbackResult, 'status' | 'sense'>): string {
  const name = STATUS_NAMES[r.status] ?? `STATUS 0x${r.status.toString(16)}`;
  if (r.sense === null) return name;
  const h = (n: number): string => n.toString(16).padStart(2, '0');
  return `${name} ${h(r.sense.key)}/${h(r.sense.asc)}/${h(r.sense.ascq)}`;
}
