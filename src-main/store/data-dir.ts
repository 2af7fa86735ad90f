// Where Spindle keeps its files, and making sure that place is usable.
import { randomBytes } from 'node:crypto';
import { mkdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, posix, resolve, win32 } from 'node:path';
import { dataDirUnwritableError, describeFsError } from './errors';

export interface DataDirInputs {
  /** Value of `--data DIR`, if given. */
  flag?: string;
  env: NodeJS.ProcessEnv;
  home: string;
  platform: NodeJS.Platform;
}

/**
 * `--data`, else `$SPINDLE_DATA`, else the platform's per-user data directory.
 * Pure: an empty string counts as unset, and relative paths are returned as
 * given (ensureDataDir/openStore resolve them against the working directory).
 */
export function resolveDataDir({ flag, env, home, platform }: DataDirInputs): string {
  const explicit = nonEmpty(flag) ?? nonEmpty(env.SPINDLE_DATA);
  if (explicit !== undefined) return explicit;
  if (platform === 'win32') {
    const appData = nonEmpty(env.APPDATA) ?? win32.join(home, 'AppData', 'Roaming');
    return win32.join(appData, 'Spindle');
  }
  if (platform === 'darwin') return posix.join(home, 'Library', 'Application Support', 'Spindle');
  // The XDG spec says a relative $XDG_DATA_HOME is invalid and must be ignored.
  const xdg = nonEmpty(env.XDG_DATA_HOME);
  if (xdg !== undefined && posix.isAbsolute(xdg)) return posix.join(xdg, 'spindle');
  return posix.join(home, '.local', 'share', 'spindle');
}

/**
 * Creates `dir` (and parents, mode 0700) if missing and proves it is writable
 * by creating and removing a probe file. Returns the absolute path.
 * Throws StoreError 'DATA_DIR_UNWRITABLE'.
 */
export function ensureDataDir(dir: string): string {
  const abs = resolve(dir);
  let isDirectory: boolean;
  try {
    mkdirSync(abs, { recursive: true, mode: 0o700 });
    isDirectory = statSync(abs).isDirectory();
  } catch (err) {
    throw dataDirUnwritableError(abs, describeFsError(err), err);
  }
  // mkdir -p normally rejects an existing non-directory with EEXIST; check
  // anyway so the error names the real problem on every platform.
  if (!isDirectory) throw dataDirUnwritableError(abs, 'it is not a directory');
  probeWritable(abs);
  return abs;
}

function probeWritable(dir: string): void {
  const probe = join(dir, `.spindle-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    writeFileSync(probe, 'probe', { flag: 'wx', mode: 0o600 });
    unlinkSync(probe);
  } catch (err) {
    throw dataDirUnwritableError(dir, describeFsError(err), err);
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
