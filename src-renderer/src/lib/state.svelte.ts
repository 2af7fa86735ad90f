// App-wide reactive state: connection, app info, settings, and a short
// history of the 1 Hz `stats` event (kept here so the Dashboard's charts
// survive navigating away and back).
import type { AppInfo, Settings, StatsTick } from '../../../src-main/service/api/schema';
import { api, ApiClientError, connection, type ConnectionState } from './api';

export const STATS_HISTORY = 60;

class AppState {
  connection = $state<ConnectionState>(connection.state);
  info = $state<AppInfo | null>(null);
  infoError = $state<ApiClientError | null>(null);
  settings = $state<Settings | null>(null);
  stats = $state<StatsTick[]>([]);

  #started = false;

  /** Subscribe once for the life of the page. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    connection.subscribe((s) => (this.connection = s));
    connection.onReconnect(() => void this.load());
    api.on('stats', (tick) => {
      const next = this.stats.length >= STATS_HISTORY ? this.stats.slice(1) : this.stats.slice();
      next.push(tick);
      this.stats = next;
    });
    void this.load();
  }

  async load(): Promise<void> {
    try {
      const [info, settings] = await Promise.all([api.call('app.info'), api.call('settings.get')]);
      this.info = info;
      this.settings = settings;
      this.infoError = null;
    } catch (err) {
      this.infoError = ApiClientError.from(err);
    }
  }
}

export const app = new AppState();
