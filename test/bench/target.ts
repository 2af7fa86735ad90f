// `npm run bench:target` — Spindle's iSCSI target against tgt (SPEC §6, issue 3).
//
// Both targets serve a fresh 1 GiB file (pre-filled, so reads hit real blocks)
// on loopback; every workload is run back to back on tgt with its defaults,
// tgt tuned for large transfers, and Spindle, with the same generator
// (qemu-img bench, iscsi-perf). Prints each Spindle/tgt ratio and rewrites its
// section of docs/benchmarks.md.
//
//   npm run bench:target [-- --seconds N | --quick] [--json] [--peer-only]
//                        [--profile [DIR]] [--only ID,...] [--no-tuned] [--no-docs]
//   (--help lists every option)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomFillSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, ftruncateSync, fdatasyncSync, readdirSync, readFileSync, statfsSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GeneratorError, GENERATORS, QEMU_STRIDE_BLOCKS, type Generator, type Load, type Measure } from './generators';
import {
  descendants,
  findProfile,
  fmtInt,
  fmtNum,
  installSignalHandlers,
  killTree,
  machineInfo,
  onExit,
  procCmdline,
  procMemory,
  removeDir,
  run,
  summarizeProfile,
  track,
  waitExit,
  writeDocsSection,
  type ProcMemory,
  type ProfileSummary,
} from './support';
import { repoRoot } from '../support/cli';
import { freePort, PEER_PACKAGES, startTgt, which, type RunningTgt } from '../support/peers';

// ---------------------------------------------------------------- options

const usage = () => `usage: npm run bench:target -- [options]

Benchmarks Spindle's iSCSI target against tgt (tgtd) on loopback with
qemu-img bench and iscsi-perf, and writes the table to docs/benchmarks.md.

options:
  --seconds N      measured seconds per workload, generator and target (default 10)
  --rounds R       split each measurement into R rounds, alternating the target order (default 5)
  --quick          2 s each in one round: a smoke run
  --size GIB       backing file size in GiB (default 1)
  --only A,B       only these workloads and/or generators (ids below)
  --no-tuned       skip the "tgt tuned" runs
  --peer-only      self-test: a second tgtd (defaults) stands in for Spindle; ratios ≈ 1.0
  --profile [DIR]  run Spindle's target under node --cpu-prof and print the top self-time functions
                   (positions mapped back to src-main/ through the bundle's source map)
  --spindle-env K=V  extra environment for Spindle's target (repeatable), e.g. UV_THREADPOOL_SIZE=8
  --no-docs        do not write docs/benchmarks.md (default for --peer-only)
  --docs           write docs/benchmarks.md even with --peer-only
  --json           print one JSON object as the last line

workloads: ${WORKLOADS.map((w) => w.id).join(', ')}
generators: ${GENERATORS.map((g) => g.id).join(', ')}`;

interface Options {
  seconds: number;
  rounds: number;
  quick: boolean;
  sizeGiB: number;
  only: string[];
  tuned: boolean;
  peerOnly: boolean;
  profile: string | null;
  spindleEnv: Record<string, string>;
  docs: boolean;
  json: boolean;
}

type Metric = 'iops' | 'mibps' | 'lat';

interface Workload {
  id: string;
  title: string;
  load: Load;
  metric: Metric;
}

const KiB = 1024;
const MiB = 1024 * KiB;

const WORKLOADS: Workload[] = [
  { id: 'randread-4k-qd32', title: '4 KiB random read, QD 32', load: { bs: 4 * KiB, qd: 32, random: true, write: false }, metric: 'iops' },
  { id: 'seqread-128k-qd32', title: '128 KiB sequential read, QD 32', load: { bs: 128 * KiB, qd: 32, random: false, write: false }, metric: 'mibps' },
  { id: 'randwrite-4k-qd32', title: '4 KiB random write, QD 32', load: { bs: 4 * KiB, qd: 32, random: true, write: true }, metric: 'iops' },
  { id: 'seqwrite-1m-qd8', title: '1 MiB sequential write, QD 8', load: { bs: MiB, qd: 8, random: false, write: true }, metric: 'mibps' },
  { id: 'seqread-1m-qd8', title: '1 MiB sequential read, QD 8', load: { bs: MiB, qd: 8, random: false, write: false }, metric: 'mibps' },
  { id: 'randread-4k-qd1', title: '4 KiB random read, QD 1 (latency)', load: { bs: 4 * KiB, qd: 1, random: true, write: false }, metric: 'lat' },
];

const UNIT: Record<Metric, string> = { iops: 'IOPS', mibps: 'MiB/s', lat: 'µs mean latency' };
const GOAL = 1.2;
const RSS_GOAL_MB = 150;

/** What tgt is given in the "tuned" runs (tgtadm --op update --mode target). */
const TGT_TUNED: Array<[string, string]> = [
  ['MaxRecvDataSegmentLength', '262144'],
  ['MaxXmitDataSegmentLength', '262144'],
  ['FirstBurstLength', '262144'],
  ['MaxBurstLength', '16776192'],
  ['InitialR2T', 'No'],
  ['ImmediateData', 'Yes'],
  ['MaxOutstandingR2T', '8'],
];

/** Keys worth showing from each target's login answer. */
const SHOWN_KEYS = [
  'MaxRecvDataSegmentLength',
  'FirstBurstLength',
  'MaxBurstLength',
  'InitialR2T',
  'ImmediateData',
  'MaxOutstandingR2T',
  'HeaderDigest',
  'DataDigest',
];

