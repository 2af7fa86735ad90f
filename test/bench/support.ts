// Shared plumbing for benchmark scripts (SPEC §6): children with timeouts that
// never outlive the script, /proc readings, machine facts, the markdown
// section a script owns in docs/benchmarks.md, and CPU profile summaries.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------- children

const live = new Set<ChildProcess>();
const cleanups: Array<() => void> = [];

/** Every tracked child (and its descendants) is SIGKILLed when the script exits, however it exits. */
export function track<T extends ChildProcess>(child: T): T {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Synchronous clean-up (rm temp dirs, …) run once at exit, after children are killed. */
export function onExit(fn: () => void): void {
  cleanups.push(fn);
}

let exiting = false;
function killEverything(): void {
  for (const child of [...live]) {
    if (child.pid !== undefined) killTree(child.pid, 'SIGKILL');
  }
  live.clear();
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      fn();
    } catch {
      // best effort: we are leaving
    }
  }
}
process.once('exit', killEverything);

/**
 * SIGINT/SIGTERM: run `graceful` (bounded by 5 s), then kill what is left and
 * exit 130. A second signal skips the grace.
 */
export function installSignalHandlers(graceful: () => Promise<void>): void {
  const handler = (sig: NodeJS.Signals) => {
    if (exiting) {
      killEverything();
      process.exit(130);
    }
    exiting = true;
    process.stderr.write(`\n${sig}: stopping targets and generators…\n`);
    const hard = setTimeout(() => process.exit(130), 5_000);
    hard.unref();
    graceful()
      .catch(() => undefined)
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

/** Direct children of every process, read from /proc/<pid>/stat. */
function childrenMap(): Map<number, number[]> {
  const map = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid … — comm may contain spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = map.get(ppid) ?? [];
      list.push(Number(name));
      map.set(ppid, list);
    } catch {
      // raced with an exit
    }
  }
  return map;
}

