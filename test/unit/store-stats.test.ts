// Stats samples: append, query, rollup of 1 s samples into 1 min, pruning.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { RepoError, STATS_RETENTION_MS, openStore, rollupSamples, type StatsSample } from '../../src-main/store/index';

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function fresh() {
  const dir = mkdtempSync(join(tmpdir(), 'spindle-stats-test-'));
  roots.push(dir);
  return openStore({ dataDir: dir });
}

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0); // a whole minute

function second(at: number, over: Partial<StatsSample> = {}): StatsSample {
  return {
    scope: 'lun',
    scopeId: 'iqn.2026-01.net.example:disk1/0',
    resolution: '1s',
    at,
    readBytes: 4096,
    writeBytes: 8192,
    readOps: 1,
    writeOps: 2,
    latencyUsP50: 100,
    latencyUsP99: 400,
    ...over,
  };
}

describe('rollupSamples', () => {
  test('60 one-second samples become one 1-minute sample', () => {
    const samples = Array.from({ length: 60 }, (_, i) =>
      second(T0 + i * 1000, { readBytes: i, writeBytes: 2 * i, readOps: 1, writeOps: 1, latencyUsP50: 100 + i, latencyUsP99: 1000 + i }),
    );
    const m = rollupSamples(samples);
    assert.deepEqual(m, {
      scope: 'lun',
      scopeId: 'iqn.2026-01.net.example:disk1/0',
      resolution: '1m',
      at: T0,
      readBytes: (59 * 60) / 2,
      writeBytes: 59 * 60,
      readOps: 60,
      writeOps: 60,
      latencyUsP50: 129, // the median of 100..159, every second weighing the same
      latencyUsP99: 1059, // the worst second
    });
  });

  test('p50 is weighted by ops; idle seconds (no latency) do not count', () => {
    const m = rollupSamples([
      second(T0, { readOps: 1000, writeOps: 0, latencyUsP50: 50, latencyUsP99: 80 }),
      second(T0 + 1000, { readOps: 1, writeOps: 0, latencyUsP50: 5000, latencyUsP99: 9000 }),
      second(T0 + 2000, { readOps: 0, writeOps: 0, readBytes: 0, writeBytes: 0, latencyUsP50: null, latencyUsP99: null }),
    ]);
    assert.equal(m.latencyUsP50, 50);
    assert.equal(m.latencyUsP99, 9000);
    const idle = rollupSamples([second(T0, { readOps: 0, writeOps: 0, latencyUsP50: null, latencyUsP99: null })]);
    assert.deepEqual([idle.latencyUsP50, idle.latencyUsP99], [null, null]);
  });

  test('refuses mixed series, samples outside the minute, and an empty list', () => {
    assert.throws(() => rollupSamples([]), RepoError);
    assert.throws(() => rollupSamples([second(T0), second(T0 + 1000, { scopeId: 'other' })]), /mixes series/);
    assert.throws(() => rollupSamples([second(T0), second(T0 + MIN)]), /outside the minute/);
  });
});

describe('stats repository', () => {
  test('append is one transaction; a bad sample stores none of the batch', () => {
    const store = fresh();
    assert.equal(store.stats.append([second(T0), second(T0 + 1000)]), 2);
    assert.throws(
      () => store.stats.append([second(T0 + 2000), second(T0 + 3000, { readBytes: -1 })]),
      (err: unknown) => err instanceof RepoError && err.code === 'STATS_INVALID' && /samples\[1\]/.test(err.message),
    );
    assert.throws(() => store.stats.append([second(T0, { scope: 'disk' as never })]), /scope/);
    assert.throws(() => store.stats.append([second(T0 + 1000, { resolution: '1m' })]), /whole minute/);
    assert.equal(store.stats.query('lun', 'iqn.2026-01.net.example:disk1/0', '1s', 0).length, 2);
    // appending the same second again replaces it
    store.stats.append([second(T0, { readBytes: 1 })]);
    const rows = store.stats.query('lun', 'iqn.2026-01.net.example:disk1/0', '1s', T0, T0 + 1);
    assert.deepEqual(rows.map((r) => r.readBytes), [1]);
    store.close();
  });

  test('rollup turns each complete minute of 1 s samples into a 1 min sample, per series, once', () => {
    const store = fresh();
    const a = 'iqn.2026-01.net.example:a';
    const b = 'iqn.2026-01.net.example:b';
    const samples: StatsSample[] = [];
    for (let i = 0; i < 150; i++) {
      samples.push(second(T0 + i * 1000, { scope: 'target', scopeId: a }));
      if (i % 2 === 0) samples.push(second(T0 + i * 1000, { scope: 'target', scopeId: b, readBytes: 1, writeBytes: 0 }));
    }
    store.stats.append(samples);
    // at T0 + 150 s, minutes T0 and T0+1m are complete; T0+2m is still running
    assert.equal(store.stats.rollup(T0 + 150_000), 4);
    assert.equal(store.stats.rollup(T0 + 150_000), 0, 'nothing to do twice');
    const ma = store.stats.query('target', a, '1m', 0);
    assert.deepEqual(ma.map((m) => [m.at, m.readBytes, m.readOps + m.writeOps]), [
      [T0, 60 * 4096, 180],
      [T0 + MIN, 60 * 4096, 180],
    ]);
    const mb = store.stats.query('target', b, '1m', 0);
    assert.deepEqual(mb.map((m) => m.readBytes), [30, 30]);
    assert.equal(store.stats.rollup(T0 + 3 * MIN), 2, 'the third minute, once it is over');
    store.close();
  });

  test('prune keeps 1 s samples for 10 minutes and 1 min samples for 24 hours', () => {
    const store = fresh();
    const now = T0 + 2 * 24 * 60 * MIN;
    const id = 'sess-1';
    store.stats.append([
      second(now - 10 * MIN - 1000, { scope: 'session', scopeId: id }), // too old
      second(now - 10 * MIN, { scope: 'session', scopeId: id }), // exactly 10 minutes: kept
      second(now - 1000, { scope: 'session', scopeId: id }),
      { ...second(now - 24 * 60 * MIN - MIN, { scope: 'session', scopeId: id }), resolution: '1m' }, // too old
      { ...second(now - 24 * 60 * MIN, { scope: 'session', scopeId: id }), resolution: '1m' },
      { ...second(now - 5 * MIN, { scope: 'session', scopeId: id }), resolution: '1m' },
    ]);
    assert.deepEqual(store.stats.prune(now), { secondSamples: 1, minuteSamples: 1 });
    assert.deepEqual(store.stats.query('session', id, '1s', 0).map((s) => now - s.at), [10 * MIN, 1000]);
    assert.deepEqual(store.stats.query('session', id, '1m', 0).map((s) => now - s.at), [24 * 60 * MIN, 5 * MIN]);
    assert.deepEqual(store.stats.prune(new Date(now)), { secondSamples: 0, minuteSamples: 0 });
    assert.equal(STATS_RETENTION_MS['1s'], 600_000);
    assert.equal(STATS_RETENTION_MS['1m'], 86_400_000);
    store.close();
  });
});