function parseOptions(argv: string[]): Options {
  const o: Options = { seconds: 10, rounds: 5, quick: false, sizeGiB: 1, only: [], tuned: true, peerOnly: false, profile: null, spindleEnv: {}, docs: true, json: false };
  let docsExplicit: boolean | null = null;
  let roundsExplicit = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) fail(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--seconds': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1 || n > 120) fail('--seconds takes a whole number from 1 to 120');
        o.seconds = n;
        break;
      }
      case '--rounds': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1 || n > 10) fail('--rounds takes a whole number from 1 to 10');
        o.rounds = n;
        roundsExplicit = true;
        break;
      }
      case '--quick':
        o.quick = true;
        o.seconds = 2;
        break;
      case '--size': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1 || n > 64) fail('--size takes whole GiB from 1 to 64');
        o.sizeGiB = n;
        break;
      }
      case '--only':
        o.only = value().split(',').map((s) => s.trim()).filter(Boolean);
        break;
      case '--no-tuned':
        o.tuned = false;
        break;
      case '--peer-only':
        o.peerOnly = true;
        break;
      case '--profile':
        o.profile = argv[i + 1] && !argv[i + 1].startsWith('--') ? value() : '';
        break;
      case '--spindle-env': {
        const kv = value();
        const eq = kv.indexOf('=');
        if (eq < 1) fail('--spindle-env takes KEY=VALUE');
        o.spindleEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
        break;
      }
      case '--no-docs':
        docsExplicit = false;
        break;
      case '--docs':
        docsExplicit = true;
        break;
      case '--json':
        o.json = true;
        break;
      case '--help':
      case '-h':
        process.stdout.write(`${usage()}\n`);
        process.exit(0);
        break;
      default:
        fail(`unknown option ${a} (see --help)`);
    }
  }
  if (o.peerOnly && (o.profile !== null || Object.keys(o.spindleEnv).length > 0)) fail('--profile and --spindle-env are about Spindle; they make no sense with --peer-only');
  o.docs = docsExplicit ?? !o.peerOnly;
  if (o.quick && !roundsExplicit) o.rounds = 1;
  if (o.rounds > o.seconds) fail(`--rounds ${o.rounds} needs at least ${o.rounds} --seconds`);
  const known = new Set([...WORKLOADS.map((w) => w.id), ...GENERATORS.map((g) => g.id)]);
  for (const id of o.only) if (!known.has(id)) fail(`--only: unknown id "${id}" (known: ${[...known].join(', ')})`);
  return o;
}

function fail(message: string): never {
  process.stderr.write(`bench:target: ${message}\n`);
  process.exit(1);
}

const opts = parseOptions(process.argv.slice(2));
const log = (line = '') => process.stdout.write(`${line}\n`);
const SUBJECT = opts.peerOnly ? 'tgt #2' : 'Spindle';

// ---------------------------------------------------------------- peers

function checkPeers(): void {
  const bins = ['tgtd', 'tgtadm', 'qemu-img', 'iscsi-perf', 'iscsi-readcapacity16'];
  const missing = bins.filter((b) => !which(b));
  const pkgs = new Set(missing.map((b) => PEER_PACKAGES[b] ?? (b.startsWith('iscsi-') ? 'libiscsi-bin' : b)));
  if (pkgs.has('qemu-utils')) pkgs.add('qemu-block-extra');
  if (missing.length > 0) fail(`missing ${missing.join(', ')} — install with: sudo apt-get install -y ${[...pkgs].join(' ')}`);
}

async function checkQemuIscsi(): Promise<void> {
  const r = await run('qemu-img', ['--help'], { timeoutMs: 10_000 });
  if (!/Supported formats:.*\biscsi\b/.test(r.stdout)) fail("qemu-img has no iscsi:// driver — install it with: sudo apt-get install -y qemu-block-extra");
}

