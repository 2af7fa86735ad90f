/**
 * Task Management Function Requests on the target (RFC 7143 §11.5, §11.6,
 * §4.2.3; SAM-5 §7): ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LOGICAL
 * UNIT RESET, TARGET WARM RESET, TARGET COLD RESET; CLEAR ACA is not
 * supported (no ACA), TASK REASSIGN needs ErrorRecoveryLevel 2, the RFC 7144
 * QUERY functions and I_T NEXUS RESET need iSCSIProtocolLevel 2.
 *
 * A function that aborts tasks answers only once every affected task has
 * settled (tasks inside the SCSI layer finish their I/O, their responses
 * are dropped), so "Function complete" means the tasks are really gone.
 */
import { RejectReason, TmfFunction, TmfResponse } from '../iscsi/constants';
import { snInWindow, snLessThan } from '../iscsi/serial';
import { encodeTaskMgmtResponse, parseTaskMgmtRequest, type TaskMgmtRequest } from '../iscsi/task-mgmt';
import type { PduWriter } from '../iscsi/writer';
import type { EngineContext } from './engine-types';
import type { Session } from './session';

export interface TmfHost {
  readonly ctx: EngineContext;
  readonly session: Session;
  readonly writer: PduWriter;
  readonly hdr: Buffer;
  readonly closed: boolean;
  nextStatSN(): number;
  reject(reason: number, bhs: Buffer): void;
  /** Close this connection once everything queued has been written. */
  close(reason: string): void;
}

export function tmfName(fn: number): string {
  for (const [name, value] of Object.entries(TmfFunction)) if (value === fn) return name;
  return `function ${fn}`;
}

export function handleTmf(host: TmfHost, bhs: Buffer): void {
  const req = parseTaskMgmtRequest(bhs);
  const session = host.session;
  const target = session.target;
  if (target === null) {
    host.reject(RejectReason.PROTOCOL_ERROR, bhs);
    return;
  }
  const respond = (response: number): void => respondTmf(host, req, response);
  const lunExists = (): boolean => req.lun >= 0 && target.lunTable.has(req.lun);

  switch (req.function) {
    case TmfFunction.ABORT_TASK: {
      const task = session.tasks.get(req.referencedTaskTag);
      if (task !== undefined) {
        task.abort(() => respond(TmfResponse.FUNCTION_COMPLETE));
        return;
      }
      // §11.5.1 b): not arrived yet but inside the window and before this TMF: consume it unrun.
      const w = session.window;
      if (snInWindow(req.refCmdSN, w.expCmdSN, w.maxCmdSN) && snLessThan(req.refCmdSN, req.cmdSN)) {
        session.discardCmdSNs.add(req.refCmdSN);
        respond(TmfResponse.FUNCTION_COMPLETE);
        return;
      }
      respond(TmfResponse.TASK_DOES_NOT_EXIST);
      return;
    }
    case TmfFunction.ABORT_TASK_SET: {
      if (!lunExists()) return respond(TmfResponse.LUN_DOES_NOT_EXIST);
      session.abortTasks(req.lun, () => respond(TmfResponse.FUNCTION_COMPLETE));
      return;
    }
    case TmfFunction.CLEAR_TASK_SET: {
      if (!lunExists()) return respond(TmfResponse.LUN_DOES_NOT_EXIST);
      allSessions(host, req.lun, () => respond(TmfResponse.FUNCTION_COMPLETE));
      return;
    }
    case TmfFunction.LOGICAL_UNIT_RESET: {
      if (!lunExists()) return respond(TmfResponse.LUN_DOES_NOT_EXIST);
      allSessions(host, req.lun, () => {
        target.lunTable.lunReset(req.lun, session.nexus ?? undefined);
        respond(TmfResponse.FUNCTION_COMPLETE);
      });
      return;
    }
    case TmfFunction.TARGET_WARM_RESET:
    case TmfFunction.TARGET_COLD_RESET: {
      const cold = req.function === TmfFunction.TARGET_COLD_RESET;
      host.ctx.log('info', `${tmfName(req.function)} of ${target.iqn} from ${session.initiatorName}`);
      allSessions(host, -1, () => {
        target.lunTable.targetReset(cold ? 'cold' : 'warm');
        respond(TmfResponse.FUNCTION_COMPLETE);
        if (cold) {
          // §11.5.1: a cold reset also ends every session of the target, this one included.
          for (const other of host.ctx.sessionsOf(target)) if (other !== session) other.close('TARGET COLD RESET');
          host.close('TARGET COLD RESET');
        }
      });
      return;
    }
    case TmfFunction.TASK_REASSIGN:
      return respond(TmfResponse.TASK_ALLEGIANCE_REASSIGNMENT_NOT_SUPPORTED);
    default:
      // CLEAR ACA (NACA is never accepted), QUERY TASK / TASK SET / ASYNC EVENT, I_T NEXUS RESET, unknown.
      return respond(TmfResponse.TASK_MANAGEMENT_FUNCTION_NOT_SUPPORTED);
  }
}

/** Abort the tasks of every session of this target on `lun` (-1: all), then `cb`. */
function allSessions(host: TmfHost, lun: number, cb: () => void): void {
  const sessions = host.ctx.sessionsOf(host.session.target!);
  if (!sessions.includes(host.session)) sessions.push(host.session);
  let waiting = 1;
  const one = (): void => {
    if (--waiting === 0) cb();
  };
  for (const s of sessions) {
    waiting++;
    s.abortTasks(lun, one);
  }
  one();
}

function respondTmf(host: TmfHost, req: TaskMgmtRequest, response: number): void {
  if (host.closed || host.session.closed) return;
  const s = host.session;
  const hdr = encodeTaskMgmtResponse(
    {
      response,
      itt: req.itt,
      statSN: host.nextStatSN(),
      expCmdSN: s.window.expCmdSN,
      maxCmdSN: s.maxCmdSN(),
    },
    host.hdr,
  );
  host.writer.write(hdr);
}
