// Errors of the disk scanner, and the one way it runs an OS tool.
import { execFile } from 'node:child_process';

export type DiskErrorCode = 'DISK_SCAN_FAILED' | 'DISK_SCAN_UNSUPPORTED';

/** A scan failure; `message` says what to do about it. */
export class DiskScanError extends Error {
  readonly code: DiskErrorCode;
  constructor(code: DiskErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DiskScanError';
    this.code = code;
  }
}

export function scanFailed(message: string, cause?: unknown): DiskScanError {
  return new DiskScanError('DISK_SCAN_FAILED', message, cause === undefined ? undefined : { cause });
}

export interface RunOptions {
  timeoutMs?: number;
  /** What to install when the tool is missing, e.g. "util-linux (apt install util-linux)". */
  installHint: string;
}

interface ExecFailure extends Error {
  code?: string | number;
  killed?: boolean;
  signal?: NodeJS.Signals | null;
}

/** Run `cmd args` without a shell; resolve its stdout or reject with a DiskScanError. */
export function runTool(cmd: string, args: readonly string[], opts: RunOptions): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      {
        encoding: 'utf8',
        timeout: timeoutMs,
        maxBuffer: 32 * 1024 * 1024,
        windowsHide: true,
        // English messages, so callers can recognise them (e.g. lsblk's "unknown column").
        env: { ...process.env, LC_ALL: 'C' },
      },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        reject(describeFailure(cmd, err as ExecFailure, stderr, timeoutMs, opts.installHint));
      },
    );
  });
}

function describeFailure(cmd: string, err: ExecFailure, stderr: string, timeoutMs: number, installHint: string): DiskScanError {
  if (err.code === 'ENOENT') {
    return scanFailed(`Cannot list disks: "${cmd}" was not found. Install ${installHint}, then rescan.`, err);
  }
  if (err.killed || err.signal === 'SIGTERM') {
    return scanFailed(
      `Cannot list disks: "${cmd}" did not answer within ${Math.round(timeoutMs / 1000)} s. ` +
        'A hung disk or network mount can cause this; check the system log, then rescan.',
      err,
    );
  }
  const detail = firstLine(stderr) || err.message;
  return scanFailed(`Cannot list disks: "${cmd}" failed: ${detail}`, err);
}

export function firstLine(text: string): string {
  return text.split(/\r?\n/).map((l) => l.trim()).find((l) => l.length > 0) ?? '';
}