async function packageVersions(): Promise<string> {
  try {
    const r = await run('dpkg-query', ['-W', '-f', '${Package} ${Version}\n', 'tgt', 'libiscsi-bin', 'qemu-utils'], { timeoutMs: 10_000 });
    return r.stdout.trim().split('\n').filter(Boolean).join(', ');
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------- backing files

/** A fresh sparse file, then one sequential pass of non-zero data, then fdatasync. */
function makeBackingFile(path: string, bytes: number): number {
  const started = performance.now();
  const chunk = Buffer.alloc(4 * MiB);
  randomFillSync(chunk);
  const fd = openSync(path, 'wx');
  try {
    ftruncateSync(fd, bytes);
    for (let off = 0, n = 0; off < bytes; off += chunk.length, n++) {
      chunk.writeUInt32LE(n, 0); // no two chunks alike
      writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - off), off);
    }
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return (performance.now() - started) / 1000;
}

/** Flush the dirty pages a write run left behind, so the next run does not pay for them. */
async function settle(files: string[]): Promise<void> {
  for (const f of files) {
    const h = await open(f, 'r');
    try {
      await h.datasync();
    } finally {
      await h.close();
    }
  }
}

// ---------------------------------------------------------------- targets

interface Target {
  key: 'tgt' | 'tgtTuned' | 'subject';
  label: string;
  iqn: string;
  url: string;
  file: string;
  blockSize: number;
  negotiated: Record<string, string>;
  /** The process whose CPU and memory count as "the target". */
  pid(): number | undefined;
  /** Restarts the target if it died (Spindle only); throws if it cannot. */
  ensure(): Promise<void>;
}

/** tgtd -C N listens on /var/run/tgtd/socket.N; find the one that serves our (unique) IQN. */
async function tgtControlPort(iqn: string, before: Set<string>): Promise<string> {
  const dir = '/var/run/tgtd';
  const sockets = existsSync(dir) ? readdirSync(dir).filter((f) => /^socket\.\d+$/.test(f)) : [];
  const ordered = [...sockets.filter((s) => !before.has(s)), ...sockets.filter((s) => before.has(s))];
  for (const s of ordered) {
    const port = s.slice('socket.'.length);
    const r = await run('tgtadm', ['-C', port, '--lld', 'iscsi', '--op', 'show', '--mode', 'target'], { timeoutMs: 5_000 }).catch(() => null);
    if (r?.code === 0 && r.stdout.includes(iqn)) return port;
  }
  throw new Error(`cannot find the control socket of the tgtd serving ${iqn}`);
}

async function tgtadm(control: string, args: string[]): Promise<void> {
  const r = await run('tgtadm', ['-C', control, '--lld', 'iscsi', ...args], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`tgtadm ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim()}`);
}

/** Block size and the target's answers to libiscsi's login offer (libiscsi logs them at level 6). */
async function probe(url: string): Promise<{ blockSize: number; negotiated: Record<string, string> }> {
  const r = await run('iscsi-readcapacity16', [url], { timeoutMs: 20_000, env: { LIBISCSI_DEBUG: '6' } });
  const out = `${r.stdout}\n${r.stderr}`;
  const bs = /LOGICAL BLOCK LENGTH IN BYTES:\s*(\d+)/.exec(out);
  if (r.code !== 0 || !bs) throw new Error(`iscsi-readcapacity16 ${url} failed (exit ${r.code ?? r.signal}): ${out.trim().split('\n').slice(-3).join(' | ')}`);
  const negotiated: Record<string, string> = {};
  for (const m of out.matchAll(/TargetLoginReply: ([A-Za-z0-9]+)=([^\s\[]*)/g)) negotiated[m[1]] = m[2];
  return { blockSize: Number(bs[1]), negotiated };
}

const uniq = `${process.pid}-${randomBytes(3).toString('hex')}`;

async function startTgtPair(file: string, withTuned: boolean): Promise<{ tgt: RunningTgt; targets: Target[] }> {
  const port = await freePort();
  const iqnDefault = `iqn.2005-05.org.spindle:bench-tgt-${uniq}`;
  const iqnTuned = `iqn.2005-05.org.spindle:bench-tgt-tuned-${uniq}`;
  const before = new Set(existsSync('/var/run/tgtd') ? readdirSync('/var/run/tgtd') : []);
  // Both tgt targets serve the same file from one tgtd; they are never loaded at once.
  const tgt = await startTgt({
    port,
    targets: [
      { iqn: iqnDefault, luns: [{ lun: 1, backingFile: file }] },
      ...(withTuned ? [{ iqn: iqnTuned, luns: [{ lun: 1, backingFile: file }] }] : []),
    ],
  });
  track(tgt.process);
  if (withTuned) {
    const control = await tgtControlPort(iqnDefault, before);
    for (const [k, v] of TGT_TUNED) await tgtadm(control, ['--op', 'update', '--mode', 'target', '--tid', '2', '--name', k, '--value', v]);
  }
  const mk = (key: 'tgt' | 'tgtTuned', label: string, iqn: string): Target => ({
    key,
    label,
    iqn,
    url: `iscsi://127.0.0.1:${port}/${iqn}/1`,
    file,
    blockSize: 512,
    negotiated: {},
    pid: () => tgt.process.pid,
    ensure: async () => {
      if (tgt.process.exitCode !== null || tgt.process.signalCode !== null) throw new Error('tgtd exited');
    },
  });
  return { tgt, targets: [mk('tgt', 'tgt (defaults)', iqnDefault), ...(withTuned ? [mk('tgtTuned', 'tgt (tuned)', iqnTuned)] : [])] };
}

/**
 * Spindle runs as shipped: the CLI bundled by build/scripts/build-cli.mjs
 * (out/cli/spindle.mjs) on plain node, no TypeScript loader. Rebuilt here
 * first when src-main is newer than the bundle.
 */
const cliBundle = `${repoRoot}out/cli/spindle.mjs`;

function ensureCliBundle(): void {
  const r = spawnSync(process.execPath, [`${repoRoot}build/scripts/build-cli.mjs`, '--if-stale'], { cwd: repoRoot, encoding: 'utf8' });
  if (r.error || r.status !== 0) fail(`could not build the CLI bundle (node build/scripts/build-cli.mjs):\n${`${r.stdout ?? ''}${r.stderr ?? ''}`.trim() || r.error?.message}`);
  if (r.stdout.trim()) log(r.stdout.trim());
}

/** Spindle's `target serve`, restarted if it dies mid-run (each restart is reported). */
class SpindleTarget {
  child: ChildProcess | null = null;
  restarts = 0;
  output: () => string = () => '';
  constructor(
    readonly iqn: string,
    readonly file: string,
    readonly port: number,
    readonly profileDir: string | null,
  ) {}

  get args(): string[] {
    return ['target', 'serve', '--target', this.iqn, '--lun', `1=file:${this.file}`, '--portal', `127.0.0.1:${this.port}`];
  }

  async start(): Promise<void> {
    const ready = /listening on (\S+):(\d+)/;
    // `node [--cpu-prof …] out/cli/spindle.mjs target serve …`: `target serve`
    // re-executes itself with the same node flags, so under --profile its
    // engine writes its own profile (picked by pid after the run).
    const nodeFlags = this.profileDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${this.profileDir}`];
    const child = track(
      spawn(process.execPath, [...nodeFlags, cliBundle, ...this.args], {
        cwd: repoRoot,
        env: { ...process.env, ...opts.spindleEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    this.child = child;
    let out = '';
    this.output = () => out;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`spindle target serve was not ready within 60 s:\n${out}`)), 60_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d;
        if (ready.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr!.on('data', (d: Buffer) => (out += d));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`spindle target serve exited (${code}) before it was ready:\n${out}`));
      });
    });
  }

  alive(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * The node processes that run out/cli/spindle.mjs, outermost first: the
   * CLI re-executes itself once with UV_THREADPOOL_SIZE set; the last one is
   * the engine.
   */
  private chain(): number[] {
    const top = this.child?.pid;
    if (top === undefined || !this.alive()) return [];
    return [top, ...descendants(top)].filter((p) => procCmdline(p).includes('spindle.mjs'));
  }

  /** The process that serves iSCSI: its CPU, memory and profile are "Spindle's". */
  enginePid(): number | undefined {
    return this.chain().at(-1);
  }

  /** UV_THREADPOOL_SIZE the engine runs with (it sizes the pool itself unless told). */
  threadPool(): string | null {
    const pid = this.enginePid();
    if (pid === undefined) return null;
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      return env.find((e) => e.startsWith('UV_THREADPOOL_SIZE='))?.slice('UV_THREADPOOL_SIZE='.length) ?? 'default (4)';
    } catch {
      return null;
    }
  }

  /** Where the engine loaded the backstore addon from (its memory map), or null when it did not. */
  addon(): string | null {
    const pid = this.enginePid();
    if (pid === undefined) return null;
    try {
      const line = readFileSync(`/proc/${pid}/maps`, 'utf8')
        .split('\n')
        .find((l) => l.endsWith('spindle_backstore.node'));
      const path = line?.slice(line.indexOf('/')) ?? null;
      return path?.startsWith(repoRoot) ? path.slice(repoRoot.length) : path;
    } catch {
      return null;
    }
  }

  async ensure(): Promise<void> {
    if (this.alive()) return;
    const last = this.output().trim().split('\n').slice(-5).join('\n');
    this.restarts++;
    log(`  ! ${SUBJECT} target died (exit ${this.child?.exitCode ?? this.child?.signalCode}); restarting (#${this.restarts}). Last output:\n${last}`);
    await this.start();
  }

  /**
   * SIGINT to the process we started (the CLI forwards it to its re-executed
   * engine). Returns whether the target exited by itself
   * within 8 s — a clean exit is also what makes --cpu-prof write the profile;
   * otherwise the whole tree is killed.
   */
  async stop(): Promise<boolean> {
    const child = this.child;
    if (!child || !this.alive() || child.pid === undefined) return true;
    child.kill('SIGINT');
    if (await waitExit(child, 8_000)) return true;
    log(`  ! ${SUBJECT} target did not exit within 8 s of SIGINT; killing it`);
    killTree(child.pid, 'SIGKILL');
    await waitExit(child, 5_000);
    return false;
  }
}

// ---------------------------------------------------------------- CPU accounting

const CLK_TCK = 100;

function statFields(path: string): string[] | null {
  try {
    const stat = readFileSync(path, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from #3 (state) on
  } catch {
    return null;
  }
}

/** utime + stime of a process, all its threads, in clock ticks. */
function cpuTicks(pid: number | undefined): number {
  const f = pid === undefined ? null : statFields(`/proc/${pid}/stat`);
  return f ? Number(f[11]) + Number(f[12]) : NaN;
}

/** This script plus the children it has reaped (the generators), in clock ticks. */
function ownTicks(): number {
  const f = statFields('/proc/self/stat');
  return f ? Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) : NaN;
}

/** Busy ticks of the whole machine (all CPUs), from /proc/stat. */
function machineTicks(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: irq/softirq time (loopback
    // TCP's receive path, caused by our own load) belongs to no process, and
    // steal to no process on this machine, so count only process time.
    return f[0] + f[1] + f[2];
  } catch {
    return NaN;
  }
}

/** Brackets a measured window: the target's CPU, and what processes that are neither ours nor the target's used. */
function cpuWindow(pid: () => number | undefined) {
  let t0 = NaN;
  let o0 = NaN;
  let m0 = NaN;
  let w0 = NaN;
  let p: number | undefined;
  const res = { targetPct: NaN, foreignPct: NaN };
  return {
    res,
    mark(phase: 'start' | 'end') {
      if (phase === 'start') {
        p = pid();
        t0 = cpuTicks(p);
        o0 = ownTicks();
        m0 = machineTicks();
        w0 = performance.now();
        return;
      }
      const wall = (performance.now() - w0) / 1000;
      const dt = cpuTicks(p) - t0;
      res.targetPct = (dt / CLK_TCK / wall) * 100;
      res.foreignPct = Math.max(0, ((machineTicks() - m0 - (ownTicks() - o0) - dt) / CLK_TCK / wall) * 100);
    },
  };
}

// ---------------------------------------------------------------- measuring

interface Sample {
  measure: Measure;
  targetPct: number;
  foreignPct: number;
}

interface Cell {
  /** all rounds together: total requests / total measured time */
  value: number;
  /** each round's figure, in run order */
  rounds: number[];
  measure?: Measure;
  /** target process CPU over the measured windows (100 = one core) */
  cpuPct?: number;
  /** CPU used by unrelated processes on the machine meanwhile (100 = one core) */
  foreignPct?: number;
  error?: string;
}

interface Row {
  workload: string;
  title: string;
  generator: Generator['id'];
  pattern: string;
  patternShort: string;
  metric: Metric;
  unit: string;
  cells: Partial<Record<Target['key'], Cell>>;
  /** Spindle vs tgt defaults, Spindle vs tgt tuned: >1 means Spindle is better (latency inverted). */
  ratio: number;
  ratioTuned: number;
  /** largest (max - min) / mean over the rounds of any target in this row */
  spread: number;
}

function valueOf(m: Measure, metric: Metric): number {
  return metric === 'iops' ? m.iops : metric === 'mibps' ? m.mibps : m.latUs;
}

function ratioOf(metric: Metric, subject?: Cell, peer?: Cell): number {
  if (!subject || !peer || subject.error || peer.error) return NaN;
  return metric === 'lat' ? peer.value / subject.value : subject.value / peer.value;
}

function show(metric: Metric, v: number): string {
  return metric === 'iops' ? `${fmtInt(v)} IOPS` : metric === 'mibps' ? `${fmtNum(v)} MiB/s` : `${fmtNum(v)} µs`;
}

async function sampleOne(gen: Generator, t: Target, w: Workload, seconds: number, files: string[]): Promise<Sample> {
  await t.ensure();
  await settle(files);
  const win = cpuWindow(() => t.pid());
  const m = await gen.measure(t.url, w.load, seconds, t.blockSize, (phase) => win.mark(phase));
  return { measure: m, targetPct: win.res.targetPct, foreignPct: win.res.foreignPct };
}

function combine(w: Workload, samples: Sample[]): Cell {
  const ops = samples.reduce((n, s) => n + s.measure.ops, 0);
  const secs = samples.reduce((n, s) => n + s.measure.seconds, 0);
  const iops = ops / secs;
  const m: Measure = { iops, mibps: (iops * w.load.bs) / MiB, latUs: (w.load.qd / iops) * 1e6, ops, seconds: secs, command: samples.map((s) => s.measure.command).join(' ; ') };
  const weighted = (k: 'targetPct' | 'foreignPct') => samples.reduce((n, s) => n + s[k] * s.measure.seconds, 0) / secs;
  return { value: valueOf(m, w.metric), rounds: samples.map((s) => valueOf(s.measure, w.metric)), measure: m, cpuPct: weighted('targetPct'), foreignPct: weighted('foreignPct') };
}

/** All targets, `rounds` times, alternating the order (A B C, C B A, …) so no target always goes first. */
async function measureRow(gen: Generator, targets: Target[], w: Workload, files: string[]): Promise<Row['cells']> {
  const perRound = Math.max(1, Math.round(opts.seconds / opts.rounds));
  const samples = new Map<Target['key'], Sample[]>();
  const errors = new Map<Target['key'], string>();
  for (let r = 0; r < opts.rounds; r++) {
    const order = r % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      if (errors.has(t.key)) continue;
      try {
        const s = await sampleOne(gen, t, w, perRound, files);
        (samples.get(t.key) ?? samples.set(t.key, []).get(t.key)!).push(s);
        const m = s.measure;
        const extra = w.metric === 'lat' ? `${fmtInt(m.iops)} IOPS` : w.metric === 'iops' ? `${fmtNum(m.mibps)} MiB/s` : `${fmtInt(m.iops)} IOPS`;
        log(`    ${opts.rounds > 1 ? `r${r + 1} ` : ''}${t.label.padEnd(15)} ${show(w.metric, valueOf(m, w.metric)).padStart(16)}  (${extra}; target CPU ${fmtInt(s.targetPct)} %, other processes ${fmtInt(s.foreignPct)} %)`);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        if (!(err instanceof GeneratorError)) process.stderr.write(`${msg}\n`);
        log(`    ${opts.rounds > 1 ? `r${r + 1} ` : ''}${t.label.padEnd(15)} FAILED: ${msg.split('\n')[0]}`);
        errors.set(t.key, msg.split('\n')[0].slice(0, 300));
      }
    }
  }
  const cells: Row['cells'] = {};
  for (const t of targets) {
    const e = errors.get(t.key);
    cells[t.key] = e !== undefined ? { value: NaN, rounds: [], error: e } : combine(w, samples.get(t.key) ?? []);
  }
  return cells;
}

function spreadOf(cells: Row['cells']): number {
  let worst = 0;
  for (const c of Object.values(cells)) {
    if (!c || c.error || c.rounds.length < 2) continue;
    const mean = c.rounds.reduce((a, b) => a + b, 0) / c.rounds.length;
    worst = Math.max(worst, (Math.max(...c.rounds) - Math.min(...c.rounds)) / mean);
  }
  return worst;
}

async function loopbackTcp(seconds: number): Promise<number | null> {
  if (!which('iperf3')) return null;
  const port = await freePort();
  const server = track(spawn('iperf3', ['-s', '-1', '-p', String(port)], { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 300));
  try {
    const r = await run('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'], { timeoutMs: seconds * 1000 + 15_000 });
    const j = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second?: number } } };
    const bps = j.end?.sum_received?.bits_per_second;
    return bps ? bps / 8 / MiB : null;
  } catch {
    return null;
  } finally {
    server.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------- report

interface Report {
  date: string;
  command: string;
  mode: 'spindle' | 'peer-only';
  quick: boolean;
  seconds: number;
  rounds: number;
  sizeGiB: number;
  machine: ReturnType<typeof machineInfo>;
  packages: string;
  targets: Array<{ key: string; label: string; url: string; blockSize: number; negotiated: Record<string, string> }>;
  rows: Row[];
  memory: { subjectIdle: ProcMemory | null; subject: ProcMemory | null; tgtd: ProcMemory | null; goalMB: number };
  restarts: number;
  /** Spindle's engine: its libuv pool size, where its backstore addon came from, whether it exited by itself on SIGINT */
  engine: { threadPool: string | null; addon: string | null; cleanExit: boolean | null } | null;
  loopbackTcpMiBps: number | null;
  profile: (Omit<ProfileSummary, 'top'> & { top: ProfileSummary['top'] }) | null;
  profiled: boolean;
  spindleEnv: Record<string, string>;
  failures: number;
}

function pct(n: number): string {
  return Number.isFinite(n) ? `${fmtInt(n)} %` : '—';
}

/** Mean CPU of unrelated processes over a row's measurements (100 % = one core). */
function rowForeign(r: Row): number {
  const v = Object.values(r.cells).map((c) => c?.foreignPct ?? NaN).filter(Number.isFinite);
  return v.length > 0 ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
}

function ratioText(r: number): string {
  return Number.isFinite(r) ? `**${r.toFixed(2)}**` : '—';
}

function goalText(r: number, rt: number, hasTuned: boolean): string {
  if (!Number.isFinite(r)) return 'not measured';
  const d = r >= GOAL ? 'met' : 'below';
  if (!hasTuned || !Number.isFinite(rt)) return d;
  return `${d} (vs tuned: ${rt >= GOAL ? 'met' : 'below'})`;
}

function markdown(rep: Report): string {
  const m = rep.machine;
  const hasTuned = rep.targets.some((t) => t.key === 'tgtTuned');
  const subj = rep.mode === 'peer-only' ? 'tgt #2' : 'Spindle';
  const L: string[] = [];
  L.push(`## iSCSI target: ${subj} vs tgt (\`npm run bench:target\`)`);
  L.push('');
  L.push(
    `What is measured: one \`tgtd\` (Debian's tgt, run as a home-lab user runs it: defaults) and Spindle's \`spindle target serve\`, each serving LUN 1 from its own fresh ${rep.sizeGiB} GiB sparse file that was filled with non-zero data in one sequential pass before the runs, both on 127.0.0.1 (different ports). Each workload is run back to back — tgt (defaults), ${hasTuned ? 'tgt (tuned for large transfers), ' : ''}Spindle — with the same generator and the same settings; the backing files are \`fdatasync\`ed before every run so no run pays for another's dirty pages, and nothing is dropped from the page cache. Ratios are ${subj}/tgt for throughput and IOPS and tgt/${subj} for latency, so above 1 always means ${subj} is better. The goal is every ratio ≥ ${GOAL} (SPEC §6). The figures are only meaningful as ratios measured in the same run on this ${m.nproc}-core machine, where the generator and the target share the CPUs.`,
  );
  L.push('');
  L.push(`How to run: \`npm run bench:target\` (about ${Math.ceil(estimateSeconds(10, hasTuned, []) / 60)} minutes; \`-- --quick\` for a 2 s smoke run, \`-- --profile\` to profile Spindle, \`-- --peer-only\` to self-test the script with tgt against tgt, \`-- --help\` for the rest).`);
  L.push('');
  if (rep.mode === 'peer-only') L.push('> **Self-test run (`--peer-only`)**: a second tgtd with default settings stands in for Spindle; ratios should be ≈ 1.0.\n');
  if (rep.quick) L.push('> **Quick smoke run (2 s per measurement)**: figures are noisy; run without `--quick` for the real table.\n');
  if (Object.keys(rep.spindleEnv).length > 0) L.push(`> **Experiment**: Spindle's target ran with ${Object.entries(rep.spindleEnv).map(([k, v]) => `\`${k}=${v}\``).join(', ')}.\n`);
  if (rep.profiled) L.push('> **Profiled run**: Spindle ran under `node --cpu-prof`, which costs it some speed.\n');
  L.push(`- Command: \`${rep.command}\``);
  L.push(`- Date: ${rep.date}`);
  L.push(`- Machine: ${m.nproc} × ${m.cpu}, ${m.memGiB} GiB RAM, ${m.kernel}; Node ${m.node}`);
  L.push(`- Peers: ${rep.packages}`);
  L.push(`- ${rep.seconds} s measured per workload, generator and target${rep.rounds > 1 ? `, in ${rep.rounds} rounds of ${Math.max(1, Math.round(rep.seconds / rep.rounds))} s with the target order reversed every other round; a figure is total requests / total measured time of its rounds` : ''}`);
  const foreign = rep.rows.flatMap((r) => Object.values(r.cells).map((c) => c?.foreignPct ?? NaN)).filter(Number.isFinite);
  if (foreign.length > 0) {
    const avg = foreign.reduce((a, b) => a + b, 0) / foreign.length;
    const max = Math.max(...foreign);
    L.push(`- Other processes on the machine (not the targets, not the generators) used on average ${fmtInt(avg)} % of a core during the measurements, at most ${fmtInt(max)} %${max > 20 ? ' — the machine was shared, so single figures are noisy; the round spread column shows how much' : ''}`);
  }
  L.push('');
  L.push(`| Workload | Generator | Metric | tgt (defaults) | ${hasTuned ? 'tgt (tuned) | ' : ''}${subj} | ${subj} / tgt | ${hasTuned ? `${subj} / tgt tuned | ` : ''}Goal ≥ ${GOAL} | Round spread | Other processes' CPU | Target CPU (tgt / ${hasTuned ? 'tuned / ' : ''}${subj}) |`);
  L.push(`| --- | --- | --- | ---: | ${hasTuned ? '---: | ' : ''}---: | ---: | ${hasTuned ? '---: | ' : ''}--- | ---: | ---: | --- |`);
  const cellText = (row: Row, key: Target['key']) => {
    const c = row.cells[key];
    if (!c) return '—';
    if (c.error) return `failed: ${c.error.replace(/\|/g, '/').slice(0, 120)}`;
    return row.metric === 'iops' ? fmtInt(c.value) : fmtNum(c.value);
  };
  for (const r of rep.rows) {
    const cpu = (['tgt', ...(hasTuned ? ['tgtTuned'] : []), 'subject'] as Target['key'][]).map((k) => pct(r.cells[k]?.cpuPct ?? NaN)).join(' / ');
    L.push(
      `| ${r.title} | ${r.generator} (${r.patternShort}) | ${r.unit} | ${cellText(r, 'tgt')} | ${hasTuned ? `${cellText(r, 'tgtTuned')} | ` : ''}${cellText(r, 'subject')} | ${ratioText(r.ratio)} | ${hasTuned ? `${ratioText(r.ratioTuned)} | ` : ''}${goalText(r.ratio, r.ratioTuned, hasTuned)} | ${rep.rounds > 1 && Number.isFinite(r.spread) ? `${fmtInt(r.spread * 100)} %` : '—'} | ${pct(rowForeign(r))} | ${cpu} |`,
    );
  }
  const mem = rep.memory;
  const mb = (p: ProcMemory | null, k: 'rssKiB' | 'hwmKiB') => (p ? fmtNum((p[k] * 1024) / 1e6) : '—');
  L.push(
    `| RSS of the ${subj} target after the run | — | MB (VmRSS; peak VmHWM) | ${mb(mem.tgtd, 'rssKiB')} (peak ${mb(mem.tgtd, 'hwmKiB')}) | ${hasTuned ? 'same tgtd | ' : ''}${mb(mem.subject, 'rssKiB')} (peak ${mb(mem.subject, 'hwmKiB')}; ${mb(mem.subjectIdle, 'rssKiB')} idle after start) | — | ${hasTuned ? '— | ' : ''}${mem.subject ? ((Math.max(mem.subject.rssKiB, mem.subject.hwmKiB) * 1024) / 1e6 < mem.goalMB ? `met (< ${mem.goalMB} MB, peak included)` : (mem.subject.rssKiB * 1024) / 1e6 < mem.goalMB ? `below ${mem.goalMB} MB after the run, above it at peak` : `above ${mem.goalMB} MB`) : 'not measured'} | — | — | — |`,
  );
  L.push('');
  if (rep.engine) {
    L.push(
      `Spindle runs as shipped: \`node out/cli/spindle.mjs target serve …\` — the CLI bundled by esbuild (\`build/scripts/build-cli.mjs\`, rebuilt by this script when src-main is newer) on plain node, no TypeScript loader. Its figures are the engine process's (\`target serve\` re-executes itself once to size libuv's thread pool; the re-exec parent is not counted). Engine thread pool: UV_THREADPOOL_SIZE=${rep.engine.threadPool ?? 'unknown'}. Backstore addon: ${rep.engine.addon ? `loaded (\`${rep.engine.addon}\`)` : '**not loaded**'}. ${rep.engine.cleanExit === false ? '**It did not exit within 8 s of SIGINT and was killed.**' : rep.engine.cleanExit ? 'It exited cleanly on SIGINT.' : ''}`,
    );
    L.push('');
  }
  if (rep.restarts > 0) L.push(`**${subj}'s target died and was restarted ${rep.restarts} time(s) during this run.**\n`);
  if (rep.loopbackTcpMiBps !== null) {
    const best = Math.max(...rep.rows.filter((r) => r.workload.startsWith('seqread')).map((r) => r.cells.subject?.value ?? NaN).filter(Number.isFinite));
    L.push(`Single-stream loopback TCP (iperf3): ${fmtNum(rep.loopbackTcpMiBps)} MiB/s; ${subj}'s best sequential read is ${pct((best / rep.loopbackTcpMiBps) * 100)} of it (goal ≥ 90 %).\n`);
  } else {
    L.push('Single-stream loopback TCP (SPEC §6: sequential reads ≥ 90 % of it) was not measured: `iperf3` is not installed (`apt-get install -y iperf3`).\n');
  }
  L.push('### Negotiated parameters');
  L.push('');
  L.push(
    "Both generators are libiscsi initiators (qemu-img's iscsi driver links the same libiscsi). libiscsi 1.19 offers MaxRecvDataSegmentLength=262144, FirstBurstLength=262144, MaxBurstLength=262144, InitialR2T=No, ImmediateData=Yes, MaxOutstandingR2T=1, HeaderDigest=None,CRC32C — so on this initiator no target can get bursts above 256 KiB or more than one outstanding R2T, however generously it negotiates. Below, each target's answer during login (read with `LIBISCSI_DEBUG=6`); a key a target does not send keeps its RFC 7143 default (MaxRecvDataSegmentLength 8192).",
  );
  L.push('');
  L.push(`| Key | ${rep.targets.map((t) => (t.key === 'subject' ? subj : t.label)).join(' | ')} |`);
  L.push(`| --- | ${rep.targets.map(() => '---').join(' | ')} |`);
  for (const k of SHOWN_KEYS) L.push(`| ${k} | ${rep.targets.map((t) => t.negotiated[k] ?? '(not sent)').join(' | ')} |`);
  L.push(`| LUN block size | ${rep.targets.map((t) => String(t.blockSize)).join(' | ')} |`);
  L.push('');
  if (hasTuned) {
    L.push(`"tgt (tuned)" is a second target in the same tgtd given \`tgtadm --op update --mode target --tid 2 --name KEY --value VALUE\` for ${TGT_TUNED.map(([k, v]) => `${k}=${v}`).join(', ')} (MaxXmitDataSegmentLength is tgt's own cap on the Data-In PDUs it sends, 8192 by default).`);
    L.push('');
  }
  L.push('### Generators');
  L.push('');
  L.push(
    `- \`qemu-img bench -f raw -t none -c COUNT -d QD -s BS -S STEP [-w --pattern=165] iscsi://127.0.0.1:PORT/IQN/1\` runs a fixed number of requests, so COUNT is calibrated on each target (short runs that double as warm-up) to last the measured seconds; IOPS = COUNT / the time it reports. It has no random mode: "random" rows use STEP = ${QEMU_STRIDE_BLOCKS} × BS, an odd stride that visits every block of the image far apart and never twice per cycle.`,
  );
  L.push(`- \`iscsi-perf -t SECONDS -m QD -b BLOCKS [-r] iscsi://127.0.0.1:PORT/IQN/1\` (reads only — it cannot write; \`-r\` is rand() offsets); the figure is its final "iops average".`);
  L.push("- Latency rows: mean completion time = 1 / IOPS at QD 1. Target CPU: utime+stime of the target process (all threads) over the measured runs, 100 % = one core. Round spread: the largest (max − min) / mean of any one target's rounds in that row — ratios closer to 1 than that are within noise. Other processes' CPU: what processes that are neither the targets nor the generators (other people's work on a shared machine) used meanwhile, from /proc/stat.");
  L.push('');
  if (rep.profile) {
    const p = rep.profile;
    L.push(`### Profile of ${subj}'s target (\`--profile\`)`);
    L.push('');
    L.push(`\`node --cpu-prof\` over the whole run: ${fmtNum(p.wallMs / 1000)} s wall, ${fmtNum(p.busyMs / 1000)} s on the main thread (JS, GC, native), ${fmtNum(p.idleMs / 1000)} s idle in the event loop. Top self time:`);
    L.push('');
    L.push('| Self ms | % of busy | Function | Where |');
    L.push('| ---: | ---: | --- | --- |');
    for (const e of p.top.slice(0, 20)) L.push(`| ${fmtInt(e.selfMs)} | ${fmtNum(e.pct)} | \`${e.name}\` | ${e.where ? `\`${e.where}\`` : ''} |`);
    L.push('');
    L.push('By area:');
    L.push('');
    L.push('| Self ms | % of busy | Area |');
    L.push('| ---: | ---: | --- |');
    for (const e of p.byArea) L.push(`| ${fmtInt(e.selfMs)} | ${fmtNum(e.pct)} | ${e.name} |`);
    L.push('');
  }
  return L.join('\n');
}

function estimateSeconds(seconds: number, tuned: boolean, only: string[], rounds = 5): number {
  const targets = tuned ? 3 : 2;
  const pairs = selectedPairs(only);
  const qemu = pairs.filter((p) => p.g.id === 'qemu-img').length;
  // per run ≈ 0.3 s of start-up and login; qemu-img calibrates ≈ 1.5 s once per target
  return pairs.length * targets * (seconds + rounds * 0.3) + qemu * targets * 1.5 + 30;
}

function selectedPairs(only: string[]): Array<{ w: Workload; g: Generator }> {
  const ws = new Set(WORKLOADS.map((w) => w.id));
  const gs = new Set(GENERATORS.map((g) => g.id as string));
  const onlyW = only.filter((o) => ws.has(o));
  const onlyG = only.filter((o) => gs.has(o));
  const out: Array<{ w: Workload; g: Generator }> = [];
  for (const w of WORKLOADS) {
    if (onlyW.length > 0 && !onlyW.includes(w.id)) continue;
    for (const g of GENERATORS) {
      if (onlyG.length > 0 && !onlyG.includes(g.id)) continue;
      if (g.supports(w.load)) out.push({ w, g });
    }
  }
  return out;
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  let spindle: SpindleTarget | null = null;
  // From here on, Ctrl-C stops Spindle's target, kills every child and removes the temp files.
  installSignalHandlers(async () => {
    await spindle?.stop();
  });
  checkPeers();
  await checkQemuIscsi();
  if (!opts.peerOnly) {
    ensureCliBundle();
    const help = await run(process.execPath, [cliBundle, 'target', 'serve', '--help'], { timeoutMs: 60_000, cwd: repoRoot }).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
    if (help.code !== 0) {
      fail(`\`spindle target serve\` is not available (exit ${help.code}: ${(help.stderr || help.stdout).trim().split('\n')[0]}) — run with --peer-only to self-test the benchmark against tgt`);
    }
  }
  const pairs = selectedPairs(opts.only);
  if (pairs.length === 0) fail('--only selects nothing');

  const bytes = opts.sizeGiB * 2 ** 30;
  const work = mkdtempSync(join(tmpdir(), 'spindle-bench-'));
  onExit(() => removeDir(work));
  const nFiles = 2;
  const fsStat = statfsSync(work);
  if (fsStat.bavail * fsStat.bsize < nFiles * bytes + 512 * MiB) fail(`${work} has too little free space for ${nFiles} × ${opts.sizeGiB} GiB backing files`);

  let profileDir: string | null = null;
  if (opts.profile !== null) {
    profileDir = opts.profile || mkdtempSync(join(tmpdir(), 'spindle-bench-profile-'));
    mkdirSync(profileDir, { recursive: true });
  }

  const machine = machineInfo();
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const command = `npm run bench:target${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  log(`bench:target — ${SUBJECT} vs tgt, ${pairs.length} workload×generator pairs, ${opts.seconds} s each per target in ${opts.rounds} round(s) (≈ ${Math.ceil(estimateSeconds(opts.seconds, opts.tuned, opts.only, opts.rounds) / 60)} min)`);
  log(`machine: ${machine.nproc} × ${machine.cpu}, ${machine.kernel}, Node ${machine.node}`);

  const tgtFile = join(work, 'tgt.img');
  const subjFile = join(work, opts.peerOnly ? 'tgt2.img' : 'spindle.img');
  for (const f of [tgtFile, subjFile]) log(`backing file ${f}: ${opts.sizeGiB} GiB sparse, filled in ${fmtNum(makeBackingFile(f, bytes), 1)} s`);
  const files = [tgtFile, subjFile];

  const { targets: tgtTargets } = await startTgtPair(tgtFile, opts.tuned);
  let subject: Target;
  if (opts.peerOnly) {
    const port = await freePort();
    const iqn = `iqn.2005-05.org.spindle:bench-tgt2-${uniq}`;
    const t2 = await startTgt({ port, targets: [{ iqn, luns: [{ lun: 1, backingFile: subjFile }] }] });
    track(t2.process);
    subject = {
      key: 'subject',
      label: 'tgt #2',
      iqn,
      url: `iscsi://127.0.0.1:${port}/${iqn}/1`,
      file: subjFile,
      blockSize: 512,
      negotiated: {},
      pid: () => t2.process.pid,
      ensure: async () => {
        if (t2.process.exitCode !== null || t2.process.signalCode !== null) throw new Error('tgtd #2 exited');
      },
    };
  } else {
    const port = await freePort();
    const iqn = `iqn.2005-05.org.spindle:bench-${uniq}`;
    const s = new SpindleTarget(iqn, subjFile, port, profileDir);
    spindle = s;
    await s.start();
    subject = { key: 'subject', label: 'Spindle', iqn, url: `iscsi://127.0.0.1:${port}/${iqn}/1`, file: subjFile, blockSize: 512, negotiated: {}, pid: () => s.enginePid(), ensure: () => s.ensure() };
  }
  const targets = [...tgtTargets, subject];
  for (const t of targets) {
    const p = await probe(t.url);
    t.blockSize = p.blockSize;
    t.negotiated = p.negotiated;
    log(`${t.label}: ${t.url} — ${p.blockSize}-byte blocks; ${SHOWN_KEYS.slice(0, 6).map((k) => `${k}=${p.negotiated[k] ?? '-'}`).join(' ')}`);
  }

  const threadPool = spindle?.threadPool() ?? null;
  const addon = spindle?.addon() ?? null;
  if (spindle) log(`Spindle engine (node out/cli/spindle.mjs, as shipped): UV_THREADPOOL_SIZE=${threadPool ?? 'unknown'}; backstore addon ${addon ?? 'NOT loaded'}`);
  const idlePid = subject.pid();
  const subjectIdle = idlePid !== undefined ? procMemory(idlePid) : null;
  if (subjectIdle) log(`${SUBJECT} target process ${idlePid}: ${fmtNum((subjectIdle.rssKiB * 1024) / 1e6)} MB RSS idle after start`);

  const rows: Row[] = [];
  for (const { w, g } of pairs) {
    log(`\n${w.title} — ${g.id}, ${g.describe(w.load)}`);
    const row: Row = { workload: w.id, title: w.title, generator: g.id, pattern: g.describe(w.load), patternShort: w.load.random ? (g.id === 'qemu-img' ? 'strided' : 'random') : 'seq', metric: w.metric, unit: UNIT[w.metric], cells: {}, ratio: NaN, ratioTuned: NaN, spread: NaN };
    row.cells = await measureRow(g, targets, w, files);
    row.spread = spreadOf(row.cells);
    row.ratio = ratioOf(w.metric, row.cells.subject, row.cells.tgt);
    row.ratioTuned = ratioOf(w.metric, row.cells.subject, row.cells.tgtTuned);
    const tunedText = opts.tuned ? ` · vs tgt tuned ${Number.isFinite(row.ratioTuned) ? row.ratioTuned.toFixed(2) : '—'}` : '';
    for (const t of targets) {
      const c = row.cells[t.key];
      if (c && !c.error && opts.rounds > 1) log(`    = ${t.label.padEnd(15)} ${show(w.metric, c.value).padStart(16)}`);
    }
    log(`    → ${SUBJECT}/tgt ${Number.isFinite(row.ratio) ? row.ratio.toFixed(2) : '—'} (goal ≥ ${GOAL}: ${Number.isFinite(row.ratio) ? (row.ratio >= GOAL ? 'met' : 'below') : 'not measured'})${tunedText}${opts.rounds > 1 ? ` · round spread ${fmtInt(row.spread * 100)} %` : ''}`);
    rows.push(row);
  }

  const memory = { subjectIdle, subject: null as ProcMemory | null, tgtd: null as ProcMemory | null, goalMB: RSS_GOAL_MB };
  const spid = subject.pid();
  memory.subject = spid !== undefined ? procMemory(spid) : null;
  const tpid = tgtTargets[0].pid();
  memory.tgtd = tpid !== undefined ? procMemory(tpid) : null;
  log(`\nRSS after the run: ${SUBJECT} ${memory.subject ? `${fmtNum((memory.subject.rssKiB * 1024) / 1e6)} MB (peak ${fmtNum((memory.subject.hwmKiB * 1024) / 1e6)} MB)` : 'not measured'}; tgtd ${memory.tgtd ? `${fmtNum((memory.tgtd.rssKiB * 1024) / 1e6)} MB` : '—'}`);

  const loopbackTcpMiBps = await loopbackTcp(Math.min(opts.seconds, 10));
  if (loopbackTcpMiBps !== null) log(`loopback TCP single stream (iperf3): ${fmtNum(loopbackTcpMiBps)} MiB/s`);

  let profile: ProfileSummary | null = null;
  let cleanExit: boolean | null = null;
  if (spindle) {
    const enginePid = spindle.enginePid();
    cleanExit = await spindle.stop();
    log(`${SUBJECT} target ${cleanExit ? 'exited cleanly on SIGINT' : 'did NOT exit within 8 s of SIGINT (killed)'}`);
    if (profileDir) {
      const f = findProfile(profileDir, enginePid);
      if (!f) log(`! no .cpuprofile in ${profileDir} — did the target exit cleanly on SIGINT?`);
      else {
        profile = summarizeProfile(f, repoRoot);
        log(`\nprofile ${f}: ${fmtNum(profile.wallMs / 1000)} s wall, ${fmtNum(profile.busyMs / 1000)} s busy, ${fmtNum(profile.idleMs / 1000)} s idle`);
        log('top self time:');
        for (const e of profile.top) log(`  ${fmtInt(e.selfMs).padStart(8)} ms ${fmtNum(e.pct).padStart(5)} %  ${e.name}  ${e.where}`);
        log('by area:');
        for (const e of profile.byArea) log(`  ${fmtInt(e.selfMs).padStart(8)} ms ${fmtNum(e.pct).padStart(5)} %  ${e.name}`);
      }
    }
  }

  const failures = rows.reduce((n, r) => n + Object.values(r.cells).filter((c) => c?.error).length, 0);
  const report: Report = {
    date,
    command,
    mode: opts.peerOnly ? 'peer-only' : 'spindle',
    quick: opts.quick,
    seconds: opts.seconds,
    rounds: opts.rounds,
    sizeGiB: opts.sizeGiB,
    machine,
    packages: await packageVersions(),
    targets: targets.map((t) => ({ key: t.key, label: t.label, url: t.url, blockSize: t.blockSize, negotiated: t.negotiated })),
    rows,
    memory,
    restarts: spindle?.restarts ?? 0,
    engine: spindle ? { threadPool, addon, cleanExit } : null,
    loopbackTcpMiBps,
    profile,
    profiled: profileDir !== null,
    spindleEnv: opts.spindleEnv,
    failures,
  };

  log('\nSummary');
  for (const r of rows) {
    const c = (k: Target['key']) => (r.cells[k] ? (r.cells[k]!.error ? 'failed' : show(r.metric, r.cells[k]!.value)) : '—');
    log(
      `  ${r.title.padEnd(34)} ${r.generator.padEnd(10)} tgt ${c('tgt').padStart(14)}  ${opts.tuned ? `tuned ${c('tgtTuned').padStart(14)}  ` : ''}${SUBJECT} ${c('subject').padStart(14)}  ratio ${Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : '—'}${opts.tuned ? ` (vs tuned ${Number.isFinite(r.ratioTuned) ? r.ratioTuned.toFixed(2) : '—'})` : ''}`,
    );
  }
  if (profileDir) log(`\nprofile files kept in ${profileDir}`);

  if (opts.docs) {
    const docs = join(repoRoot, 'docs/benchmarks.md');
    writeDocsSection(docs, 'bench:target', markdown(report));
    log(`wrote ${docs}`);
  }
  if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  return failures > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench:target: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
