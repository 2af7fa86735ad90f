// Windows: disks from the Storage module's `Get-Disk`, `Get-Partition` and
// (optionally) `Get-Volume` / `Get-PhysicalDisk`, each `| ConvertTo-Json`.
import type { Partition, RawDisk } from './types';
import { runTool, scanFailed } from './exec';

type Json = Record<string, unknown>;

export interface WindowsInput {
  disks: unknown;
  partitions: unknown;
  volumes?: unknown;
  physicalDisks?: unknown;
}

// MSFT_Disk.BusType value map, for output that carries the number instead of the name.
const BUS_TYPES = [
  'Unknown', 'SCSI', 'ATAPI', 'ATA', '1394', 'SSA', 'Fibre Channel', 'USB', 'RAID', 'iSCSI', 'SAS', 'SATA',
  'SD', 'MMC', 'Virtual', 'File Backed Virtual', 'Storage Spaces', 'NVMe', 'SCM', 'UFS',
];
const REMOVABLE_BUSES = new Set(['USB', 'SD', 'MMC']);
// MSFT_PhysicalDisk.MediaType: 3 = HDD.
const HDD_MEDIA = new Set(['HDD', '3']);

// ---- running ---------------------------------------------------------------

const SCRIPT = [
  "$ErrorActionPreference = 'Stop'",
  '[Console]::OutputEncoding = [Text.Encoding]::UTF8',
  '$d = @(Get-Disk | Select-Object Number,FriendlyName,Model,SerialNumber,Size,BusType,IsSystem,IsBoot,IsReadOnly,IsOffline)',
  '$p = @(Get-Partition -ErrorAction SilentlyContinue | Select-Object DiskNumber,PartitionNumber,DriveLetter,AccessPaths,Size,Type,GptType,IsSystem,IsBoot)',
  '$v = @(Get-Volume -ErrorAction SilentlyContinue | Select-Object DriveLetter,Path,FileSystem,FileSystemType,FileSystemLabel,Size,SizeRemaining)',
  '$pd = @(Get-PhysicalDisk -ErrorAction SilentlyContinue | Select-Object DeviceId,MediaType,SpindleSpeed)',
  'ConvertTo-Json -Compress -Depth 4 -InputObject @{ Disks = $d; Partitions = $p; Volumes = $v; PhysicalDisks = $pd }',
].join('; ');

export async function listWindowsDisks(): Promise<RawDisk[]> {
  const out = await runTool(
    'powershell.exe',
    ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-Command', SCRIPT],
    { installHint: 'Windows PowerShell 5.1 with the Storage module (Windows 8 / Server 2012 or newer)', timeoutMs: 30_000 },
  );
  return parseWindowsEnvelope(out);
}

/** The runner's one JSON object: { Disks, Partitions, Volumes, PhysicalDisks }. */
export function parseWindowsEnvelope(json: string): RawDisk[] {
  const doc = parseJson(json, 'PowerShell');
  if (!isObject(doc)) throw badOutput('PowerShell', 'expected one JSON object');
  return parseWindows({ disks: doc.Disks, partitions: doc.Partitions, volumes: doc.Volumes, physicalDisks: doc.PhysicalDisks });
}

/** `Get-Disk | ConvertTo-Json`, `Get-Partition | ConvertTo-Json` and optionally `Get-Volume | ConvertTo-Json`. */
export function parseWindowsJson(disksJson: string, partitionsJson: string, volumesJson?: string): RawDisk[] {
  return parseWindows({
    disks: parseJson(disksJson, 'Get-Disk'),
    partitions: parseJson(partitionsJson, 'Get-Partition'),
    volumes: volumesJson === undefined ? undefined : parseJson(volumesJson, 'Get-Volume'),
  });
}

// ---- parsing ---------------------------------------------------------------

export function parseWindows(input: WindowsInput): RawDisk[] {
  const disks = objects(input.disks);
  if (disks.length === 0 && input.disks !== null && input.disks !== undefined && !Array.isArray(input.disks)) {
    throw badOutput('Get-Disk', 'expected a disk object or a list of them');
  }
  const partitions = objects(input.partitions);
  const volumes = objects(input.volumes);
  const hdds = hddNumbers(objects(input.physicalDisks));
  return disks
    .filter((d) => integer(d.Number) !== null)
    .map((d) => toRawDisk(d, partitions.filter((p) => integer(p.DiskNumber) === integer(d.Number)), volumes, hdds));
}

