// Errors a backstore raises. Every message says what happened, about which
// file or device, and what the user can do about it. I/O callbacks receive
// these too (a BackstoreError is a NodeJS.ErrnoException with a BACKSTORE_*
// code); errors from the OS itself keep their errno code (EIO, ENOSPC, ...).

export type BackstoreErrorCode =
  /** The file or device does not exist. */
  | 'BACKSTORE_NOT_FOUND'
  /** A size that is zero, not a multiple of the block size, or unreadable. */
  | 'BACKSTORE_BAD_SIZE'
  /** Not enough free space on the volume for a thick image. */
  | 'BACKSTORE_NO_SPACE'
  /** createImage: the file is already there (Spindle never overwrites). */
  | 'BACKSTORE_EXISTS'
  /** A write or unmap on a read-only LUN, or a read-write open of something read-only. */
  | 'BACKSTORE_READ_ONLY'
  /** A spec string (`file:PATH[:SIZE]`, `memory:SIZE`, `block:DEV`) that does not parse. */
  | 'BACKSTORE_BAD_SPEC'
  /** The path is of the wrong kind (a folder, a block device given as a file, ...). */
  | 'BACKSTORE_WRONG_KIND'
  /** A block device that is mounted, part of RAID/LVM, or opened exclusively elsewhere. */
  | 'BACKSTORE_IN_USE'
  /** Permission denied. */
  | 'BACKSTORE_ACCESS_DENIED'
  /** An I/O outside the backstore, or a buffer range outside the buffer. */
  | 'BACKSTORE_OUT_OF_RANGE'
  /** An unmap range that is not a whole number of blocks. */
  | 'BACKSTORE_UNALIGNED'
  /** unmap()/allocation() on a backstore whose capabilities say it cannot. */
  | 'BACKSTORE_UNSUPPORTED'
  /** An operation after close(). */
  | 'BACKSTORE_CLOSED'
  /** Any other failure (the cause is attached). */
  | 'BACKSTORE_IO';

export class BackstoreError extends Error {
  override readonly name = 'BackstoreError';
  readonly code: BackstoreErrorCode;
  /** The file or device the error is about, when there is one. */
  readonly path: string | undefined;

  constructor(code: BackstoreErrorCode, message: string, options?: { path?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.path = options?.path;
  }
}

export function isBackstoreError(err: unknown, code?: BackstoreErrorCode): err is BackstoreError {
  return err instanceof BackstoreError && (code === undefined || err.code === code);
}

const UNITS = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** 3328599654 → "3.1 GiB", 107374182400 → "100 GiB", 512 → "512 bytes". */
export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${n} ${n === 1 ? 'byte' : 'bytes'}`;
  // One decimal below 10 (3.1 GiB), whole numbers above (100 GiB, 15 GiB).
  const text = v < 10 ? v.toFixed(1).replace(/\.0$/, '') : String(Math.round(v));
  return `${text} ${UNITS[u]}`;
}

/** Turns an fs error from opening/inspecting `path` into a BackstoreError with advice. */
export function describeOpenError(err: NodeJS.ErrnoException, path: string, what: string, notFoundHint = 'check the path'): BackstoreError {
  const What = what.charAt(0).toUpperCase() + what.slice(1);
  switch (err.code) {
    case 'ENOENT':
      return new BackstoreError('BACKSTORE_NOT_FOUND', `${What} ${path} does not exist — ${notFoundHint}.`, { path, cause: err });
    case 'EACCES':
    case 'EPERM':
      return new BackstoreError(
        'BACKSTORE_ACCESS_DENIED',
        `Permission denied opening ${what} ${path} — run Spindle as a user that may read and write it, or fix its permissions.`,
        { path, cause: err },
      );
    case 'EROFS':
      return new BackstoreError(
        'BACKSTORE_READ_ONLY',
        `${What} ${path} is on a read-only file system — export it read-only, or remount the volume read-write.`,
        { path, cause: err },
      );
    case 'EISDIR':
      return new BackstoreError('BACKSTORE_WRONG_KIND', `${path} is a folder — give the path of the ${what} itself.`, { path, cause: err });
    default:
      return new BackstoreError('BACKSTORE_IO', `Cannot open ${what} ${path}: ${err.message}`, { path, cause: err });
  }
}
