/**
 * Errors of Spindle's initiator: every failure carries a code the service
 * maps to its API and a message that says what to check.
 */
export type InitiatorErrorCode =
  /** The TCP connection could not be made (refused, unreachable, bad host). */
  | 'CONNECT_FAILED'
  /** The target did not answer in time. */
  | 'TIMEOUT'
  /** The target closed the connection. */
  | 'CONNECTION_CLOSED'
  /** Login refused: CHAP failed (0x0201), or the target wants CHAP and none was given. */
  | 'AUTH_FAILED'
  /** Login refused: this initiator is not allowed (0x0202). */
  | 'NOT_ALLOWED'
  /** Login refused: no such target (0x0203, 0x0204). */
  | 'TARGET_NOT_FOUND'
  /** Login redirected (class 1): the target lives elsewhere. */
  | 'TARGET_MOVED'
  /** Login refused by a target-side condition (class 3). */
  | 'TARGET_BUSY'
  /** Login refused for another reason. */
  | 'LOGIN_REFUSED'
  /** The target broke the protocol (malformed PDUs, answers outside what was offered). */
  | 'PROTOCOL_ERROR'
  /** What we were asked to offer is refused before anything is sent (e.g. a CHAP secret of the wrong length). */
  | 'INVALID_CONFIG'
  /** The target could not run a command at all (a non-zero iSCSI response in its SCSI Response). */
  | 'COMMAND_FAILED';

export class InitiatorError extends Error {
  override readonly name = 'InitiatorError';
  constructor(
    readonly code: InitiatorErrorCode,
    message: string,
    /** The Login Response's status, for refused logins. */
    readonly loginStatus?: { readonly statusClass: number; readonly statusDetail: number },
  ) {
    super(message);
  }
}
