// macOS: disks from `diskutil list -plist` and `diskutil info -plist DISK`.
//
// APFS containers appear as synthesized disks (disk3) whose physical store
// is a partition of a real disk (disk0s2). Synthesized disks are not listed
// on their own: their volumes' mount points count as the physical store's,
// the way lsblk holders do on Linux, so the disk holding "/" is disk0.
import type { Partition, RawDisk } from './types';
import { isDict, parsePlist, type PlistDict, type PlistValue } from './plist';
import { runTool, scanFailed } from './exec';

const INSTALL_HINT = 'nothing: diskutil ships with macOS; check that /usr/sbin is on PATH';

/** What synthesized disks stacked on a device contribute to it. */
interface Stacked {
  holders: string[];
  mounts: string[];
}

// ---- running ---------------------------------------------------------------

export async function listDarwinDisks(): Promise<RawDisk[]> {
  const listXml = await runTool('diskutil', ['list', '-plist'], { installHint: INSTALL_HINT });
  const ids = physicalDiskIds(readList(listXml));
  const infos = await Promise.all(
    // A disk that vanished between the two calls simply has no details.
    ids.map((id) => runTool('diskutil', ['info', '-plist', id], { installHint: INSTALL_HINT }).catch(() => null)),
  );
  const infoXml: Record<string, string> = {};
  ids.forEach((id, i) => {
    const xml = infos[i];
    if (xml) infoXml[id] = xml;
  });
  return parseDarwin(listXml, infoXml);
}

// ---- parsing ---------------------------------------------------------------

/** `diskutil list -plist` plus `diskutil info -plist ID` for each whole disk (by id; missing ones allowed). */
export function parseDarwin(listXml: string, infoXml: Readonly<Record<string, string>>): RawDisk[] {
  const entries = readList(listXml);
  const stacked = stackedOnStores(entries);
  return entries
    .filter((e) => !isSynthesized(e))
    .map((e) => {
      const id = str(e.DeviceIdentifier) ?? '';
      const xml = infoXml[id];
      return toRawDisk(e, xml === undefined ? {} : readInfo(xml, id), stacked);
    })
    .filter((d) => d.name !== '');
}

/** The whole disks worth a `diskutil info` call: physical ones and disk images. */
export function physicalDiskIds(entries: readonly PlistDict[]): string[] {
  return entries
    .filter((e) => !isSynthesized(e))
    .map((e) => str(e.DeviceIdentifier))
    .filter((id): id is string => id !== null);
}

/** The AllDisksAndPartitions entries of `diskutil list -plist`. */
export function readList(xml: string): PlistDict[] {
  const doc = parseXml(xml, 'diskutil list -plist');
  const all = isDict(doc) ? doc.AllDisksAndPartitions : undefined;
  if (!Array.isArray(all)) {
    throw scanFailed('Cannot list disks: "diskutil list -plist" printed no AllDisksAndPartitions list. Run it in Terminal to see why, then rescan.');
  }
  return all.filter(isDict);
}

function readInfo(xml: string, id: string): PlistDict {
  const doc = parseXml(xml, `diskutil info -plist ${id}`);
  return isDict(doc) ? doc : {};
}

function parseXml(xml: string, what: string): PlistValue {
  try {
    return parsePlist(xml);
  } catch (err) {
    throw scanFailed(
      `Cannot list disks: "${what}" printed a property list Spindle could not read (${(err as Error).message}). ` +
        'Run it in Terminal to see why, then rescan.',
      err,
    );
  }
}

function isSynthesized(e: PlistDict): boolean {
  return Array.isArray(e.APFSPhysicalStores);
}

/** Physical store id → the APFS containers on it and their volumes' mount points. */
function stackedOnStores(entries: readonly PlistDict[]): Map<string, Stacked> {
  const byStore = new Map<string, Stacked>();
  for (const container of entries.filter(isSynthesized)) {
    const name = str(container.DeviceIdentifier) ?? '?';
    const mounts = containerMounts(container);
    for (const store of dicts(container.APFSPhysicalStores)) {
      const id = str(store.DeviceIdentifier);
      if (!id) continue;
      const s = byStore.get(id) ?? { holders: [], mounts: [] };
      s.holders.push(name);
      s.mounts.push(...mounts);
      byStore.set(id, s);
    }
  }
  return byStore;
}

/** Mount points of a container's volumes, including a sealed system volume mounted as a snapshot ("/"). */
function containerMounts(container: PlistDict): string[] {
  const volumes = [...dicts(container.APFSVolumes), ...dicts(container.Partitions)];
  return volumes.flatMap((v) => [
    ...mountOf(v),
    ...dicts(v.MountedSnapshots).flatMap((s) => (str(s.SnapshotMountPoint) ? [str(s.SnapshotMountPoint) as string] : [])),
  ]);
}

function toRawDisk(e: PlistDict, info: PlistDict, stacked: Map<string, Stacked>): RawDisk {
  const id = str(e.DeviceIdentifier) ?? '';
  const partitions = dicts(e.Partitions).map((p) => toPartition(p, stacked));
  const own = stacked.get(id);
  const content = str(e.Content);
  return {
    name: id,
    path: str(info.DeviceNode) ?? `/dev/${id}`,
    sizeBytes: num(info.TotalSize) ?? num(info.Size) ?? num(e.Size) ?? 0,
    model: str(info.MediaName),
    serial: null, // diskutil does not report serial numbers
    rotational: info.SolidState === false,
    removable: info.RemovableMediaOrExternalDevice === true || info.RemovableMedia === true || info.Internal === false,
    readOnly: info.WritableMedia === false || info.ReadOnlyMedia === true,
    kind: str(info.BusProtocol) === 'Disk Image' || str(info.VirtualOrPhysical) === 'Virtual' ? 'image' : 'disk',
    fstype: partitions.length === 0 && content && !content.endsWith('_partition_scheme') ? content : null,
    mountpoints: unique([...mountOf(e), ...(own?.mounts ?? [])]),
    partitions,
    holders: own?.holders ?? [],
  };
}

function toPartition(p: PlistDict, stacked: Map<string, Stacked>): Partition {
  const id = str(p.DeviceIdentifier) ?? '';
  const s = stacked.get(id);
  return {
    name: id,
    path: `/dev/${id}`,
    sizeBytes: num(p.Size) ?? 0,
    // diskutil list gives the partition's content type (EFI, Apple_APFS, Microsoft Basic Data), not the file system.
    fstype: str(p.Content),
    label: str(p.VolumeName),
    mountpoints: unique([...mountOf(p), ...(s?.mounts ?? [])]),
    holders: s?.holders ?? [],
  };
}

// ---- value helpers -------------------------------------------------------------

function mountOf(d: PlistDict): string[] {
  const m = str(d.MountPoint);
  return m ? [m] : [];
}

function dicts(v: PlistValue | undefined): PlistDict[] {
  return Array.isArray(v) ? v.filter(isDict) : [];
}

function str(v: PlistValue | undefined): string | null {
  if (typeof v !== 'string') return null;
  const t = v.trim();
  return t.length > 0 ? t : null;
}

function num(v: PlistValue | undefined): number | null {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : null;
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}
