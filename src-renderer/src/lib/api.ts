// The renderer's one client of Spindle's typed API.
//
// Two transports, one surface: inside Electron the preload exposes a
// `SpindleApi` as `window.spindle` (contextBridge); in a browser opened on
// `spindle serve` we speak the WebSocket wire format to `/api?token=…`.
// Nothing outside this file knows which one is in use.
import type {
  ApiErrorBody,
  EventName,
  EventPayloads,
  MethodName,
  MethodParams,
  MethodResult,
  SpindleApi,
  WireEvent,
  WireRequest,
  WireResponse,
} from '../../../src-main/service/api/schema';

declare global {
  interface Window {
    /** Set by the Electron preload via contextBridge. */
    spindle?: SpindleApi;
  }
}

// ---- errors ----------------------------------------------------------------

/** Every failed call rejects with one of these. */
export class ApiClientError extends Error implements ApiErrorBody {
  readonly code: string;
  readonly fields?: Record<string, string>;

  constructor(code: string, message: string, fields?: Record<string, string>) {
    super(message);
    this.name = 'ApiClientError';
    this.code = code;
    if (fields && Object.keys(fields).length > 0) this.fields = fields;
  }

  /** Normalise whatever a transport rejected with. */
  static from(err: unknown): ApiClientError {
    if (err instanceof ApiClientError) return err;
    if (err && typeof err === 'object') {
      const o = err as Partial<ApiErrorBody> & { message?: unknown };
      if (typeof o.code === 'string' && typeof o.message === 'string') {
        const fields = o.fields && typeof o.fields === 'object' ? (o.fields as Record<string, string>) : undefined;
        return new ApiClientError(o.code, o.message, fields);
      }
      if (typeof o.message === 'string') return new ApiClientError('INTERNAL', o.message);
    }
    return new ApiClientError('INTERNAL', String(err));
  }
}

// ---- connection state ---------------------------------------------------------

/**
 * - connecting: first attempt, nothing answered yet
 * - connected: calls go through
 * - reconnecting: was connected (or the server is unreachable); retrying with backoff
 * - unauthorized: the server refused our access token (or we have none)
 */
export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'unauthorized';

export interface Connection {
  readonly state: ConnectionState;
  /** Called on every state change. Returns an unsubscribe. */
  subscribe(listener: (state: ConnectionState) => void): () => void;
  /** Called each time the connection comes back after being lost (not on the first connect). */
  onReconnect(listener: () => void): () => void;
  /** Try to connect now (e.g. a "Try again" button). */
  retry(): void;
}

export const UNAUTHORIZED_MESSAGE =
  'This page needs the link with its access token that `spindle serve` printed.';

class ConnectionHub implements Connection {
  state: ConnectionState;
  #listeners = new Set<(s: ConnectionState) => void>();
  #reconnectListeners = new Set<() => void>();
  #everConnected = false;
  retryHook: () => void = () => {};

  constructor(initial: ConnectionState) {
    this.state = initial;
    if (initial === 'connected') this.#everConnected = true;
  }

  set(next: ConnectionState): void {
    if (next === this.state) return;
    this.state = next;
    if (next === 'connected') {
      const again = this.#everConnected;
      this.#everConnected = true;
      if (again) for (const l of [...this.#reconnectListeners]) safely(l);
    }
    for (const l of [...this.#listeners]) safely(() => l(next));
  }

  subscribe(listener: (state: ConnectionState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  onReconnect(listener: () => void): () => void {
    this.#reconnectListeners.add(listener);
    return () => this.#reconnectListeners.delete(listener);
  }

  retry(): void {
    this.retryHook();
  }
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    console.error('[spindle] listener failed', err);
  }
}

// ---- Electron (preload bridge) ------------------------------------------------

function bridgeClient(bridge: SpindleApi): SpindleApi {
  return {
    async call<M extends MethodName>(method: M, params?: MethodParams<M>): Promise<MethodResult<M>> {
      try {
        // Plain data only: a Svelte $state proxy cannot cross contextBridge.
        const plain = params === undefined ? undefined : (JSON.parse(JSON.stringify(params)) as MethodParams<M>);
        return await bridge.call(method, plain);
      } catch (err) {
        throw ApiClientError.from(err);
      }
    },
    on<E extends EventName>(event: E, listener: (payload: EventPayloads[E]) => void): () => void {
      return bridge.on(event, listener);
    },
  };
}

// ---- Browser (WebSocket to `spindle serve`) ------------------------------------

const TOKEN_KEY = 'spindle.token';

/** Take the token from `?token=`, remember it for this tab, and remove it from the address bar. */
function takeToken(): string | null {
  let token: string | null = null;
  try {
    const url = new URL(location.href);
    const fromUrl = url.searchParams.get('token');
    if (fromUrl) {
      token = fromUrl;
      try {
        sessionStorage.setItem(TOKEN_KEY, fromUrl);
      } catch {
        /* storage disabled: keep it in memory only */
      }
      url.searchParams.delete('token');
      history.replaceState(history.state, '', url.pathname + url.search + url.hash);
    } else {
      token = sessionStorage.getItem(TOKEN_KEY);
    }
  } catch {
    /* no storage / odd URL: no token */
  }
  return token;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: ApiClientError) => void;
}

interface Queued extends Pending {
  request: WireRequest;
  timer: ReturnType<typeof setTimeout>;
}

/** How long a call waits for a connection before giving up. */
const QUEUE_TIMEOUT_MS = 20_000;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10_000];

class WebSocketClient implements SpindleApi {
  #ws: WebSocket | null = null;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #queue: Queued[] = [];
  #listeners = new Map<EventName, Set<(payload: never) => void>>();
  #attempt = 0;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly token: string | null,
    private readonly hub: ConnectionHub,
  ) {
    hub.retryHook = () => this.#connectNow();
    if (!token) {
      hub.set('unauthorized');
      return;
    }
    this.#connect();
  }

  call<M extends MethodName>(method: M, params?: MethodParams<M>): Promise<MethodResult<M>> {
    return new Promise<MethodResult<M>>((resolve, reject) => {
      if (this.hub.state === 'unauthorized') {
        reject(new ApiClientError('UNAUTHORIZED', UNAUTHORIZED_MESSAGE));
        return;
      }
      const request: WireRequest = { id: this.#nextId++, method };
      if (params !== undefined) request.params = params;
      const pending: Pending = { resolve: resolve as (v: unknown) => void, reject };
      if (this.#ws && this.#ws.readyState === WebSocket.OPEN) {
        this.#send(request, pending);
      } else {
        const queued: Queued = {
          ...pending,
          request,
          timer: setTimeout(() => {
            this.#queue = this.#queue.filter((q) => q !== queued);
            reject(new ApiClientError('DISCONNECTED', 'Spindle is not reachable right now. Try again in a moment.'));
          }, QUEUE_TIMEOUT_MS),
        };
        this.#queue.push(queued);
      }
    });
  }

  on<E extends EventName>(event: E, listener: (payload: EventPayloads[E]) => void): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => {
      set.delete(listener as (payload: never) => void);
    };
  }

  #url(): string {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}/api?token=${encodeURIComponent(this.token ?? '')}`;
  }

  #send(request: WireRequest, pending: Pending): void {
    this.#pending.set(request.id, pending);
    try {
      this.#ws!.send(JSON.stringify(request));
    } catch (err) {
      this.#pending.delete(request.id);
      pending.reject(ApiClientError.from(err));
    }
  }

