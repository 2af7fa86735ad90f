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
  | 'DATA_DIR_UNWRITABLE'
  /** secrets.json can be read by other users (group/world permission bits). */
  | 'SECRETS_INSECURE'
  /** secrets.json is not a file Spindle wrote (bad JSON or layout). */
  | 'SECRETS_CORRUPT'
  /** A secret was encrypted with the OS keychain and this process cannot decrypt it. */
  | 'SECRETS_LOCKED';

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

// ---- errors of the repositories (bad input, broken invariants) ------------

/**
 * Why a repository refused a change. The service maps `code` and `message`
 * straight into an ApiError, so every message says what is wrong and what to
 * do, and never contains a CHAP secret.
 */
export type RepoErrorCode =
  /** A value has the wrong type or shape (a programming error in the caller, mostly). */
  | 'INVALID_INPUT'
  /** A target name is not a valid iqn./eui./naa. name. */
  | 'INVALID_IQN'
  /** An initiator name is empty, too long or contains spaces/control characters. */
  | 'INVALID_INITIATOR_NAME'
  | 'TARGET_EXISTS'
  | 'TARGET_NOT_FOUND'
  /** LUN numbers are 0..16383. */
  | 'LUN_OUT_OF_RANGE'
  | 'LUN_EXISTS'
  | 'LUN_NOT_FOUND'
  /** A backstore description is incomplete or contradictory (kind, path, size). */
  | 'BACKSTORE_INVALID'
  /** The backing file/device (or memory backstore) is already a read-write LUN. */
  | 'BACKSTORE_IN_USE'
  /** The path is already a backstore of another kind or size. */
  | 'BACKSTORE_CONFLICT'
  | 'BACKSTORE_NOT_FOUND'
  | 'BACKSTORE_NAME_TAKEN'
  | 'ACL_EXISTS'
  | 'ACL_NOT_FOUND'
  /** A CHAP user/secret pair Spindle refuses (too short, reused for mutual, ...). */
  | 'INVALID_CHAP'
  /** Host empty/too long or port outside 1..65535. */
  | 'PORTAL_INVALID'
  | 'PORTAL_EXISTS'
  | 'PORTAL_NOT_FOUND'
  | 'REQUEST_NOT_FOUND'
  | 'REMOTE_EXISTS'
  | 'REMOTE_NOT_FOUND'
  /** Another saved remote target already mounts at that directory. */
  | 'MOUNT_POINT_IN_USE'
  /** A stats sample is malformed (negative counters, unknown scope, ...). */
  | 'STATS_INVALID'
  /** A row names a secret that secrets.json does not hold (the file was replaced or edited). */
  | 'SECRET_MISSING';

export class RepoError extends Error {
  override readonly name = 'RepoError';
  readonly code: RepoErrorCode;
  /** The input field the error is about (e.g. "luns[1].lun"), when there is one. */
  readonly field: string | undefined;

  constructor(code: RepoErrorCode, message: string, field?: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.field = field;
  }
}

export function isRepoError(err: unknown, code?: RepoErrorCode): err is RepoError {
  return err instanceof RepoError && (code === undefined || err.code === code);
}

export function secretsInsecureError(file: string, mode: number): StoreError {
  const octal = (mode & 0o777).toString(8).padStart(4, '0');
  return new StoreError(
    'SECRETS_INSECURE',
    file,
    `secrets.json at ${file} can be read by other users (mode ${octal}), so its CHAP secrets may have leaked. ` +
      `Run "chmod 600 ${file}" and consider changing those secrets. ${UNCHANGED}`,
  );
}

export function secretsCorruptError(file: string, detail: string, cause?: unknown): StoreError {
  return new StoreError(
    'SECRETS_CORRUPT',
    file,
    `secrets.json at ${file} is damaged (${detail}). Restore it from a backup, or move it away and enter the CHAP secrets again. ${UNCHANGED}`,
    cause,
  );
}

export function secretsLockedError(file: string, detail: string, cause?: unknown): StoreError {
  return new StoreError(
    'SECRETS_LOCKED',
    file,
    `A CHAP secret in ${file} is encrypted with the desktop's keychain and ${detail}. ` +
      'Open Spindle in the desktop app (same user) to use it, or enter the secret again.',
    cause,
  );
}
