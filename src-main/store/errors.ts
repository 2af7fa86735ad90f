// Errors the store raises when it cannot (or must not) open the database.
// Every message says what happened, where, and what the user can do; the
// ones about an existing file also say that the file was left untouched.

export type StoreErrorCode =
  /** spindle.db fails SQLite's integrity check or cannot be parsed. */
  | 'STORE_CORRUPT'
  /** spindle.db carries a schema version this build does not know. */
  | 'STORE_NEWER_VERSION'
  /** spindle.db is not a SQLite file, or is a SQLite file Spindle did not create. */
  | 'STORE_NOT_A_DATABASE'
  /** Another Spindle (or another program) is using the data directory. */
  | 'STORE_LOCKED'
  /** A schema upgrade failed and was rolled back. */
  | 'STORE_MIGRATION_FAILED'
  /** Any other I/O failure while opening spindle.db. */
  | 'STORE_IO'
  /** The data directory cannot be created or written. */
  | 'DATA_DIR_UNWRITABLE';

const UNCHANGED = 'The file was not changed.';

export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;
  /** The file or directory the error is about. */
  readonly path: string;

  constructor(code: StoreErrorCode, path: string, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.path = path;
  }
}

export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code);
}

export function dataDirUnwritableError(dir: string, reason: string, cause?: unknown): StoreError {
  return new StoreError(
    'DATA_DIR_UNWRITABLE',
    dir,
    `Cannot write to data directory ${dir}: ${reason} — choose another with --data DIR or fix its permissions.`,
    cause,
  );
}

export function newerVersionError(file: string, found: number, known: number): StoreError {
  return new StoreError(
    'STORE_NEWER_VERSION',
    file,
    `spindle.db at ${file} was written by a newer Spindle (schema ${found}; this version knows ${known}). ` +
      `Upgrade Spindle, or move the file away to start fresh. ${UNCHANGED}`,
  );
}

export function corruptError(file: string, detail: string, cause?: unknown): StoreError {
  return new StoreError(
    'STORE_CORRUPT',
    file,
    `spindle.db at ${file} is damaged (${detail}). Restore it from a backup, or move it away to start fresh. ${UNCHANGED}`,
    cause,
  );
}

export function notADatabaseError(file: string, detail: string): StoreError {
  return new StoreError(
    'STORE_NOT_A_DATABASE',
    file,
    `spindle.db at ${file} is not a Spindle database (${detail}). ` +
      `Move it away to start fresh, or use another --data DIR. ${UNCHANGED}`,
  );
}

export function lockedByPidError(dataDir: string, pid: number): StoreError {
  return new StoreError(
    'STORE_LOCKED',
    dataDir,
    `Another Spindle (pid ${pid}) is using ${dataDir}. Stop it, or use another --data DIR.`,
  );
}

export function lockedByProgramError(file: string, cause?: unknown): StoreError {
  return new StoreError(
    'STORE_LOCKED',
    file,
    `spindle.db at ${file} is locked by another program. Close that program, or use another --data DIR.`,
    cause,
  );
}

export function migrationFailedError(
  file: string,
  target: { version: number; name: string },
  from: number,
  cause: unknown,
): StoreError {
  return new StoreError(
    'STORE_MIGRATION_FAILED',
    file,
    `Could not upgrade spindle.db at ${file} to schema ${target.version} (${target.name}): ${reasonOf(cause)}. ` +
      `The upgrade was rolled back; the file is still at schema ${from}.`,
    cause,
  );
}

export function ioError(path: string, cause: unknown): StoreError {
  return new StoreError(
    'STORE_IO',
    path,
    `Cannot use ${path}: ${describeFsError(cause)}. Check the file and its directory, or use another --data DIR.`,
    cause,
  );
}

const ERRNO_TEXT: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOTDIR: 'part of the path is a file, not a directory',
  EEXIST: 'a file that is not a directory is in the way',
  EISDIR: 'it is a directory',
  ENOENT: 'the path does not exist',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'the path is too long',
  EIO: 'input/output error',
};

/** A short, human reason for a Node fs error (falls back to its message). */
export function describeFsError(err: unknown): string {
  const code = errnoCode(err);
  if (code !== undefined && code in ERRNO_TEXT) return ERRNO_TEXT[code];
  return reasonOf(err);
}

export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
