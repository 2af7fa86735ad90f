import { createService } from '../../service/service';
import { startHeadlessServer } from '../../service/transports/websocket';
import { parseCommandArgs, parseHostPort, formatHostPort } from '../args';
import { CliError } from '../errors';
import { dataDirFrom, rendererDir } from '../paths';
import type { Command } from '../command';

const DEFAULT_UI = '127.0.0.1:7373';

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
  --portal HOST:PORT  iSCSI portal for shared targets (default 0.0.0.0:3260)
  -h, --help          show this help`,
  async run(argv) {
    const { values } = parseCommandArgs('serve', argv, {
      data: { type: 'string' },
      ui: { type: 'string' },
      portal: { type: 'string' },
    });
    const ui = parseHostPort('--ui', values.ui ?? DEFAULT_UI, '127.0.0.1');
    if (values.portal !== undefined) parseHostPort('--portal', values.portal, '0.0.0.0');
    const renderer = rendererDir();
    if (!renderer) throw new CliError('the UI is not built yet — run `npm run build` (or `npm start`, which builds it) first');

    const dataDir = dataDirFrom(values.data);
    const service = await createService({ dataDir, transport: 'headless' });
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
    process.stdout.write(`data: ${dataDir}\nui: ${server.url}\n`);

    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await server.close();
    await service.close();
    return 0;
  },
};

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
