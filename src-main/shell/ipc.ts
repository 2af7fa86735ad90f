// Electron IPC: the second transport of the one typed API (the WebSocket
// server is the first). Calls arrive on 'spindle:call' and leave as plain
// objects, because Electron strips everything but `message` from an Error that
// crosses IPC. Events go out on 'spindle:event' to the windows we attached.
import { ipcMain, type IpcMainInvokeEvent, type WebContents, type BrowserWindow } from 'electron';
import { ApiError, eventNames, isMethodName, type ApiErrorBody, type MethodName, type SpindleApi } from '../service/api/schema';

import { IPC_CALL_CHANNEL as CALL_CHANNEL, IPC_EVENT_CHANNEL as EVENT_CHANNEL } from '../service/api/names';

/** What 'spindle:call' resolves with. The preload turns `ok: false` into a rejection. */
export type IpcReply = { ok: true; result: unknown } | { ok: false; error: ApiErrorBody };

export interface IpcBridge {
  /** Let this window call the API and receive events. */
  attach(win: BrowserWindow): void;
  /** Remove the handler and every event subscription. */
  dispose(): void;
}

export interface IpcOptions {
  /** True for a URL of our own renderer (the built index.html or the dev server). */
  isAppUrl(url: string): boolean;
}

function errorBody(err: unknown): ApiErrorBody {
  if (err instanceof ApiError) return err.toJSON();
  const e = err as { code?: unknown; message?: unknown } | null;
  return {
    code: typeof e?.code === 'string' ? e.code : 'INTERNAL',
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}

export function wireIpc(service: SpindleApi, opts: IpcOptions): IpcBridge {
  const windows = new Set<WebContents>();

  /** Only the top frame of a window we attached, showing our own page, may call. */
  const isOurs = (event: IpcMainInvokeEvent): boolean => {
    const frame = event.senderFrame;
    return (
      windows.has(event.sender) &&
      !event.sender.isDestroyed() &&
      frame !== null &&
      frame === event.sender.mainFrame &&
      opts.isAppUrl(frame.url)
    );
  };

  ipcMain.handle(CALL_CHANNEL, async (event, method: unknown, params: unknown): Promise<IpcReply> => {
    if (!isOurs(event)) {
      return { ok: false, error: { code: 'FORBIDDEN', message: 'This page may not use the Spindle API.' } };
    }
    if (!isMethodName(method)) {
      return { ok: false, error: { code: 'UNKNOWN_METHOD', message: `Unknown method "${String(method)}".` } };
    }
    try {
      // The service validates params against the schema (INVALID_PARAMS).
      const result = await service.call(method as MethodName, params as never);
      return { ok: true, result };
    } catch (err) {
      return { ok: false, error: errorBody(err) };
    }
  });

  const send = (name: string, payload: unknown) => {
    for (const wc of windows) {
      if (wc.isDestroyed() || wc.isCrashed() || !opts.isAppUrl(wc.getURL())) continue;
      try {
        wc.send(EVENT_CHANNEL, name, payload);
      } catch (err) {
        console.error(`spindle: could not send "${name}" to a window: ${(err as Error).message}`);
      }
    }
  };
  // Subscribed only while a window is open, so that (for example) the disk
  // rescan timer idles while Spindle lives in the tray alone.
  let unsubscribers: Array<() => void> = [];
  const subscribe = () => {
    if (unsubscribers.length === 0) unsubscribers = eventNames.map((name) => service.on(name, (payload) => send(name, payload)));
  };
  const unsubscribe = () => {
    for (const off of unsubscribers) off();
    unsubscribers = [];
  };

  return {
    attach(win) {
      const wc = win.webContents;
      windows.add(wc);
      subscribe();
      wc.once('destroyed', () => {
        windows.delete(wc);
        if (windows.size === 0) unsubscribe();
      });
    },
    dispose() {
      ipcMain.removeHandler(CALL_CHANNEL);
      unsubscribe();
      windows.clear();
    },
  };
}
