// The sandboxed preload: exposes the typed API as `window.spindle` and
// nothing else. Only `electron`'s renderer modules are available here (no
// Node), and the bundle is CommonJS, as Electron's sandbox requires.
//
// Only types come from the schema (a value import would bundle zod, which a
// sandboxed preload cannot load); the name lists come from the dependency-free
// api/names.ts.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import type { EventName, EventPayloads, SpindleApi } from '../service/api/schema';
import { EVENT_NAMES, IPC_CALL_CHANNEL, IPC_EVENT_CHANNEL } from '../service/api/names';
import type { IpcReply } from './ipc';

const knownEvents = new Set<string>(EVENT_NAMES);
const listeners = new Map<EventName, Set<(payload: never) => void>>();

// One IPC listener for all subscriptions; it dispatches by event name.
ipcRenderer.on(IPC_EVENT_CHANNEL, (_event: IpcRendererEvent, name: unknown, payload: unknown) => {
  if (typeof name !== 'string' || !knownEvents.has(name)) return;
  const set = listeners.get(name as EventName);
  if (!set) return;
  for (const listener of [...set]) {
    try {
      listener(payload as never);
    } catch (err) {
      console.error(`spindle: a listener of "${name}" failed:`, err);
    }
  }
});

const api: SpindleApi = {
  async call(method, params) {
    const reply = (await ipcRenderer.invoke(IPC_CALL_CHANNEL, method, params)) as IpcReply;
    if (reply.ok) return reply.result as never;
    // Rejects with the plain ApiErrorBody ({ code, message, fields? }).
    throw reply.error;
  },
  on<E extends EventName>(event: E, listener: (payload: EventPayloads[E]) => void) {
    if (!knownEvents.has(event)) throw new TypeError(`Unknown event "${String(event)}".`);
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    let set = listeners.get(event);
    if (!set) listeners.set(event, (set = new Set()));
    const fn = listener as (payload: never) => void;
    set.add(fn);
    return () => {
      set.delete(fn);
    };
  },
};

contextBridge.exposeInMainWorld('spindle', api);
