// Types shared by the disk scanner, the service API and the renderer.
// Pure declarations: no Node imports, so the renderer can import them.

/** How Spindle may export a disk. */
export type ShareVerdict = 'read-write' | 'read-only' | 'no';

/** One reason a disk is restricted, in words a user can act on. */
export interface DiskConstraint {
  code: 'system' | 'mounted' | 'read-only' | 'in-use-by-spindle' | 'removable' | 'empty' | 'virtual';
  /** e.g. "holds / — your system disk" */
  message: string;
  /** The worst verdict this constraint allows. */
  allows: ShareVerdict;
}

export interface Partition {
  name: string;
  path: string;
  sizeBytes: number;
  fstype: string | null;
  label: string | null;
  mountpoints: string[];
  /**
   * Devices stacked on this one and active (dm-crypt, LVM, md RAID, APFS
   * volumes): it is in use even when nothing on it is mounted. Their
   * mount points are already folded into `mountpoints`.
   */
  holders?: string[];
}

/** A whole block device as the OS reports it, before classification. */
export interface RawDisk {
  name: string;
  path: string;
  sizeBytes: number;
  model: string | null;
  serial: string | null;
  rotational: boolean;
  removable: boolean;
  readOnly: boolean;
  /** lsblk TYPE (disk, loop, rom, ...) or the platform's equivalent. */
  kind: string;
  fstype: string | null;
  /** Mount points of the disk itself (a partitionless file system) */
  mountpoints: string[];
  partitions: Partition[];
  /** Devices stacked directly on the whole disk (see Partition.holders). */
  holders?: string[];
  /** The platform itself flags the disk as the one the OS runs from (Windows IsSystem/IsBoot). */
  system?: boolean;
}

export interface Disk extends RawDisk {
  /** What Spindle may do with it, the worst of `constraints`. */
  share: ShareVerdict;
  constraints: DiskConstraint[];
}

/** A mounted file system with free space (where image files can live). */
export interface Volume {
  filesystem: string;
  mountpoint: string;
  sizeBytes: number;
  usedBytes: number;
  freeBytes: number;
}

export interface DiskReport {
  platform: 'linux' | 'win32' | 'darwin';
  /** Safe disks first (read-write, then read-only, then no); stable by path within a verdict. */
  disks: Disk[];
  volumes: Volume[];
  scannedAt: string;
  /** What left the report incomplete (e.g. volumes could not be read), in words a user can act on. */
  warnings?: string[];
}
