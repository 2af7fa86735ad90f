/**
 * A network portal of the target: one TCP listener handing accepted
 * sockets to the engine. Listen failures become PortalError with a message
 * that says what to do (port taken, address not on this host, privileged
 * port).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { PortalConfig } from './engine-types';

export class PortalError extends Error {
  override readonly name = 'PortalError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function formatPortal(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export class Portal {
  private server: Server | null = null;
  private bound: PortalConfig | null = null;

  constructor(
    readonly config: PortalConfig,
    private readonly onSocket: (socket: Socket) => void,
  ) {}

  /** The address actually bound (port 0 resolved), once listening. */
  get address(): PortalConfig {
    if (this.bound === null) throw new Error('portal is not listening');
    return this.bound;
  }

  listen(): Promise<PortalConfig> {
    const { host, port } = this.config;
    const where = formatPortal(host, port);
    return new Promise((resolve, reject) => {
      const server = createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 30_000 }, (socket) => this.onSocket(socket));
      // Connections get no timeout from the server: the engine does NOP-In keepalive.
      server.once('error', (err: NodeJS.ErrnoException) => {
        const code = err.code ?? 'ERROR';
        let message: string;
        if (code === 'EADDRINUSE') message = `${where} is already in use — is another iSCSI target (spindle, tgtd, LIO) running? Choose another port with --portal HOST:PORT`;
        else if (code === 'EADDRNOTAVAIL') message = `${host} is not an address of this machine — check --portal`;
        else if (code === 'EACCES') message = `not allowed to listen on ${where} — use a port above 1023 or run as root`;
        else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') message = `cannot resolve ${host} — check --portal`;
        else message = `cannot listen on ${where}: ${err.message}`;
        reject(new PortalError(code, message));
      });
      server.listen({ host, port, exclusive: true }, () => {
        const addr = server.address();
        this.bound = typeof addr === 'object' && addr !== null ? { host: addr.address, port: addr.port } : { host, port };
        server.on('error', () => undefined);
        this.server = server;
        resolve(this.bound);
      });
    });
  }

  /** Stop accepting connections (existing ones are the engine's). */
  close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}
