// I/O statistics per target, LUN and session: 1 s samples kept 10 minutes,
// 1 min samples (rolled up from the 1 s ones) kept 24 hours. A sample holds
// what happened during its interval (not running totals); `at` is the start
// of the interval in milliseconds since the epoch.
import { RepoError } from '../errors';
import type { RepoContext } from './common';

export type StatsScope = 'target' | 'lun' | 'session';
export type StatsResolution = '1s' | '1m';

export interface StatsSample {
  scope: StatsScope;
  /** Target IQN, "IQN/LUN", or a session id: whatever the service chooses, consistently. */
  scopeId: string;
  resolution: StatsResolution;
  /** Start of the interval, ms since the epoch (a whole minute for '1m'). */
  at: number;
  readBytes: number;
  writeBytes: number;
  readOps: number;
  writeOps: number;
  /** null when the interval had no I/O. */
  latencyUsP50: number | null;
  latencyUsP99: number | null;
}

export const STATS_RETENTION_MS: Readonly<Record<StatsResolution, number>> = { '1s': 10 * 60_000, '1m': 24 * 60 * 60_000 };
const MINUTE_MS = 60_000;

export interface StatsRepo {
  /** Stores samples in one transaction; a sample for an existing (scope, id, resolution, at) replaces it. */
  append(samples: readonly StatsSample[]): number;
  /** Drops 1 s samples older than 10 minutes and 1 min samples older than 24 hours (relative to `now`). */
  prune(now?: number | Date): { secondSamples: number; minuteSamples: number };
  /** Samples of one series with at >= since (and < until), oldest first. */
  query(scope: StatsScope, scopeId: string, resolution: StatsResolution, since: number, until?: number): StatsSample[];
  /**
   * Rolls the 1 s samples of every complete minute before `now` that has no
   * 1 min sample yet into one, per series. Cheap to call every minute (or
   * every tick). Returns how many 1 min samples it wrote.
   */
  rollup(now?: number | Date): number;
}

/**
 * One 1-minute sample from (up to 60) 1-second samples of one series:
 * counters summed; p50 = the ops-weighted median of the per-second p50s;
 * p99 = the largest per-second p99 (an upper bound: percentiles do not add up).
 */
export function rollupSamples(samples: readonly StatsSample[], minuteStart?: number): StatsSample {
  if (samples.length === 0) throw new RepoError('STATS_INVALID', 'rollup needs at least one sample');
  const first = samples[0]!;
  const start = minuteStart ?? Math.floor(first.at / MINUTE_MS) * MINUTE_MS;
  const out: StatsSample = {
    scope: first.scope,
    scopeId: first.scopeId,
    resolution: '1m',
    at: start,
    readBytes: 0,
    writeBytes: 0,
    readOps: 0,
    writeOps: 0,
    latencyUsP50: null,
    latencyUsP99: null,
  };
  const p50s: Array<{ value: number; weight: number }> = [];
  for (const s of samples) {
    if (s.scope !== first.scope || s.scopeId !== first.scopeId) {
      throw new RepoError('STATS_INVALID', `rollup mixes series ${first.scope}:${first.scopeId} and ${s.scope}:${s.scopeId}`);
    }
    if (s.at < start || s.at >= start + MINUTE_MS) {
      throw new RepoError('STATS_INVALID', `a sample at ${s.at} is outside the minute starting at ${start}`);
    }
    out.readBytes += s.readBytes;
    out.writeBytes += s.writeBytes;
    out.readOps += s.readOps;
    out.writeOps += s.writeOps;
    if (s.latencyUsP50 !== null) p50s.push({ value: s.latencyUsP50, weight: Math.max(1, s.readOps + s.writeOps) });
    if (s.latencyUsP99 !== null) out.latencyUsP99 = Math.max(out.latencyUsP99 ?? 0, s.latencyUsP99);
  }
  if (p50s.length > 0) {
    p50s.sort((a, b) => a.value - b.value);
    const half = p50s.reduce((n, p) => n + p.weight, 0) / 2;
    let acc = 0;
    for (const p of p50s) {
      acc += p.weight;
      if (acc >= half) {
        out.latencyUsP50 = p.value;
        break;
      }
    }
    if (out.latencyUsP99 !== null && out.latencyUsP50 !== null && out.latencyUsP99 < out.latencyUsP50) out.latencyUsP99 = out.latencyUsP50;
  }
  return out;
}

interface Row {
  scope: StatsScope;
  scope_id: string;
  resolution: StatsResolution;
  at: number;
  read_bytes: number;
  write_bytes: number;
  read_ops: number;
  write_ops: number;
  latency_us_p50: number | null;
  latency_us_p99: number | null;
}

const COLUMNS = 'scope, scope_id, resolution, at, read_bytes, write_bytes, read_ops, write_ops, latency_us_p50, latency_us_p99';

const toSample = (r: Row): StatsSample => ({
  scope: r.scope,
  scopeId: r.scope_id,
  resolution: r.resolution,
  at: r.at,
  readBytes: r.read_bytes,
  writeBytes: r.write_bytes,
  readOps: r.read_ops,
  writeOps: r.write_ops,
  latencyUsP50: r.latency_us_p50,
  latencyUsP99: r.latency_us_p99,
});

