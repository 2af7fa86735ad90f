// Load generators for iSCSI benchmarks, all libiscsi-based initiators:
//   qemu-img bench  — reads and writes, sequential or strided, fixed request count
//   iscsi-perf      — reads only (sequential or random), fixed run time
// Each returns the same Measure so rows can be compared across targets.
import { run, quoteArgs, type RunResult } from './support';

export interface Load {
  /** bytes per request */
  bs: number;
  /** requests in flight */
  qd: number;
  random: boolean;
  write: boolean;
}

export interface Measure {
  iops: number;
  /** MiB/s */
  mibps: number;
  /** mean completion time per request, µs (Little's law: qd / iops; exact at QD 1) */
  latUs: number;
  ops: number;
  seconds: number;
  /** the command line of the measured run */
  command: string;
}

export interface Generator {
  id: 'qemu-img' | 'iscsi-perf';
  /** Whether it can produce this load at all (iscsi-perf cannot write). */
  supports(load: Load): boolean;
  /** How "random" is produced, for the docs. */
  describe(load: Load): string;
  /**
   * Loads the target for about `seconds`. `onMeasuredRun` brackets the part
   * that is measured (qemu-img calibrates before it), for CPU accounting.
   */
  measure(url: string, load: Load, seconds: number, blockSize: number, onMeasuredRun?: (phase: 'start' | 'end') => void): Promise<Measure>;
}

export class GeneratorError extends Error {}

function measureOf(load: Load, ops: number, seconds: number, command: string): Measure {
  const iops = ops / seconds;
  return { iops, mibps: (iops * load.bs) / 2 ** 20, latUs: (load.qd / iops) * 1e6, ops, seconds, command };
}

function tail(r: RunResult): string {
  const text = `${r.stdout}\n${r.stderr}`.replace(/\r/g, '\n').trim().split('\n').filter(Boolean);
  return text.slice(-4).join(' | ').slice(0, 600);
}

// ---------------------------------------------------------------- qemu-img bench

/**
 * qemu-img bench has no random mode: requests go to offset += step (mod image
 * size). An odd multiple of the request size as the step visits every block of
 * a power-of-two image in a scattered order, far apart, never twice in a cycle
 * — the closest it gets to random I/O. 40503 blocks ≈ 158 MiB apart at 4 KiB.
 */
export const QEMU_STRIDE_BLOCKS = 40503;

function qemuArgs(url: string, load: Load, count: number): string[] {
  const step = load.random ? load.bs * QEMU_STRIDE_BLOCKS : load.bs;
  return [
    'bench',
    '-f', 'raw',
    '-t', 'none',
    '-c', String(count),
    '-d', String(load.qd),
    '-s', String(load.bs),
    '-S', String(step),
    // non-zero write data, so no target can take a zero-detection shortcut
    ...(load.write ? ['-w', '--pattern=165'] : []),
    url,
  ];
}

async function qemuOnce(url: string, load: Load, count: number, timeoutMs: number): Promise<{ seconds: number; command: string }> {
  const args = qemuArgs(url, load, count);
  const r = await run('qemu-img', args, { timeoutMs });
  const m = /Run completed in ([\d.]+) seconds/.exec(r.stdout);
  if (r.timedOut) throw new GeneratorError(`qemu-img bench did not finish ${count} requests within ${Math.round(timeoutMs / 1000)} s`);
  if (r.code !== 0 || !m) throw new GeneratorError(`qemu-img bench failed (exit ${r.code ?? r.signal}): ${tail(r)}`);
  return { seconds: Math.max(Number(m[1]), 0.001), command: `qemu-img ${quoteArgs(args)}` };
}

const lastRate = new Map<string, number>();

export const qemuImgBench: Generator = {
  id: 'qemu-img',
  supports: () => true,
  describe: (load) => (load.random ? `strided (step ${QEMU_STRIDE_BLOCKS} × ${load.bs / 1024} KiB; qemu-img bench has no random mode)` : 'sequential'),
  async measure(url, load, seconds, _blockSize, onMeasuredRun) {
    // qemu-img bench runs a request count, not a time: calibrate on the target
    // itself (this doubles as warm-up), then size the measured run to `seconds`.
    // Later rounds on the same target and load reuse the last measured rate.
    const key = `${url}|${load.bs}|${load.qd}|${load.random}|${load.write}`;
    let rate = lastRate.get(key);
    if (rate === undefined) {
      let count = load.qd * 16;
      let cal = await qemuOnce(url, load, count, 60_000);
      for (let i = 0; i < 6 && cal.seconds < 0.5; i++) {
        count *= Math.min(32, Math.max(2, Math.ceil((0.6 / cal.seconds) * 1.1)));
        cal = await qemuOnce(url, load, count, 60_000);
      }
      rate = count / cal.seconds;
    }
    const target = Math.max(load.qd * 4, Math.round(rate * seconds));
    onMeasuredRun?.('start');
    const main = await qemuOnce(url, load, target, seconds * 6_000 + 30_000);
    onMeasuredRun?.('end');
    lastRate.set(key, target / main.seconds);
    return measureOf(load, target, main.seconds, main.command);
  },
};

// ---------------------------------------------------------------- iscsi-perf

export const iscsiPerf: Generator = {
  id: 'iscsi-perf',
  supports: (load) => !load.write,
  describe: (load) => (load.random ? 'random (rand() per request)' : 'sequential'),
  async measure(url, load, seconds, blockSize, onMeasuredRun) {
    if (load.bs % blockSize !== 0) throw new GeneratorError(`request size ${load.bs} is not a multiple of the LUN's ${blockSize}-byte blocks`);
    const args = ['-t', String(seconds), '-m', String(load.qd), '-b', String(load.bs / blockSize), ...(load.random ? ['-r'] : []), url];
    // iscsi-perf's own countdown can miss its last tick and run forever; SIGINT
    // makes it drain and print its average, SIGKILL is the backstop.
    onMeasuredRun?.('start');
    const r = await run('iscsi-perf', args, { softMs: seconds * 1000 + 8_000, softSignal: 'SIGINT', timeoutMs: seconds * 1000 + 20_000 });
    onMeasuredRun?.('end');
    const out = r.stdout.replace(/\r/g, '\n');
    const all = [...out.matchAll(/iops average (\d+)/g)];
    const last = all.at(-1);
    if (/Login Failed|failed|Failed/.test(out + r.stderr) && r.code !== 0) throw new GeneratorError(`iscsi-perf failed (exit ${r.code ?? r.signal}): ${tail(r)}`);
    if (!last) throw new GeneratorError(`iscsi-perf printed no average (exit ${r.code ?? r.signal}): ${tail(r)}`);
    if (r.code !== 0 && !r.timedOut) throw new GeneratorError(`iscsi-perf exited ${r.code ?? r.signal}: ${tail(r)}`);
    const iops = Number(last[1]);
    if (!(iops > 0)) throw new GeneratorError(`iscsi-perf measured 0 IOPS: ${tail(r)}`);
    return measureOf(load, iops * seconds, seconds, `iscsi-perf ${quoteArgs(args)}`);
  },
};

export const GENERATORS: Generator[] = [qemuImgBench, iscsiPerf];
