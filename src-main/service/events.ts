// A typed event bus: the service emits, transports subscribe. Listener errors
// are contained so one bad subscriber never stops the others.
import type { EventName, EventPayloads } from './api/schema';

type Listener<E extends EventName> = (payload: EventPayloads[E]) => void;

export class EventBus {
  private readonly listeners = new Map<EventName, Set<Listener<EventName>>>();

  on<E extends EventName>(event: E, listener: Listener<E>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<EventName>);
    return () => void set.delete(listener as Listener<EventName>);
  }

  emit<E extends EventName>(event: E, payload: EventPayloads[E]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const l of set) {
      try {
        l(payload);
      } catch (err) {
        console.error(`spindle: a listener of "${event}" failed: ${(err as Error).message}`);
      }
    }
  }

  listenerCount(event: EventName): number {
    return this.listeners.get(event)?.size ?? 0;
  }
}
