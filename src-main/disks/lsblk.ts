// Linux: whole disks and their partitions from `lsblk --json`.
import type { Partition, RawDisk } from './types';
import { runTool, scanFailed } from './exec';

export const LSBLK_COLUMNS = [
  'NAME', 'PATH', 'SIZE', 'TYPE', 'MODEL', 'SERIAL', 'ROTA', 'RM', 'RO', 'MOUNTPOINTS', 'FSTYPE', 'PKNAME', 'LABEL',
] as const;

const INSTALL_HINT = 'util-linux 2.27 or newer (e.g. "apt install util-linux")';

/** One node of lsblk's JSON tree; every field may be missing or oddly typed. */
interface LsblkNode {
  name?: unknown;
  path?: unknown;
  size?: unknown;
  type?: unknown;
  model?: unknown;
  serial?: unknown;
  rota?: unknown;
  rm?: unknown;
  ro?: unknown;
  mountpoints?: unknown;
  mountpoint?: unknown;
  fstype?: unknown;
  label?: unknown;
  children?: unknown;
}

// ---- running ---------------------------------------------------------------

/** Run lsblk; on an older util-linux that lacks a column, retry without it. */
export async function runLsblk(): Promise<string> {
  let columns: string[] = [...LSBLK_COLUMNS];
  for (;;) {
    try {
      return await runTool('lsblk', ['--json', '--bytes', '-o', columns.join(',')], { installHint: INSTALL_HINT });
    } catch (err) {
      const next = columnsWithout(columns, unknownColumn(err));
      if (!next) throw err;
      columns = next;
    }
  }
}

export async function listLinuxDisks(): Promise<RawDisk[]> {
  return parseLsblk(await runLsblk());
}

function unknownColumn(err: unknown): string | null {
  const m = err instanceof Error ? /unknown column: ([A-Z:%-]+)/i.exec(err.message) : null;
  return m ? m[1].toUpperCase() : null;
}

/** The column list to retry with, or null when `col` is essential (or unknown). */
export function columnsWithout(columns: readonly string[], col: string | null): string[] | null {
  if (!col || !columns.includes(col) || ['NAME', 'SIZE', 'TYPE'].includes(col)) return null;
  // util-linux < 2.37 has only MOUNTPOINT (one mount per device).
  if (col === 'MOUNTPOINTS') return columns.map((c) => (c === col ? 'MOUNTPOINT' : c));
  return columns.filter((c) => c !== col);
}

// ---- parsing ---------------------------------------------------------------

/** Parse `lsblk --json --bytes` output into whole disks with their partitions. */
export function parseLsblk(json: string): RawDisk[] {
  const top = readBlockdevices(json);
  return top.map(toRawDisk).filter((d): d is RawDisk => d !== null);
}

function readBlockdevices(json: string): LsblkNode[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw scanFailed(
      `Cannot list disks: lsblk printed something that is not JSON (${(err as Error).message}). ` +
        `Spindle needs ${INSTALL_HINT}; update it and rescan.`,
      err,
    );
  }
  const devices = isObject(doc) ? doc.blockdevices : undefined;
  if (!Array.isArray(devices) || !devices.every(isObject)) {
    throw scanFailed(
      'Cannot list disks: lsblk\'s JSON has no "blockdevices" list. ' +
        `Spindle needs ${INSTALL_HINT}; update it and rescan.`,
    );
  }
  return devices as LsblkNode[];
}

function toRawDisk(node: LsblkNode): RawDisk | null {
  const name = text(node.name);
  if (!name) return null;
  const kind = text(node.type) ?? (name.startsWith('loop') ? 'loop' : 'disk');
  const sizeBytes = bytes(node.size);
  if (!isListedDevice(name, kind, sizeBytes)) return null;

  const children = childrenOf(node);
  const parts = children.filter((c) => text(c.type) === 'part');
  const stacked = collectHolders(children.filter((c) => text(c.type) !== 'part'));
  return {
    name,
    path: devPath(node, name),
    sizeBytes,
    model: text(node.model),
    serial: text(node.serial),
    rotational: flag(node.rota),
    removable: flag(node.rm),
    readOnly: flag(node.ro),
    kind,
    fstype: text(node.fstype),
    mountpoints: unique([...mountsOf(node), ...stacked.mounts]),
    partitions: parts.map(toPartition).filter((p): p is Partition => p !== null),
    holders: stacked.names,
  };
}

// Whole disks and attached loop devices only: zram/ram are RAM (a memory LUN
// does that), unattached nbd devices (size 0) are placeholders, and optical
// drives (rom) are not SBC disks.
function isListedDevice(name: string, kind: string, sizeBytes: number): boolean {
  if (kind === 'loop') return sizeBytes > 0;
  if (kind !== 'disk') return false;
  if (/^z?ram\d+$/.test(name)) return false;
  if (/^nbd\d+$/.test(name) && sizeBytes === 0) return false;
  return true;
}

function toPartition(node: LsblkNode): Partition | null {
  const name = text(node.name);
  if (!name) return null;
  const stacked = collectHolders(childrenOf(node));
  return {
    name,
    path: devPath(node, name),
    sizeBytes: bytes(node.size),
    fstype: text(node.fstype),
    label: text(node.label),
    mountpoints: unique([...mountsOf(node), ...stacked.mounts]),
    holders: stacked.names,
  };
}

/** Names and (recursively) mount points of devices stacked on a device: crypt, lvm, raid, ... */
function collectHolders(nodes: LsblkNode[]): { names: string[]; mounts: string[] } {
  const names: string[] = [];
  const mounts: string[] = [];
  for (const node of nodes) {
    const name = text(node.name);
    if (name) names.push(name);
    mounts.push(...mountsOf(node));
    mounts.push(...collectHolders(childrenOf(node)).mounts);
  }
  return { names: unique(names), mounts: unique(mounts) };
}

function childrenOf(node: LsblkNode): LsblkNode[] {
  return Array.isArray(node.children) ? node.children.filter(isObject) : [];
}

function devPath(node: LsblkNode, name: string): string {
  return text(node.path) ?? `/dev/${name}`;
}

/** `mountpoints: ["/", null]` (util-linux ≥ 2.37) or `mountpoint: "/"` (older). */
function mountsOf(node: LsblkNode): string[] {
  const list = Array.isArray(node.mountpoints) ? node.mountpoints : [node.mountpoint];
  return list.map(text).filter((m): m is string => m !== null);
}

// ---- lsblk value quirks -------------------------------------------------------

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A trimmed non-empty string, or null. */
function text(v: unknown): string | null {
  if (typeof v === 'number') return String(v);
  if (typeof v !== 'string') return null;
  const t = v.trim();
  return t.length > 0 ? t : null;
}

/** true/false (util-linux ≥ 2.33) or "1"/"0" (older). */
function flag(v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string') return v.trim() === '1' || v.trim().toLowerCase() === 'true';
  return false;
}

/** A number, or a string of digits on older util-linux; anything else is 0. */
function bytes(v: unknown): number {
  if (typeof v === 'number') return Number.isFinite(v) && v > 0 ? v : 0;
  if (typeof v === 'string' && /^\s*\d+\s*$/.test(v)) return Number(v);
  return 0;
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}
