// Restore-on-start benchmark (issue 4): a data dir with 100 targets × 4 LUNs
// (sparse image files), then how long the service takes to serve them all
// again at start — createService's own restore (service.restore.ms), the
// wall time of createService, and the process's RSS — each in a fresh
// process, 3 runs, median; plus `spindle serve` from spawn to its
// `targets:` line. Printed as a markdown table (not asserted, not written to
// docs/: the lead pastes it into docs/benchmarks.md).
//
//   npm run bench:restore            (tsx test/bench/restore.ts)
//   tsx test/bench/restore.ts --targets 100 --luns 4 --runs 3
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createService } from '../../src-main/service/service';
import { RawIscsi } from '../support/raw-iscsi';
import { fmtInt, installSignalHandlers, killTree, machineInfo, onExit, procMemory, removeDir, track, waitExit } from './support';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const NODE_TSX = [process.execPath, '--import', 'tsx'];
const NS = 'iqn.2026-11.net.spindle.bench';
const INITIATOR = `${NS}:initiator`;
const IMAGE_BYTES = 64 * 1024 * 1024;

const { values } = parseArgs({
  options: {
    targets: { type: 'string', default: '100' },
    luns: { type: 'string', default: '4' },
    runs: { type: 'string', default: '3' },
    child: { type: 'string' }, // internal: one restore in this process, print JSON
  },
});

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface ChildResult {
  restoreMs: number;
  wallMs: number;
  rssMiB: number;
  served: number;
  disabled: number;
  failed: number;
  loginOk: boolean;
  closeMs: number;
}

/** --child DATA: createService with serving on, restore, one login to prove it serves, close. */
async function child(dataDir: string): Promise<void> {
  const t0 = performance.now();
  const s = await createService({ dataDir, transport: 'headless', serveTargets: true, portals: [{ host: '127.0.0.1', port: 0 }] });
  const wallMs = performance.now() - t0;
  const rss = process.memoryUsage().rss;
  const [portal] = s.portals();
  const port = Number(portal!.slice(portal!.lastIndexOf(':') + 1));
  // One login to the last target restored: it really serves.
  const last = (await s.call('targets.list')).at(-1);
  let login = { ok: true };
  if (last !== undefined) {
    const c = await RawIscsi.connect('127.0.0.1', port);
    login = await c.login({ initiatorName: INITIATOR, targetName: last.iqn });
    c.destroy();
  }
  const t1 = performance.now();
  await s.close();
  const out: ChildResult = {
    restoreMs: s.restore.ms,
    wallMs,
    rssMiB: rss / 2 ** 20,
    served: s.restore.served,
    disabled: s.restore.disabled.length,
    failed: s.restore.failed.length,
    loginOk: login.ok,
    closeMs: performance.now() - t1,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function runChild(dataDir: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const p = track(spawn(NODE_TSX[0]!, [...NODE_TSX.slice(1), fileURLToPath(import.meta.url), '--child', dataDir], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (err += d));
    p.once('close', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !line.startsWith('{')) return reject(new Error(`restore child failed (${code}):\n${out}\n${err}`));
      resolve(JSON.parse(line) as ChildResult);
    });
  });
}

