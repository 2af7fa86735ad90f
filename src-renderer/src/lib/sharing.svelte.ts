// What this computer shares, live: targets, pending access requests and
// sessions. One instance for the page, subscribed once (the sidebar's badge,
// the Dashboard and the Sessions view all read it). Every list reloads on
// reconnect; events apply at once and a reload then confirms them.
import type { AccessRequestView, LunStatsTick, SessionView, TargetView } from '../../../src-main/service/api/schema';
import { api, ApiClientError, connection } from './api';

/** How long an answered request stays on screen with its outcome. */
const DECIDED_VISIBLE_MS = 6000;

export interface DecidedRequest extends AccessRequestView {
  decision: 'allowed' | 'denied';
  /** Which answer it came from, so a later answer's timer does not hide it early. */
  answer: number;
}

/** A load whose answer is dropped when a newer load (or event) came after it. */
class Latest {
  #generation = 0;
  /** Marks everything in flight as stale. */
  bump(): void {
    this.#generation++;
  }
  async run<T>(load: () => Promise<T>, apply: (v: T) => void, fail: (e: ApiClientError) => void): Promise<void> {
    const mine = ++this.#generation;
    try {
      const v = await load();
      if (mine === this.#generation) apply(v);
    } catch (err) {
      if (mine === this.#generation) fail(ApiClientError.from(err));
    }
  }
}

export function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Read and write rates of a target, summed over its LUNs, from one stats tick. */
export function targetRate(luns: readonly LunStatsTick[] | undefined, iqn: string): { read: number; write: number } | null {
  if (!luns) return null;
  let read = 0;
  let write = 0;
  let found = false;
  for (const l of luns) {
    if (!sameName(l.target, iqn)) continue;
    found = true;
    read += l.rate.readBytes;
    write += l.rate.writeBytes;
  }
  return found ? { read, write } : null;
}

class SharingState {
  targets = $state.raw<TargetView[] | null>(null);
  targetsError = $state.raw<ApiClientError | null>(null);
  /** Pending access requests, most recently seen first. */
  requests = $state.raw<AccessRequestView[]>([]);
  requestsError = $state.raw<ApiClientError | null>(null);
  /** Requests just allowed or denied here, shown briefly with the outcome. */
  decided = $state.raw<DecidedRequest[]>([]);
  sessions = $state.raw<SessionView[] | null>(null);
  sessionsError = $state.raw<ApiClientError | null>(null);

  #targetsLoad = new Latest();
  #requestsLoad = new Latest();
  #sessionsLoad = new Latest();
  #started = false;
  #answers = 0;

  /** Subscribe once for the life of the page. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    api.on('targets.changed', (list) => {
      this.#targetsLoad.bump();
      this.targets = list;
      this.targetsError = null;
      // An allow (here, in another window or from the CLI) changes a target's ACL.
      void this.loadRequests();
    });
    api.on('requests.new', (r) => {
      const { isNew: _isNew, ...view } = r;
      const rest = this.requests.filter((q) => q.id !== view.id);
      this.requests = sortRequests([view, ...rest]);
      this.decided = this.decided.filter((d) => d.id !== view.id);
    });
    // Decided elsewhere (another window, the CLI): drop them from the pending list.
    api.on('requests.decided', (list) => {
      const ids = new Set(list.map((r) => r.id));
      this.requests = this.requests.filter((q) => !ids.has(q.id));
    });
    api.on('sessions.opened', (s) => {
      if (this.sessions) this.sessions = [...this.sessions.filter((x) => x.id !== s.id), s];
      void this.loadSessions();
      void this.loadTargets(); // session counts
    });
    api.on('sessions.closed', (s) => {
      if (this.sessions) this.sessions = this.sessions.filter((x) => x.id !== s.id);
      void this.loadSessions();
      void this.loadTargets();
    });
    connection.onReconnect(() => void this.loadAll());
    void this.loadAll();
  }

  loadAll(): Promise<unknown> {
    return Promise.all([this.loadTargets(), this.loadRequests(), this.loadSessions()]);
  }

  loadTargets(): Promise<void> {
    return this.#targetsLoad.run(
      () => api.call('targets.list'),
      (list) => {
        this.targets = list;
        this.targetsError = null;
      },
      (e) => (this.targetsError = e),
    );
  }

  loadRequests(): Promise<void> {
    return this.#requestsLoad.run(
      () => api.call('requests.list', { pending: true }),
      (list) => {
        this.requests = sortRequests(list.filter((r) => r.decision === null));
        this.requestsError = null;
      },
      (e) => (this.requestsError = e),
    );
  }

  loadSessions(): Promise<void> {
    return this.#sessionsLoad.run(
      () => api.call('sessions.list'),
      (list) => {
        this.sessions = list;
        this.sessionsError = null;
      },
      (e) => (this.sessionsError = e),
    );
  }

  /** Allow or deny one request; rejects with the ApiClientError for the caller to show. */
  async decide(id: number, decision: 'allowed' | 'denied'): Promise<void> {
    const answered = await api.call(decision === 'allowed' ? 'requests.allow' : 'requests.deny', { id });
    const ids = new Set(answered.map((r) => r.id).concat(id));
    const before = this.requests;
    this.requests = before.filter((r) => !ids.has(r.id));
    const shown = answered.length > 0 ? answered : before.filter((r) => r.id === id);
    const answer = ++this.#answers;
    const done: DecidedRequest[] = shown.map((r) => ({ ...r, decision, answer }));
    this.decided = [...this.decided.filter((d) => !ids.has(d.id)), ...done];
    setTimeout(() => {
      this.decided = this.decided.filter((d) => d.answer !== answer);
    }, DECIDED_VISIBLE_MS);
  }

  kick(id: string): Promise<{ kicked: string }> {
    return api.call('sessions.kick', { id }).then((r) => {
      if (this.sessions) this.sessions = this.sessions.filter((s) => s.id !== id);
      return r;
    });
  }

  /** The target for an IQN, when the list has it. */
  target(iqn: string): TargetView | undefined {
    return this.targets?.find((t) => sameName(t.iqn, iqn));
  }
}

function sortRequests(list: AccessRequestView[]): AccessRequestView[] {
  return [...list].sort((a, b) => b.lastSeen.localeCompare(a.lastSeen) || b.id - a.id);
}

export const sharing = new SharingState();
