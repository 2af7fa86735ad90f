/**
 * The name Spindle's initiator introduces itself with when none is given:
 * stable per machine (its host name), so a target's ACL entry for it keeps
 * working, and recognisable in a target's access requests.
 */
import { hostname } from 'node:os';
import { checkWireIscsiName } from '../iscsi/names';

export const INITIATOR_NAME_PREFIX = 'iqn.2026-11.app.spindle';

/** `iqn.2026-11.app.spindle:<host name>` (lowercase; characters an IQN may not hold become '-'). */
export function defaultInitiatorName(host: string = hostname()): string {
  const unique = host
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, 63);
  const name = `${INITIATOR_NAME_PREFIX}:${unique || 'host'}`;
  return checkWireIscsiName(name).ok ? name : `${INITIATOR_NAME_PREFIX}:host`;
}
