/**
 * Logout Requests on the target (RFC 7143 §11.14, §11.15) at
 * ErrorRecoveryLevel 0 with one connection per session.
 */
import { LogoutReason, LogoutResponseCode } from '../iscsi/constants';
import type { LogoutRequest } from '../iscsi/logout';

export interface LogoutDecision {
  /** Logout Response code. */
  response: number;
  /** Close the connection (and so the session) once the response is out. */
  close: boolean;
}

/** What to answer a Logout Request arriving on connection `cid`. */
export function decideLogout(req: LogoutRequest, cid: number): LogoutDecision {
  switch (req.reasonCode) {
    case LogoutReason.CLOSE_SESSION:
      return { response: LogoutResponseCode.CLOSED_SUCCESSFULLY, close: true };
    case LogoutReason.CLOSE_CONNECTION:
      // The only connection of the session: closing it ends the session.
      if (req.cid !== cid) return { response: LogoutResponseCode.CID_NOT_FOUND, close: false };
      return { response: LogoutResponseCode.CLOSED_SUCCESSFULLY, close: true };
    case LogoutReason.REMOVE_CONNECTION_FOR_RECOVERY:
      // Connection recovery needs ErrorRecoveryLevel 2.
      return { response: LogoutResponseCode.CONNECTION_RECOVERY_NOT_SUPPORTED, close: false };
    default:
      return { response: LogoutResponseCode.CLEANUP_FAILED, close: false };
  }
}
