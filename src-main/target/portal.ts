/**
 * A network portal of the target: one TCP listener handing accepted
 * sockets to the engine. Listen failures become PortalError with a message
 * that says what to do (port taken, address not on this host, privileged
 * port).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { PortalConfig } from './engine-types';

export type PortalErrorCode =
  /** EADDRINUSE: something else listens there. */
  | 'PORTAL_IN_USE'
  /** EADDRNOTAVAIL, ENOTFOUND, EAI_AGAIN: not an address of this host, or a name that does not resolve. */
  | 'PORTAL_ADDRESS_INVALID'
  /** EACCES: a privileged port without the right to use it. */
  | 'PORTAL_PERMISSION_DENIED'
  /** addresses() before listen(). */
  | 'PORTAL_NOT_LISTENING'
  /** Anything else the OS refused; see `errno`. */
  | 'PORTAL_ERROR';

/**
 * A portal that cannot listen. `code` is stable (for the service's ApiError),
 * `field` names the input ('portal'), `errno` keeps the OS's code
 * (EADDRINUSE, ...), and the message says what to do.
 */
export class PortalError extends Error {
  override readonly name = 'PortalError';
  constructor(
    readonly code: PortalErrorCode,
    message: string,
    readonly field: string = 'portal',
    readonly errno?: string,
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
    if (this.bound === null) throw new PortalError('PORTAL_NOT_LISTENING', `portal ${formatPortal(this.config.host, this.config.port)} is not listening yet; call listen() first`);
    return this.bound;
  }

  listen(): Promise<PortalConfig> {
    const { host, port } = this.config;
    const where = formatPortal(host, port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      return Promise.reject(new PortalError('PORTAL_ADDRESS_INVALID', `port ${String(port)} is not a TCP port; use 1 to 65535 (iSCSI's is 3260), or 0 to pick a free one`));
    }
    if (typeof host !== 'string' || host === '') {
      return Promise.reject(new PortalError('PORTAL_ADDRESS_INVALID', 'the portal has no host; give an address of this machine, or 0.0.0.0 for all'));
    }
    return new Promise((resolve, reject) => {
      const server = createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 30_000 }, (socket) => this.onSocket(socket));
      // Connections get no timeout from the server: the engine does NOP-In keepalive.
      server.once('error', (err: NodeJS.ErrnoException) => {
        const errno = err.code ?? 'ERROR';
        let code: PortalErrorCode;
        let message: string;
        if (errno === 'EADDRINUSE') {
          code = 'PORTAL_IN_USE';
          message = `${where} is already in use — is another iSCSI target (spindle, tgtd, LIO) running? Stop it or choose another port (--portal HOST:PORT)`;
        } else if (errno === 'EADDRNOTAVAIL') {
          code = 'PORTAL_ADDRESS_INVALID';
          message = `${host} is not an address of this machine — choose one of its addresses, or 0.0.0.0 for all (--portal HOST:PORT)`;
        } else if (errno === 'EACCES') {
          code = 'PORTAL_PERMISSION_DENIED';
          message = `not allowed to listen on ${where} — use a port above 1023 or run as root`;
        } else if (errno === 'ENOTFOUND' || errno === 'EAI_AGAIN') {
          code = 'PORTAL_ADDRESS_INVALID';
          message = `cannot resolve ${host} — give an IP address of this machine (--portal HOST:PORT)`;
        } else {
          code = 'PORTAL_ERROR';
          message = `cannot listen on ${where}: ${err.message}`;
        }
        reject(new PortalError(code, message, 'portal', errno));
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
