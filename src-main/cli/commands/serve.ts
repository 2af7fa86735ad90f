import { nativeStatus } from '../../backstore/index';
import { createService } from '../../service/service';
import { startHeadlessServer } from '../../service/transports/websocket';
import { parseCommandArgs, parseHostPort, formatHostPort } from '../args';
import { CliError } from '../errors';
import { dataDirFrom, rendererDir } from '../paths';
import { removeEndpoint, writeEndpoint } from '../service-client';
import { reexecWithThreadPool, stopRequested, threadPoolSize, wantsThreadPoolReexec } from '../thread-pool';
import type { Command } from '../command';

const DEFAULT_UI = '127.0.0.1:7373';
/**
 * The service's targets and LUNs change while it runs and libuv's pool cannot
 * grow after start, so it is sized for as many busy LUNs as the formula counts
 * (4): 32 threads on 2 CPUs, 64 from 4 CPUs (see ../thread-pool.ts).
 */
const SERVICE_POOL_LUNS = 4;
const SERVICE_QUEUE_DEPTH = 128;

export const serve: Command = {
  name: 'serve',
  summary: 'run the Spindle service with its web UI (headless)',
  help: `usage: spindle serve [--data DIR] [--ui HOST:PORT] [--portal HOST:PORT]

Runs Spindle's service and serves its UI over HTTP. Prints
  ui: http://HOST:PORT/?token=TOKEN
when ready; open that URL (the token is required and changes every start).

  --data DIR          where spindle.db lives (default: $SPINDLE_DATA or ~/.local/share/spindle)
  --ui HOST:PORT      where the UI listens (default ${DEFAULT_UI}; port 0 picks a free one).
                      Binding beyond loopback exposes the UI to your network.
  --portal HOST:PORT  where every target listens (default: the stored portals, else the
                      defaultPortal setting, 0.0.0.0:3260)

Every enabled target is served again; one whose image or disk is gone comes up
disabled with the reason (see \`spindle targets list\`). While it runs, the other
commands (targets, luns, acls, requests, config) work through it.

Like \`target serve\`, it restarts itself once with a larger I/O thread pool
(UV_THREADPOOL_SIZE) unless UV_THREADPOOL_SIZE is set.
  -h, --help          show this help`,
  async run(argv) {
    const { values } = parseCommandArgs('serve', argv, {
      data: { type: 'string' },
      ui: { type: 'string' },
      portal: { type: 'string' },
    });
    const ui = parseHostPort('--ui', values.ui ?? DEFAULT_UI, '127.0.0.1');
    const portal = values.portal !== undefined ? parseHostPort('--portal', values.portal, '0.0.0.0') : undefined;
    const renderer = rendererDir();
    if (!renderer) throw new CliError('the UI is not built yet — run `npm run build` (or `npm start`, which builds it) first');

    // Thread pool (see ../thread-pool.ts): the parent only waits for the re-executed child.
    if (wantsThreadPoolReexec()) {
      const code = await reexecWithThreadPool({ size: threadPoolSize(SERVICE_POOL_LUNS, SERVICE_QUEUE_DEPTH) });
      if (code >= 0) return code;
    }
    // Listening from here on means a stop that arrives while targets are restored is not lost.
    const stopped = stopRequested();
    if (process.env.SPINDLE_DEBUG) {
      process.stderr.write(`debug: UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 'default (4)'}\n`);
      process.stderr.write(`debug: backstore addon: ${nativeStatus.available ? `loaded from ${nativeStatus.path}` : nativeStatus.reason}\n`);
    }

    const dataDir = dataDirFrom(values.data);
    const service = await createService({ dataDir, transport: 'headless', ...(portal !== undefined ? { portals: [portal] } : {}) });
    let server;
    try {
      server = await startHeadlessServer({ service, host: ui.host, port: ui.port, rendererDir: renderer });
    } catch (err) {
      await service.close();
      const code = (err as { code?: string }).code;
      if (code === 'EADDRINUSE') {
        throw new CliError(`${formatHostPort(ui)} is already in use — is another spindle serve running? Choose another port with --ui HOST:PORT`);
      }
      if (code === 'EADDRNOTAVAIL') throw new CliError(`${ui.host} is not an address of this machine — check --ui`);
      if (code === 'EACCES') throw new CliError(`not allowed to listen on ${formatHostPort(ui)} — use a port above 1023 or run as root`);
      throw err;
    }
    if (!isLoopback(ui.host)) {
      process.stderr.write(`warning: the UI listens on ${formatHostPort(ui)}, reachable from your network; anyone with the link can control Spindle\n`);
    }
    const endpoint = writeEndpoint(dataDir, ui.host, server.port, server.token);
    const r = service.restore;
    const lines = [`data: ${dataDir}`];
    for (const p of service.portals()) lines.push(`iscsi: listening on ${p}`);
    const listenError = service.listenError();
    if (listenError !== null) lines.push(`iscsi: not serving — ${listenError}`);
    lines.push(`targets: ${r.served} serving` + (r.disabled.length > 0 ? `, ${r.disabled.length} disabled` : '') + (r.failed.length > 0 ? `, ${r.failed.length} failed` : '') + ` (restored in ${r.ms} ms)`);
    for (const d of r.disabled) lines.push(`  ${d.iqn} disabled: ${d.reason}`);
    for (const f of r.failed) lines.push(`  ${f.iqn} failed: ${f.reason}`);
    lines.push(`ui: ${server.url}`);
    process.stdout.write(`${lines.join('\n')}\n`);

    await stopped;
    removeEndpoint(endpoint);
    await server.close();
    await service.close();
    return 0;
  },
};

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
