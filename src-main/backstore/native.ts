// The small native addon (native/spindle_backstore.c) for what Node's fs lacks:
// hole punching, preallocation, BLKDISCARD and lseek SEEK_DATA/SEEK_HOLE. Each
// of those runs on the libuv thread pool and completes through a callback,
// like fs.read. One call is synchronous: preadNowait (preadv2 RWF_NOWAIT),
// which serves small reads from the page cache on the main thread and says
// EAGAIN rather than wait for the disk (fd-backstore.ts). When the addon is not built (no compiler at install time, another
// OS, a bundle that left it out) `native` is null and the backstores report
// canUnmap=false / canReportAllocation=false instead of pretending.
//
// Build: `npm run build:native` (also run, best effort, by `npm ci`).
// Override the location with SPINDLE_BACKSTORE_ADDON=/path/to/spindle_backstore.node,
// or turn it off with SPINDLE_BACKSTORE_ADDON=off (an escape hatch; UNMAP and
// GET LBA STATUS are then reported as unsupported).
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';

type RawCallback = (errno: number, result: number) => void;

interface RawAddon {
  punchHole(fd: number, offset: number, length: number, cb: RawCallback): void;
  allocate(fd: number, offset: number, length: number, cb: RawCallback): void;
  discard(fd: number, offset: number, length: number, cb: RawCallback): void;
  seekData(fd: number, offset: number, cb: RawCallback): void;
  seekHole(fd: number, offset: number, cb: RawCallback): void;
  /** Absent from addons built before it existed. */
  preadNowait?(fd: number, buf: Buffer, bufOffset: number, length: number, position: number): number;
}

/**
 * preadv2(RWF_NOWAIT), synchronous, on the calling thread: bytes read (fewer
 * than asked when only part is cached, 0 at end of file) or -errno
 * (-EAGAIN: not in the page cache; -EOPNOTSUPP, -ENOSYS, -EINVAL: this file
 * or kernel cannot — use the thread pool).
 */
export type PreadNowait = (fd: number, buf: Buffer, bufOffset: number, length: number, position: number) => number;

export type NativeCallback = (err: NodeJS.ErrnoException | null) => void;
/** `position` is -1 when lseek says ENXIO (no data / no hole at or after offset). */
export type SeekCallback = (err: NodeJS.ErrnoException | null, position: number) => void;

export interface NativeOps {
  /** fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE): frees blocks; they read back as zeros. */
  punchHole(fd: number, offset: number, length: number, cb: NativeCallback): void;
  /** fallocate(0): reserves blocks (thick images). */
  allocate(fd: number, offset: number, length: number, cb: NativeCallback): void;
  /** ioctl(BLKDISCARD) on a block device: deallocates; contents afterwards are device-defined. */
  discard(fd: number, offset: number, length: number, cb: NativeCallback): void;
  seekData(fd: number, offset: number, cb: SeekCallback): void;
  seekHole(fd: number, offset: number, cb: SeekCallback): void;
  /** Null when the loaded addon predates it. */
  preadNowait: PreadNowait | null;
}

const ENXIO = 6;
/** Where `npm run build:native` leaves the addon, relative to src-main/backstore. */
const BUILT = join('native', 'build', 'Release', 'spindle_backstore.node');

function errnoError(errno: number, syscall: string, offset: number): NodeJS.ErrnoException {
  let code: string;
  try {
    code = getSystemErrorName(-errno);
  } catch {
    code = `E${errno}`;
  }
  const err: NodeJS.ErrnoException = new Error(`${code}: ${syscall} failed at offset ${offset} (errno ${errno})`);
  err.errno = -errno;
  err.code = code;
  err.syscall = syscall;
  return err;
}

function wrap(raw: RawAddon): NativeOps {
  const range =
    (fn: (fd: number, offset: number, length: number, cb: RawCallback) => void, syscall: string) =>
    (fd: number, offset: number, length: number, cb: NativeCallback): void => {
      fn(fd, offset, length, (errno) => cb(errno === 0 ? null : errnoError(errno, syscall, offset)));
    };
  const seek =
    (fn: (fd: number, offset: number, cb: RawCallback) => void, syscall: string) =>
    (fd: number, offset: number, cb: SeekCallback): void => {
      fn(fd, offset, (errno, result) => {
        if (errno === 0) cb(null, result);
        else if (errno === ENXIO) cb(null, -1);
        else cb(errnoError(errno, syscall, offset), -1);
      });
    };
  return {
    punchHole: range(raw.punchHole, 'fallocate(PUNCH_HOLE)'),
    allocate: range(raw.allocate, 'fallocate'),
    discard: range(raw.discard, 'ioctl(BLKDISCARD)'),
    seekData: seek(raw.seekData, 'lseek(SEEK_DATA)'),
    seekHole: seek(raw.seekHole, 'lseek(SEEK_HOLE)'),
    preadNowait: typeof raw.preadNowait === 'function' ? raw.preadNowait.bind(raw) : null,
  };
}

export interface NativeStatus {
  available: boolean;
  /** Where the addon was loaded from. */
  path?: string;
  /** Why it is not available, with what to do. */
  reason?: string;
}

function load(): { ops: NativeOps | null; status: NativeStatus } {
  const candidates: string[] = [];
  const override = process.env.SPINDLE_BACKSTORE_ADDON;
  if (override === 'off') {
    return {
      ops: null,
      status: {
        available: false,
        reason: 'the native backstore addon is turned off (SPINDLE_BACKSTORE_ADDON=off), so UNMAP and GET LBA STATUS are off for file and block LUNs',
      },
    };
  }
  if (override) candidates.push(override);
  let here: string | null = null;
  try {
    here = dirname(fileURLToPath(import.meta.url));
  } catch {
    // import.meta.url is not a file: URL (some bundles); the other places still apply.
  }
  if (here !== null) {
    // Beside this module (running from source: tsx, tests, the CLI).
    candidates.push(join(here, BUILT));
    // From a bundle such as out/main/index.js: the source tree's build, up to a few levels up.
    for (let up = here, i = 0; i < 4; i++, up = dirname(up)) candidates.push(join(up, 'src-main', 'backstore', BUILT));
  }
  // A packaged Electron app: extraResources → resources/native/spindle_backstore.node.
  const resourcesPath = (process as { resourcesPath?: string }).resourcesPath;
  if (resourcesPath) candidates.push(join(resourcesPath, 'native', 'spindle_backstore.node'));
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) {
    return {
      ops: null,
      status: {
        available: false,
        reason:
          'the native backstore addon is not built, so UNMAP and GET LBA STATUS are off for file and block LUNs — ' +
          'install a C compiler and python3 (apt install build-essential python3) and run `npm run build:native`',
      },
    };
  }
  try {
    const require = createRequire(import.meta.url);
    const raw = require(found) as RawAddon;
    return { ops: wrap(raw), status: { available: true, path: found } };
  } catch (err) {
    return {
      ops: null,
      status: {
        available: false,
        path: found,
        reason: `the native backstore addon at ${found} does not load (${(err as Error).message}) — rebuild it with \`npm run build:native\``,
      },
    };
  }
}

const loaded = load();

/** The addon's operations, or null when it is not available. */
export const native: NativeOps | null = loaded.ops;
/** Whether the addon loaded, and why not (for a log line at start-up). */
export const nativeStatus: Readonly<NativeStatus> = loaded.status;