function checkSample(s: StatsSample, field: string): void {
  const bad = (what: string) => new RepoError('STATS_INVALID', `${field}: ${what}`, field);
  if (typeof s !== 'object' || s === null) throw bad('expected a sample object');
  if (s.scope !== 'target' && s.scope !== 'lun' && s.scope !== 'session') throw bad(`scope must be target, lun or session, got ${JSON.stringify(s.scope)}`);
  if (typeof s.scopeId !== 'string' || s.scopeId.length === 0 || s.scopeId.length > 512) throw bad('scopeId must be a non-empty string');
  if (s.resolution !== '1s' && s.resolution !== '1m') throw bad(`resolution must be 1s or 1m, got ${JSON.stringify(s.resolution)}`);
  if (!Number.isSafeInteger(s.at) || s.at < 0) throw bad('at must be ms since the epoch');
  if (s.resolution === '1m' && s.at % MINUTE_MS !== 0) throw bad('a 1m sample must start on a whole minute');
  for (const k of ['readBytes', 'writeBytes', 'readOps', 'writeOps'] as const) {
    if (!Number.isSafeInteger(s[k]) || s[k] < 0) throw bad(`${k} must be a non-negative integer, got ${String(s[k])}`);
  }
  for (const k of ['latencyUsP50', 'latencyUsP99'] as const) {
    const v = s[k];
    if (v !== null && (!Number.isSafeInteger(v) || v < 0)) throw bad(`${k} must be null or a non-negative integer, got ${String(v)}`);
  }
  if (s.latencyUsP50 !== null && s.latencyUsP99 !== null && s.latencyUsP99 < s.latencyUsP50) throw bad('latencyUsP99 is below latencyUsP50');
}

const millis = (now: number | Date | undefined): number => (now === undefined ? Date.now() : now instanceof Date ? now.getTime() : now);

export function createStatsRepo(ctx: RepoContext): StatsRepo {
  const { db } = ctx;
  const upsert = db.prepare<[string, string, string, number, number, number, number, number, number | null, number | null]>(
    `INSERT INTO stats_samples (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (scope, scope_id, resolution, at) DO UPDATE SET
       read_bytes = excluded.read_bytes, write_bytes = excluded.write_bytes,
       read_ops = excluded.read_ops, write_ops = excluded.write_ops,
       latency_us_p50 = excluded.latency_us_p50, latency_us_p99 = excluded.latency_us_p99`,
  );
  const pruneOlder = db.prepare<[string, number]>('DELETE FROM stats_samples WHERE resolution = ? AND at < ?');
  const series = db.prepare<[string, string, string, number, number], Row>(
    `SELECT ${COLUMNS} FROM stats_samples WHERE scope = ? AND scope_id = ? AND resolution = ? AND at >= ? AND at < ? ORDER BY at`,
  );
  const dueSeconds = db.prepare<[number], Row>(
    `SELECT ${COLUMNS.split(', ').map((c) => `s.${c}`).join(', ')} FROM stats_samples s
     WHERE s.resolution = '1s' AND s.at < ?
       AND NOT EXISTS (SELECT 1 FROM stats_samples m
                       WHERE m.scope = s.scope AND m.scope_id = s.scope_id AND m.resolution = '1m'
                         AND m.at = s.at - s.at % 60000)
     ORDER BY s.scope, s.scope_id, s.at`,
  );

  const write = (s: StatsSample) =>
    upsert.run(s.scope, s.scopeId, s.resolution, s.at, s.readBytes, s.writeBytes, s.readOps, s.writeOps, s.latencyUsP50, s.latencyUsP99);

  return {
    append(samples) {
      if (!Array.isArray(samples)) throw new RepoError('STATS_INVALID', 'samples: expected a list', 'samples');
      samples.forEach((s, i) => checkSample(s, `samples[${i}]`));
      return ctx.tx(() => {
        for (const s of samples) write(s);
        return samples.length;
      });
    },
    prune(now) {
      const t = millis(now);
      return ctx.tx(() => ({
        secondSamples: pruneOlder.run('1s', t - STATS_RETENTION_MS['1s']).changes,
        minuteSamples: pruneOlder.run('1m', t - STATS_RETENTION_MS['1m']).changes,
      }));
    },
    query(scope, scopeId, resolution, since, until = Number.MAX_SAFE_INTEGER) {
      return series.all(scope, scopeId, resolution, since, until).map(toSample);
    },
    rollup(now) {
      const currentMinute = Math.floor(millis(now) / MINUTE_MS) * MINUTE_MS;
      return ctx.tx(() => {
        const rows = dueSeconds.all(currentMinute).map(toSample);
        let written = 0;
        let batch: StatsSample[] = [];
        const flush = () => {
          if (batch.length === 0) return;
          write(rollupSamples(batch));
          written++;
          batch = [];
        };
        for (const s of rows) {
          const prev = batch[0];
          if (prev !== undefined && (prev.scope !== s.scope || prev.scopeId !== s.scopeId || Math.floor(prev.at / MINUTE_MS) !== Math.floor(s.at / MINUTE_MS))) flush();
          batch.push(s);
        }
        flush();
        return written;
      });
    },
  };
}