  #connectNow(): void {
    if (!this.token) {
      this.hub.set('unauthorized');
      return;
    }
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#attempt = 0;
    if (!this.#ws) this.#connect();
  }

  #connect(): void {
    if (this.hub.state !== 'connected' && this.hub.state !== 'connecting') this.hub.set('reconnecting');
    let opened = false;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.#url());
    } catch {
      this.#scheduleReconnect();
      return;
    }
    this.#ws = ws;

    ws.onopen = () => {
      opened = true;
      this.#attempt = 0;
      this.hub.set('connected');
      const queue = this.#queue;
      this.#queue = [];
      for (const q of queue) {
        clearTimeout(q.timer);
        this.#send(q.request, q);
      }
    };

    ws.onmessage = (ev: MessageEvent) => {
      if (typeof ev.data !== 'string') return;
      let msg: WireResponse | WireEvent;
      try {
        msg = JSON.parse(ev.data) as WireResponse | WireEvent;
      } catch {
        console.warn('[spindle] ignoring a message that is not JSON');
        return;
      }
      if ('id' in msg) {
        const p = this.#pending.get(msg.id);
        if (!p) return;
        this.#pending.delete(msg.id);
        if ('error' in msg) p.reject(ApiClientError.from(msg.error));
        else p.resolve(msg.result);
      } else if ('event' in msg) {
        const set = this.#listeners.get(msg.event);
        if (set) for (const l of [...set]) safely(() => (l as (p: unknown) => void)(msg.data));
      }
    };

    ws.onerror = () => {
      /* a close event always follows; handled there */
    };

    ws.onclose = () => {
      if (this.#ws === ws) this.#ws = null;
      const pending = [...this.#pending.values()];
      this.#pending.clear();
      for (const p of pending) {
        p.reject(new ApiClientError('DISCONNECTED', 'The connection to Spindle dropped before it answered. Try again.'));
      }
      if (opened) {
        this.hub.set('reconnecting');
        this.#scheduleReconnect();
      } else {
        // Closed before it opened: either the server is down, or it refused
        // the upgrade (401: wrong or missing token). A plain HTTP request tells
        // the two apart: if the server answers at all, it refused us.
        void this.#serverReachable().then((reachable) => {
          if (reachable) this.#becomeUnauthorized();
          else {
            this.hub.set('reconnecting');
            this.#scheduleReconnect();
          }
        });
      }
    };
  }

  async #serverReachable(): Promise<boolean> {
    try {
      await fetch(`${location.origin}/`, { cache: 'no-store', method: 'GET' });
      return true;
    } catch {
      return false;
    }
  }

  #becomeUnauthorized(): void {
    this.hub.set('unauthorized');
    const queue = this.#queue;
    this.#queue = [];
    for (const q of queue) {
      clearTimeout(q.timer);
      q.reject(new ApiClientError('UNAUTHORIZED', UNAUTHORIZED_MESSAGE));
    }
  }

  #scheduleReconnect(): void {
    if (this.#retryTimer) return;
    const base = BACKOFF_MS[Math.min(this.#attempt, BACKOFF_MS.length - 1)]!;
    this.#attempt++;
    const delay = base * (0.8 + Math.random() * 0.4);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#connect();
    }, delay);
  }
}

// ---- the one instance -----------------------------------------------------------

function create(): { api: SpindleApi; connection: Connection } {
  if (typeof window !== 'undefined' && window.spindle) {
    const hub = new ConnectionHub('connected');
    return { api: bridgeClient(window.spindle), connection: hub };
  }
  const hub = new ConnectionHub('connecting');
  return { api: new WebSocketClient(takeToken(), hub), connection: hub };
}

const client = create();

export const api: SpindleApi = client.api;
export const connection: Connection = client.connection;