/** All descendants of pid (children first, then theirs). */
export function descendants(pid: number): number[] {
  const map = childrenMap();
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of map.get(queue.shift()!) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** Signals pid and everything below it (a tsx wrapper's node child would otherwise be orphaned). */
export function killTree(pid: number, signal: NodeJS.Signals): void {
  let tree: number[] = [];
  try {
    tree = descendants(pid);
  } catch {
    // no /proc: the parent alone
  }
  for (const p of [pid, ...tree.reverse()]) {
    try {
      process.kill(p, signal);
    } catch {
      // already gone
    }
  }
}

export function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

/**
 * Runs a command to completion. At `softMs` it gets `softSignal` (lets tools
 * like iscsi-perf print their summary), at `timeoutMs` SIGKILL.
 */
export function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs: number; softMs?: number; softSignal?: NodeJS.Signals; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = track(spawn(cmd, args, { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const soft =
      opts.softMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            child.kill(opts.softSignal ?? 'SIGINT');
          }, opts.softMs)
        : undefined;
    const hard = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(soft);
      clearTimeout(hard);
      reject(new Error(`cannot run ${cmd}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(soft);
      clearTimeout(hard);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started, timedOut });
    });
  });
}

export function quoteArgs(args: string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

// ---------------------------------------------------------------- /proc

export interface ProcMemory {
  pid: number;
  rssKiB: number;
  hwmKiB: number;
}

/** VmRSS / VmHWM of a live process, or null when it is gone. */
export function procMemory(pid: number): ProcMemory | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { pid, rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
  } catch {
    return null;
  }
}

export function procCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------- machine

export interface MachineInfo {
  nproc: number;
  cpu: string;
  kernel: string;
  memGiB: number;
  node: string;
}

export function machineInfo(): MachineInfo {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    // keep os.cpus()
  }
  return {
    nproc: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length,
    cpu,
    kernel: `${os.type()} ${os.release()}`,
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
  };
}

// ---------------------------------------------------------------- docs

const DOCS_INTRO = `# Benchmarks

Benchmark scripts measure Spindle against a real peer **in the same run**, on the same
kind of backing file and with the same load generator, and write their figures below
(SPEC §6). Every figure that matters is a *ratio* measured on the machine named in the
section; absolute numbers only make sense next to the peer's numbers from the same run.
Each script owns the part of this file between its own markers and rewrites only that.
`;

/** Replaces (or appends) the part of `file` between `<!-- NAME:start -->` and `<!-- NAME:end -->`. */
export function writeDocsSection(file: string, name: string, body: string): void {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : DOCS_INTRO;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  const next = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next);
}

// ---------------------------------------------------------------- numbers

export function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—';
}

export function fmtNum(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '—';
}

export function mib(bytes: number): number {
  return bytes / 2 ** 20;
}

// ---------------------------------------------------------------- CPU profiles

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileEntry {
  name: string;
  where: string;
  selfMs: number;
  pct: number;
}

export interface ProfileSummary {
  file: string;
  wallMs: number;
  busyMs: number;
  idleMs: number;
  top: ProfileEntry[];
  byArea: ProfileEntry[];
}

// ---- source maps (a bundle's positions back to src-main/)

const B64 = new Map([...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].map((c, i) => [c, i]));

/** Per generated line: [generated column, source index, source line] segments, by column. */
interface SourceMap {
  sources: string[];
  lines: Array<Array<[number, number, number]>>;
}

/** Reads `file`.map (source map v3), or null when there is none or it cannot be read. */
function loadSourceMap(file: string): SourceMap | null {
  let raw: { sources?: string[]; sourceRoot?: string; mappings?: string };
  try {
    raw = JSON.parse(readFileSync(`${file}.map`, 'utf8')) as typeof raw;
  } catch {
    return null;
  }
  if (!raw.sources || typeof raw.mappings !== 'string') return null;
  const base = resolve(dirname(file), raw.sourceRoot ?? '');
  const sources = raw.sources.map((src) => resolve(base, src));
  const lines: SourceMap['lines'] = [];
  let srcIdx = 0;
  let srcLine = 0;
  for (const lineText of raw.mappings.split(';')) {
    const segs: Array<[number, number, number]> = [];
    let genCol = 0;
    for (const seg of lineText.split(',')) {
      if (!seg) continue;
      const fields: number[] = [];
      let value = 0;
      let shift = 0;
      for (const ch of seg) {
        const digit = B64.get(ch) ?? 0;
        value += (digit & 31) << shift;
        if (digit & 32) {
          shift += 5;
        } else {
          fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      genCol += fields[0] ?? 0;
      if (fields.length >= 4) {
        srcIdx += fields[1];
        srcLine += fields[2];
        segs.push([genCol, srcIdx, srcLine]);
      }
    }
    lines.push(segs);
  }
  return { sources, lines };
}

/** The source file (absolute) and 0-based line of a 0-based generated position, or null. */
function originalPosition(map: SourceMap, line: number, column: number): { source: string; line: number } | null {
  const segs = map.lines[line];
  if (!segs || segs.length === 0) return null;
  let best: [number, number, number] | null = null;
  for (const seg of segs) {
    if (seg[0] > column) break;
    best = seg;
  }
  best ??= segs[0];
  const source = map.sources[best[1]];
  return source === undefined ? null : { source, line: best[2] };
}

const sourceMaps = new Map<string, SourceMap | null>();

/** A frame's url and line, through the bundle's source map when it has one (out/cli/spindle.mjs). */
function mapFrame(url: string, line: number, column: number): { url: string; line: number } {
  if (!url.startsWith('file://') || !/\.m?js$/.test(url)) return { url, line };
  let file: string;
  try {
    file = fileURLToPath(url);
  } catch {
    return { url, line };
  }
  if (!sourceMaps.has(file)) sourceMaps.set(file, loadSourceMap(file));
  const map = sourceMaps.get(file);
  const pos = map ? originalPosition(map, line, column) : null;
  return pos ? { url: `file://${pos.source}`, line: pos.line } : { url, line };
}

function shortUrl(url: string, root: string): string {
  if (!url) return '';
  let u = url.replace(/^file:\/\//, '');
  if (u.startsWith(root)) u = u.slice(root.length);
  return u.replace(/^node_modules\/\.pnpm\/[^/]+\/node_modules\//, 'node_modules/');
}

/** Where a frame's time belongs: a src-main area, a dependency, Node internals, or V8 itself. */
function area(name: string, where: string): string {
  if (name === '(garbage collector)') return 'V8 garbage collector';
  if (name === '(program)') return 'V8/native (program)';
  if (!where) return name.startsWith('(') ? name : 'native / builtins';
  if (where.startsWith('node:')) return `node:${where.slice(5).split('/').slice(0, 2).join('/').replace(/:\d+$/, '')}`;
  const m = /^(src-main\/[^/:]+(?:\/[^/:]+)?)/.exec(where);
  if (m) return m[1].replace(/\.ts$/, '');
  const dep = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where);
  if (dep) return `dep ${dep[1]}`;
  return where.replace(/:\d+$/, '');
}

/** Self time per function (from sample time deltas), biggest first. */
export function summarizeProfile(file: string, root: string, topN = 25): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const samples = prof.samples ?? [];
  const deltas = prof.timeDeltas ?? [];
  if (samples.length > 0) {
    // timeDeltas[i] is the time *before* sample i; attribute sample i's interval to the next delta.
    for (let i = 0; i < samples.length; i++) {
      const dt = (deltas[i + 1] ?? deltas[i] ?? 0) / 1000;
      self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
    }
  } else {
    const interval = (prof.endTime - prof.startTime) / 1000 / Math.max(1, prof.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0));
    for (const n of prof.nodes) self.set(n.id, (n.hitCount ?? 0) * interval);
  }
  const fns = new Map<string, { name: string; where: string; ms: number }>();
  const areas = new Map<string, number>();
  let idle = 0;
  let total = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id);
    if (!n) continue;
    total += ms;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') {
      idle += ms;
      continue;
    }
    // A bundle's frames (out/cli/spindle.mjs) are mapped back to their src-main/ file and line.
    const frame = mapFrame(n.callFrame.url, n.callFrame.lineNumber, n.callFrame.columnNumber);
    const mapped = frame.url !== n.callFrame.url;
    const url = shortUrl(frame.url, root);
    // tsx hands V8 transpiled code whose positions are not the .ts lines, and
    // often all on line 1: show an unmapped .ts file alone then.
    const where = url ? (frame.line >= 0 && (mapped || (frame.line > 0 && !url.endsWith('.ts'))) ? `${url}:${frame.line + 1}` : url) : '';
    const key = `${name}@${where}`;
    const e = fns.get(key) ?? { name, where, ms: 0 };
    e.ms += ms;
    fns.set(key, e);
    const a = area(name, where);
    areas.set(a, (areas.get(a) ?? 0) + ms);
  }
  const busy = total - idle;
  const pct = (ms: number) => (busy > 0 ? (ms / busy) * 100 : 0);
  return {
    file,
    wallMs: (prof.endTime - prof.startTime) / 1000,
    busyMs: busy,
    idleMs: idle,
    top: [...fns.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, topN)
      .map((e) => ({ name: e.name, where: e.where, selfMs: e.ms, pct: pct(e.ms) })),
    byArea: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15)
      .map(([name, ms]) => ({ name, where: '', selfMs: ms, pct: pct(ms) })),
  };
}

/** The main-thread profile a process left in dir (the biggest file: tsx's loader thread writes a small one too). */
export function findProfile(dir: string, pid?: number): string | null {
  if (!existsSync(dir)) return null;
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && (pid === undefined || f.includes(`.${pid}.`)));
  let best: { f: string; size: number } | null = null;
  for (const f of files) {
    const size = readFileSync(`${dir}/${f}`).length;
    if (!best || size > best.size) best = { f: `${dir}/${f}`, size };
  }
  return best?.f ?? null;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
