// Sizing libuv's thread pool for the commands that serve iSCSI (`serve`,
// `target serve`).
//
// Every backstore read and write that is not served on the main thread is an
// fs.read/fs.write on libuv's thread pool (4 threads by default), the first
// bottleneck at queue depth 32 (SPEC §6). libuv sizes the pool once, on its
// first use, from UV_THREADPOOL_SIZE — and by the time a command runs, Node's
// ES module loader (and tsx's, from source) has already used it, so setting
// process.env then is too late. So a command that wants a bigger pool
// re-executes itself once with UV_THREADPOOL_SIZE set: same node flags
// (--cpu-prof, tsx's loader, …), same script and arguments, stdio inherited,
// and an IPC channel so the child notices when its parent is gone and never
// outlives it. The parent then only waits and exits with the child's code.
//
// The child runs in its own process group, so SIGINT/SIGTERM reach it exactly
// once, forwarded by the parent. (In the parent's group, a terminal's Ctrl-C
// reached it twice — from the terminal and forwarded — and the second could
// land while Node was already exiting with default signal handling restored,
// turning a clean stop into "killed by SIGINT".) Ctrl-Z and a hang-up stop
// or end the parent, and the child follows when the IPC channel closes.
//
// Set UV_THREADPOOL_SIZE yourself to choose the size and skip the re-exec;
// SPINDLE_NO_REEXEC=1 skips it with the default pool.
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';

/**
 * Thread pool size: enough threads to keep every LUN's queue busy, but not
 * many more than the CPUs can run — measured on a 2-CPU host with a page-cached
 * image, 32 threads served 4 KiB random reads at QD 32 slower than 4 (thread
 * hand-offs, not I/O, dominate). Four per CPU, at least 8, per LUN up to 4 LUNs,
 * never more than the queue depth allows in flight, at most 64.
 */
export function threadPoolSize(luns: number, queueDepth: number): number {
  const perLun = Math.max(8, 4 * availableParallelism());
  return Math.max(4, Math.min(64, queueDepth * Math.max(1, luns), perLun * Math.max(1, Math.min(luns, 4))));
}

/** Whether this process should re-execute itself to size the pool (nobody chose a size, nor opted out). */
export function wantsThreadPoolReexec(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.UV_THREADPOOL_SIZE === undefined && env.SPINDLE_NO_REEXEC === undefined;
}

export interface ReexecOptions {
  /** UV_THREADPOOL_SIZE for the child. */
  size: number;
  /** The child's script and arguments (default: this process's own, process.argv.slice(1)). */
  argv?: readonly string[];
  /** Extra environment for the child (e.g. secrets that must stay out of argv). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Re-runs this process with UV_THREADPOOL_SIZE set and waits for it. Resolves
 * with the child's exit code (1 when a signal ended it), or -1 when it could
 * not be started — then a line on stderr says so and the caller carries on
 * with the default pool.
 */
export function reexecWithThreadPool(opts: ReexecOptions): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ...(opts.argv ?? process.argv.slice(1))], {
      env: { ...process.env, ...opts.env, UV_THREADPOOL_SIZE: String(opts.size) },
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
      detached: process.platform !== 'win32', // its own process group (see the top of this file)
    });
    const forward = (signal: NodeJS.Signals) => () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    };
    const onInt = forward('SIGINT');
    const onTerm = forward('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    const done = (code: number) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(code);
    };
    child.on('exit', (code, signal) => done(code ?? (signal !== null ? 1 : 0)));
    child.on('error', (err) => {
      process.stderr.write(`spindle: could not restart with a larger thread pool (${err.message}); continuing with the default\n`);
      done(-1);
    });
  });
}

/**
 * Resolves on the first SIGINT or SIGTERM, or — in a re-executed child — when
 * the parent goes away (its IPC channel closes). Later signals are absorbed
 * while the caller shuts down.
 */
export function stopRequested(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => resolve();
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    if (process.send !== undefined) {
      process.once('disconnect', stop);
      // The IPC channel must not keep the process alive once the work is done.
      (process.channel as { unref?: () => void } | undefined)?.unref?.();
      if (!process.connected) stop();
    }
  });
}
