// The headless transport: HTTP serves the renderer, and the typed API is a
// WebSocket at /api. Every upgrade must carry the access token (query
// `token=` or `Authorization: Bearer`); without it the answer is 401 before
// any API access.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ApiError, eventNames, isMethodName, type WireEvent, type WireResponse } from '../api/schema';
import type { Service } from '../service';
import { toApiError } from '../service';
import { serveStatic } from './static-files';

export interface HeadlessServerOptions {
  service: Service;
  host: string;
  port: number;
  rendererDir: string;
  /** Fixed token (tests); a random one otherwise. */
  token?: string;
}

export interface HeadlessServer {
  readonly url: string;
  readonly port: number;
  readonly token: string;
  close(): Promise<void>;
}

/** Events are dropped (not queued) for a client this far behind. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const MAX_MESSAGE_BYTES = 1024 * 1024;

export function makeToken(): string {
  return randomBytes(24).toString('base64url');
}

export function tokenFromRequest(req: IncomingMessage): string | null {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  try {
    return new URL(req.url ?? '/', 'http://x').searchParams.get('token');
  } catch {
    return null;
  }
}

function sameToken(a: string | null, b: string): boolean {
  if (a === null) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function refuse(socket: Duplex, status: 401 | 403 | 404, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
}

export async function startHeadlessServer(opts: HeadlessServerOptions): Promise<HeadlessServer> {
  const token = opts.token ?? makeToken();
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  const http: Server = createServer((req, res) => serveStatic(opts.rendererDir, req, res));

  http.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path !== '/api') return refuse(socket, 404, 'Not Found');
    if (!sameToken(tokenFromRequest(req), token)) return refuse(socket, 401, 'Unauthorized');
    // A page from another site must not drive the API even if it learnt the token.
    const origin = req.headers.origin;
    if (origin && new URL(origin).host !== req.headers.host) return refuse(socket, 403, 'Forbidden');
    wss.handleUpgrade(req, socket, head, (ws) => attach(ws, opts.service));
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port, opts.host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const addr = http.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const hostForUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${hostForUrl}:${port}/?token=${token}`,
    port,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.close(1001, 'server shutting down');
        wss.close();
        http.close(() => resolve());
        http.closeAllConnections();
      }),
  };
}

/** One API connection: requests in, responses and events out. */
function attach(ws: WebSocket, service: Service): void {
  const send = (msg: WireResponse | WireEvent) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  };
  const unsubscribe = eventNames.map((event) =>
    service.on(event, (data) => {
      if (ws.bufferedAmount < MAX_BUFFERED_BYTES) send({ event, data });
    }),
  );
  ws.on('close', () => unsubscribe.forEach((u) => u()));
  ws.on('error', () => ws.terminate());
  ws.on('message', (raw, isBinary) => {
    let msg: { id?: unknown; method?: unknown; params?: unknown };
    try {
      if (isBinary) throw new Error('binary');
      msg = JSON.parse(raw.toString()) as typeof msg;
      if (typeof msg !== 'object' || msg === null) throw new Error('not an object');
    } catch {
      send({ id: -1, error: { code: 'BAD_REQUEST', message: 'Each message must be a JSON object {id, method, params}.' } });
      return;
    }
    const id = typeof msg.id === 'number' && Number.isSafeInteger(msg.id) ? msg.id : -1;
    if (!isMethodName(msg.method)) {
      send({ id, error: new ApiError('UNKNOWN_METHOD', `Unknown method "${String(msg.method)}".`).toJSON() });
      return;
    }
    service.call(msg.method, msg.params as never).then(
      (result) => send({ id, result }),
      (err: unknown) => send({ id, error: toApiError(err).toJSON() }),
    );
  });
}
