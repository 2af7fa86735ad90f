/**
 * The name Spindle's initiator introduces itself with when none is given:
 * stable per machine, so a target's ACL entry for it keeps working, and
 * recognisable in a target's access requests — the host name, plus a short
 * hash of the machine id so that two machines both called "raspberrypi"
 * (or cloned VMs renamed later) do not share one name and one ACL entry.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { checkWireIscsiName } from '../iscsi/names';

export const INITIATOR_NAME_PREFIX = 'iqn.2026-11.app.spindle';

/** The machine id (systemd's /etc/machine-id, or D-Bus's), or null where there is none. */
export function readMachineId(): string | null {
  for (const path of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = readFileSync(path, 'utf8').trim();
      if (/^[0-9a-f]{32}$/i.test(id)) return id.toLowerCase();
    } catch {
      // Not there (another OS, a minimal container): try the next.
    }
  }
  return null;
}

/**
 * `iqn.2026-11.app.spindle:<host name>-<6 hex digits of the machine id's SHA-256>`
 * (lowercase; characters an IQN may not hold become '-'; no suffix without a machine id).
 */
export function defaultInitiatorName(host: string = hostname(), machineId: string | null = readMachineId()): string {
  const unique =
    host
      .toLowerCase()
      .replace(/[^a-z0-9.-]+/g, '-')
      .replace(/^[-.]+|[-.]+$/g, '')
      .slice(0, 63) || 'host';
  const suffix = machineId === null ? '' : `-${createHash('sha256').update(`spindle-initiator:${machineId}`).digest('hex').slice(0, 6)}`;
  const name = `${INITIATOR_NAME_PREFIX}:${unique}${suffix}`;
  return checkWireIscsiName(name).ok ? name : `${INITIATOR_NAME_PREFIX}:host${suffix}`;
}