function toRawDisk(d: Json, parts: Json[], volumes: Json[], hdds: Set<number>): RawDisk {
  const n = integer(d.Number) ?? -1;
  const bus = busType(d.BusType);
  const partitions = parts
    .sort((a, b) => (integer(a.PartitionNumber) ?? 0) - (integer(b.PartitionNumber) ?? 0))
    .map((p) => toPartition(n, p, volumes));
  return {
    name: `PhysicalDrive${n}`,
    path: `\\\\.\\PhysicalDrive${n}`,
    sizeBytes: integer(d.Size) ?? 0,
    model: text(d.Model) ?? text(d.FriendlyName),
    serial: text(d.SerialNumber)?.replace(/\.$/, '') || null,
    rotational: hdds.has(n),
    removable: REMOVABLE_BUSES.has(bus),
    readOnly: d.IsReadOnly === true,
    kind: bus === 'File Backed Virtual' ? 'image' : 'disk',
    fstype: null,
    mountpoints: [],
    partitions,
    system: d.IsSystem === true || d.IsBoot === true || parts.some((p) => p.IsSystem === true || p.IsBoot === true),
  };
}

function toPartition(diskNumber: number, p: Json, volumes: Json[]): Partition {
  const n = integer(p.PartitionNumber) ?? 0;
  const mountpoints = accessPaths(p);
  const volume = volumes.find((v) => matchesVolume(v, p));
  return {
    name: `Disk ${diskNumber} Partition ${n}`,
    path: `\\\\?\\GLOBALROOT\\Device\\Harddisk${diskNumber}\\Partition${n}`,
    sizeBytes: integer(p.Size) ?? 0,
    fstype: text(volume?.FileSystem) ?? text(volume?.FileSystemType) ?? text(p.FileSystem),
    label: text(volume?.FileSystemLabel) ?? text(p.Label),
    mountpoints,
  };
}

/** Drive letter and folder mount points ("C:\", "D:\mnt\data\"); \\?\Volume{…}\ names are not mounts a user knows. */
function accessPaths(p: Json): string[] {
  const paths = (Array.isArray(p.AccessPaths) ? p.AccessPaths : [])
    .map(text)
    .filter((s): s is string => s !== null && !s.startsWith('\\\\?\\'))
    .map((s) => s.replace(/^[a-z]:/, (l) => l.toUpperCase()));
  const letter = driveLetter(p.DriveLetter);
  if (letter && !paths.includes(`${letter}:\\`)) paths.unshift(`${letter}:\\`);
  return paths;
}

function matchesVolume(v: Json, p: Json): boolean {
  const vpath = text(v.Path);
  if (vpath && Array.isArray(p.AccessPaths) && p.AccessPaths.includes(vpath)) return true;
  const letter = driveLetter(p.DriveLetter);
  return letter !== null && driveLetter(v.DriveLetter) === letter;
}

/** DriveLetter is a char: "C", "\u0000" or "" for none, or its code as a number. */
function driveLetter(v: unknown): string | null {
  const s = typeof v === 'number' ? (v > 0 ? String.fromCharCode(v) : '') : typeof v === 'string' ? v : '';
  const c = s.trim().charAt(0).toUpperCase();
  return /^[A-Z]$/.test(c) ? c : null;
}

function busType(v: unknown): string {
  if (typeof v === 'number') return BUS_TYPES[v] ?? 'Unknown';
  return text(v) ?? 'Unknown';
}

function hddNumbers(physical: Json[]): Set<number> {
  const media = (p: Json) => (typeof p.MediaType === 'number' ? String(p.MediaType) : text(p.MediaType) ?? '');
  return new Set(physical.filter((p) => HDD_MEDIA.has(media(p))).map((p) => integer(p.DeviceId) ?? -1));
}

// ---- JSON quirks ------------------------------------------------------------

/** ConvertTo-Json prints one object for one item, a list for several, nothing for none. */
function objects(v: unknown): Json[] {
  if (Array.isArray(v)) return v.filter(isObject);
  return isObject(v) ? [v] : [];
}

function parseJson(json: string, what: string): unknown {
  const body = json.replace(/^\uFEFF/, '').trim();
  if (body === '') return [];
  try {
    return JSON.parse(body);
  } catch (err) {
    throw badOutput(what, (err as Error).message, err);
  }
}

function badOutput(what: string, detail: string, cause?: unknown) {
  return scanFailed(
    `Cannot list disks: ${what} printed output Spindle could not read (${detail}). ` +
      'Check that "Get-Disk" works in PowerShell (the Storage module, Windows 8 or newer), then rescan.',
    cause,
  );
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function text(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const t = v.replace(/\0/g, '').trim();
  return t.length > 0 ? t : null;
}

function integer(v: unknown): number | null {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^\d+$/.test(v.trim())) return Number(v);
  return null;
}
