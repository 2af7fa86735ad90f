// Real peers for interop tests (SPEC §5): find them, install them when we are
// root, or fail with the exact command that installs them.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian package that provides each peer binary. */
export const PEER_PACKAGES: Record<string, string> = {
  tgtd: 'tgt',
  tgtadm: 'tgt',
  'iscsi-ls': 'libiscsi-bin',
  'iscsi-inq': 'libiscsi-bin',
  'iscsi-test-cu': 'libiscsi-bin',
  'iscsi-perf': 'libiscsi-bin',
  'iscsi-readcapacity16': 'libiscsi-bin',
  'qemu-img': 'qemu-utils',
  nbdinfo: 'libnbd-bin',
  nbdcopy: 'libnbd-bin',
  fio: 'fio',
  chromium: 'chromium',
  chromedriver: 'chromium-driver',
};

export function which(bin: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (dir && existsSync(`${dir}/${bin}`)) return `${dir}/${bin}`;
  }
  return null;
}

/** Returns the binaries' paths; installs missing packages when root, else throws with the command. */
export function requirePeers(bins: string[]): Record<string, string> {
  const missing = bins.filter((b) => !which(b));
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((b) => PEER_PACKAGES[b] ?? b))];
    // qemu-img's iscsi:// driver lives in qemu-block-extra.
    if (pkgs.includes('qemu-utils')) pkgs.push('qemu-block-extra');
    const cmd = `apt-get install -y ${pkgs.join(' ')}`;
    if (process.getuid?.() !== 0) throw new Error(`missing test peers ${missing.join(', ')} — install them with: sudo ${cmd}`);
    execFileSync('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${cmd} -qq`], { stdio: 'inherit' });
  }
  return Object.fromEntries(bins.map((b) => [b, which(b) ?? '']));
}

export interface TgtLun {
  lun: number;
  backingFile: string;
}

export interface TgtTarget {
  iqn: string;
  luns: TgtLun[];
}

export interface RunningTgt {
  portal: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

let nextControlPort = 100 + (process.pid % 800);

/** Starts `tgtd -f` on a loopback portal with the given targets, open to every initiator. */
export async function startTgt(opts: { host?: string; port: number; targets: TgtTarget[] }): Promise<RunningTgt> {
  requirePeers(['tgtd', 'tgtadm']);
  const control = String(nextControlPort++);
  const portal = `${opts.host ?? '127.0.0.1'}:${opts.port}`;
  const proc = spawn('tgtd', ['-f', '-C', control, '--iscsi', `portal=${portal}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout?.on('data', (d: Buffer) => (log += d));
  proc.stderr?.on('data', (d: Buffer) => (log += d));
  const adm = (...args: string[]) => execFileSync('tgtadm', ['-C', control, '--lld', 'iscsi', ...args], { stdio: 'pipe' });

  // tgtd has no "ready" line: poll its control socket.
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      adm('--op', 'show', '--mode', 'target');
      break;
    } catch {
      if (proc.exitCode !== null || Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`tgtd did not start on ${portal}: ${log.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  opts.targets.forEach((t, i) => {
    const tid = String(i + 1);
    adm('--op', 'new', '--mode', 'target', '--tid', tid, '-T', t.iqn);
    for (const l of t.luns) adm('--op', 'new', '--mode', 'logicalunit', '--tid', tid, '--lun', String(l.lun), '-b', l.backingFile);
    adm('--op', 'bind', '--mode', 'target', '--tid', tid, '-I', 'ALL');
  });
  return {
    portal,
    process: proc,
    // tgtd ignores SIGTERM while it has targets; it is a throwaway test peer, so SIGKILL.
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGKILL');
      }),
  };
}

/** A free TCP port on loopback (bind :0, read it, close). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