/** `spindle serve`: ms from spawn to the `targets:` line, the restore ms it prints, and its RSS then. */
async function timeServe(dataDir: string): Promise<{ toTargetsMs: number; restoreMs: number; rssMiB: number; line: string }> {
  const args = ['serve', '--data', dataDir, '--portal', '127.0.0.1:0', '--ui', '127.0.0.1:0'];
  const t0 = performance.now();
  const p = track(spawn(NODE_TSX[0]!, [...NODE_TSX.slice(1), join(repoRoot, 'src-main/cli/main.ts'), ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  p.stderr.on('data', (d: Buffer) => (out += d));
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve printed no targets: line in 120 s:\n${out}`)), 120_000);
    p.stdout.on('data', (d: Buffer) => {
      out += d;
      const m = /^targets: .*$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
    p.once('exit', (code) => reject(new Error(`serve exited (${code}):\n${out}`)));
  });
  const toTargetsMs = performance.now() - t0;
  const rssMiB = (procMemory(p.pid!)?.rssKiB ?? NaN) / 1024;
  p.kill('SIGTERM');
  if (!(await waitExit(p, 10_000))) killTree(p.pid!, 'SIGKILL');
  const restoreMs = Number(/restored in (\d+) ms/.exec(line)?.[1] ?? NaN);
  return { toTargetsMs, restoreMs, rssMiB, line };
}

async function main(): Promise<void> {
  const nTargets = Number(values.targets);
  const nLuns = Number(values.luns);
  const runs = Number(values.runs);
  installSignalHandlers(async () => undefined);
  const root = mkdtempSync(join(tmpdir(), 'spindle-bench-restore-'));
  onExit(() => removeDir(root));
  const images = join(root, 'images');
  mkdirSync(images);
  const data = join(root, 'data');
  const empty = join(root, 'empty');

  // Sparse images: no blocks allocated.
  for (let t = 0; t < nTargets; t++) {
    for (let l = 0; l < nLuns; l++) {
      const f = join(images, `t${t}-l${l}.img`);
      writeFileSync(f, '');
      truncateSync(f, IMAGE_BYTES);
    }
  }
  // The store rows, through the service's API (no serving), as the CLI would.
  const tBuild = performance.now();
  const s = await createService({ dataDir: data, transport: 'cli', serveTargets: false });
  for (let t = 0; t < nTargets; t++) {
    await s.call('targets.create', {
      iqn: `${NS}:t${String(t).padStart(3, '0')}`,
      luns: Array.from({ length: nLuns }, (_, l) => ({ lun: l, backstore: { kind: 'file' as const, path: join(images, `t${t}-l${l}.img`) } })),
      acls: [{ initiatorIqn: INITIATOR }],
    });
  }
  await s.close();
  const buildMs = performance.now() - tBuild;
  process.stderr.write(`built ${nTargets} targets × ${nLuns} LUNs in ${Math.round(buildMs)} ms\n`);

  const restores: ChildResult[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await runChild(data);
    if (r.served !== nTargets || !r.loginOk) throw new Error(`run ${i + 1}: ${JSON.stringify(r)}`);
    restores.push(r);
    process.stderr.write(`createService run ${i + 1}: restore ${r.restoreMs} ms, wall ${Math.round(r.wallMs)} ms, RSS ${r.rssMiB.toFixed(0)} MiB\n`);
  }
  const emptyRuns: ChildResult[] = [];
  mkdirSync(empty);
  for (let i = 0; i < runs; i++) emptyRuns.push(await runChild(empty));

  const serves: Awaited<ReturnType<typeof timeServe>>[] = [];
  const emptyServes: Awaited<ReturnType<typeof timeServe>>[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await timeServe(data);
    if (!new RegExp(`^targets: ${nTargets} serving`).test(r.line)) throw new Error(`serve: ${r.line}`);
    serves.push(r);
    process.stderr.write(`spindle serve run ${i + 1}: ${Math.round(r.toTargetsMs)} ms to "${r.line}"\n`);
    emptyServes.push(await timeServe(empty));
  }

  const m = machineInfo();
  const row = (what: string, restore: number, wall: number, rss: number) => `| ${what} | ${fmtInt(restore)} | ${fmtInt(wall)} | ${fmtInt(rss)} |`;
  const lines = [
    `### Restore on start: ${nTargets} targets × ${nLuns} LUNs`,
    '',
    `${m.nproc} × ${m.cpu}, ${m.memGiB} GiB, ${m.kernel}, Node ${m.node}. ${nTargets * nLuns} sparse 64 MiB image files on ${tmpdir()}; median of ${runs} runs, each in a fresh process.`,
    '',
    '| what | restore ms (service.restore.ms) | wall ms | RSS MiB |',
    '| --- | ---: | ---: | ---: |',
    row(`createService, ${nTargets} × ${nLuns}`, median(restores.map((r) => r.restoreMs)), median(restores.map((r) => r.wallMs)), median(restores.map((r) => r.rssMiB))),
    row('createService, empty data dir', median(emptyRuns.map((r) => r.restoreMs)), median(emptyRuns.map((r) => r.wallMs)), median(emptyRuns.map((r) => r.rssMiB))),
    row(`\`spindle serve\` spawn → \`targets:\` line, ${nTargets} × ${nLuns}`, median(serves.map((r) => r.restoreMs)), median(serves.map((r) => r.toTargetsMs)), median(serves.map((r) => r.rssMiB))),
    row('`spindle serve` spawn → `targets:` line, empty', median(emptyServes.map((r) => r.restoreMs)), median(emptyServes.map((r) => r.toTargetsMs)), median(emptyServes.map((r) => r.rssMiB))),
    '',
    `Runs (restore ms): createService ${restores.map((r) => r.restoreMs).join(', ')}; serve ${serves.map((r) => r.restoreMs).join(', ')}. ` +
      `Building the store rows through the API (${nTargets} \`targets.create\` calls): ${fmtInt(buildMs)} ms. ` +
      `The serve wall time includes Node + tsx start-up and the web UI server; RSS is the process's after restore.`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (values.child !== undefined) {
  child(values.child).catch((err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  });
} else {
  main().then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`${(err as Error).stack}\n`);
      process.exit(1);
    },
  );
}
