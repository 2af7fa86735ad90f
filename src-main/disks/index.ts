// Local disks and volumes, classified for sharing (SPEC §2 disks/, §4 Safety).
import { realpath } from 'node:fs/promises';
import type { DiskReport, RawDisk } from './types';
import { classify, sortDisks, type DiskPlatform } from './constraints';
import { DiskScanError } from './exec';
import { listLinuxDisks } from './lsblk';
import { listWindowsDisks } from './windows';
import { listDarwinDisks } from './darwin';
import { listVolumes } from './volumes';

export type * from './types';
export { DiskScanError, type DiskErrorCode } from './exec';
export { classify, sortDisks, constraintsOf, type ClassifyContext, type DiskPlatform } from './constraints';

export interface ScanOptions {
  /** Device paths Spindle already exports or has attached; symlinks (/dev/disk/by-id/…) are resolved. */
  inUseBySpindle?: ReadonlySet<string>;
}

function currentPlatform(): DiskPlatform {
  const p = process.platform;
  if (p === 'linux' || p === 'win32' || p === 'darwin') return p;
  throw new DiskScanError('DISK_SCAN_UNSUPPORTED', `Spindle cannot list disks on ${p}; it supports Linux, Windows and macOS. Use an image file instead.`);
}

function listRawDisks(platform: DiskPlatform): Promise<RawDisk[]> {
  if (platform === 'win32') return listWindowsDisks();
  if (platform === 'darwin') return listDarwinDisks();
  return listLinuxDisks();
}

/** Add each path's resolved target, so a by-id link matches the /dev/sdX that lsblk reports. */
async function withResolvedPaths(paths: ReadonlySet<string>, platform: DiskPlatform): Promise<Set<string>> {
  const all = new Set(paths);
  if (platform === 'win32') return all;
  for (const p of paths) {
    const target = await realpath(p).catch(() => null);
    if (target) all.add(target);
  }
  return all;
}

export async function scanDisks(opts: ScanOptions = {}): Promise<DiskReport> {
  const platform = currentPlatform();
  const warnings: string[] = [];
  const [raw, volumes, inUse] = await Promise.all([
    listRawDisks(platform),
    // Volumes only matter for image files; without them the disk list is still worth showing.
    listVolumes(platform).catch((err: unknown) => {
      warnings.push(err instanceof Error ? err.message : String(err));
      return [];
    }),
    withResolvedPaths(opts.inUseBySpindle ?? new Set(), platform),
  ]);
  const disks = sortDisks(raw.map((d) => classify(d, { platform, inUseBySpindle: inUse, systemDrive: systemDrive(platform) })));
  const report: DiskReport = { platform, disks, volumes, scannedAt: new Date().toISOString() };
  if (warnings.length > 0) report.warnings = warnings;
  return report;
}

function systemDrive(platform: DiskPlatform): string | undefined {
  return platform === 'win32' ? process.env.SystemDrive : undefined;
}
