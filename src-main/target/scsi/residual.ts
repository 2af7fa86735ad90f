/**
 * Residuals for the SCSI Response PDU (RFC 7143 §11.4.5): how the Data-In
 * or Data-Out the command called for compares with the initiator's
 * ExpectedDataTransferLength.
 */
import type { ScsiCommand, ScsiResponse } from './types';

export interface Residual {
  /** The O flag: the command wanted more than ExpectedDataTransferLength. */
  overflow: boolean;
  /** The U flag: the command moved less than ExpectedDataTransferLength. */
  underflow: boolean;
  /** Residual Count (0 when neither flag is set). */
  count: number;
  /** Bytes of Data-In to send: min(data.length, ExpectedDataTransferLength). */
  dataInLength: number;
}

export function residualOf(cmd: ScsiCommand, resp: ScsiResponse): Residual {
  const edtl = cmd.expectedDataTransferLength;
  const produced = resp.data === null ? 0 : resp.data.length;
  const wanted = resp.dataOutLength !== undefined ? resp.dataOutLength : produced;
  const dataInLength = Math.min(produced, edtl);
  if (wanted > edtl) return { overflow: true, underflow: false, count: wanted - edtl, dataInLength };
  if (wanted < edtl) return { overflow: false, underflow: true, count: edtl - wanted, dataInLength };
  return { overflow: false, underflow: false, count: 0, dataInLength };
}
