/// <reference types="mocha" />
/// <reference types="@wdio/globals/types" />
// The Disks view shows exactly the whole disks the scanner's lsblk filter
// admits on this machine, and never offers the system disk.
import { $, $$, browser, expect } from '@wdio/globals';
import { parseLsblk, runLsblk } from '../../src-main/disks/lsblk';
import type { RawDisk } from '../../src-main/disks/types';
import { gotoView, openApp } from './helpers';

interface Row {
  path: string;
  verdict: string;
  text: string;
}

/** The minimum of the DOM this file touches (its tsconfig has no DOM types). */
interface El {
  getAttribute(name: string): string | null;
  querySelector(selector: string): El | null;
  innerText: string;
}

/** The rows as shown, read in one go so a live update cannot leave stale elements. */
async function rows(): Promise<Row[]> {
  await $('[data-testid="disks-loading"]').waitForExist({ reverse: true, timeout: 15_000 });
  await $('[data-testid="disks-rescan"]').waitForEnabled({ timeout: 15_000 });
  // (wdio's return-type mapping needs DOM types this tsconfig lacks, hence the cast)
  const json = (await browser.execute(() => {
    const doc = (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<El> } }).document;
    const list = Array.from(doc.querySelectorAll('[data-testid="disk-row"]')).map((row) => ({
      path: row.getAttribute('data-path') ?? '',
      verdict: row.querySelector('[data-testid="disk-verdict"]')?.getAttribute('data-verdict') ?? '',
      text: row.innerText,
    }));
    return JSON.stringify(list);
  })) as unknown as string;
  return JSON.parse(json) as Row[];
}

function holdsRoot(d: RawDisk): boolean {
  return d.mountpoints.includes('/') || d.partitions.some((p) => p.mountpoints.includes('/'));
}

describe('the Disks view', () => {
  let lsblkDisks: RawDisk[];

  before(async () => {
    lsblkDisks = parseLsblk(await runLsblk());
    await openApp();
    await gotoView('disks');
  });

  it('lists exactly the disk paths lsblk reports under the scanner\'s filter', async () => {
    // Other tests on this machine attach and detach loop devices, so a single
    // lsblk run can race the UI's scan: compare fresh pairs until they agree.
    let expected: string[] = [];
    let shown: string[] = [];
    await browser
      .waitUntil(
        async () => {
          lsblkDisks = parseLsblk(await runLsblk());
          expected = lsblkDisks.map((d) => d.path).sort();
          await $('[data-testid="disks-rescan"]').click();
          shown = (await rows()).map((r) => r.path).sort();
          return JSON.stringify(shown) === JSON.stringify(expected);
        },
        { timeout: 20_000, interval: 1000 },
      )
      .catch(() => undefined);
    expect(shown).toEqual(expected);
  });

  it('gives every disk a verdict chip, safe disks first', async () => {
    const order = { 'read-write': 0, 'read-only': 1, no: 2 } as Record<string, number>;
    const list = await rows();
    for (const r of list) expect(Object.keys(order)).toContain(r.verdict);
    const ranks = list.map((r) => order[r.verdict]!);
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
  });

  it('marks the disk holding / as "Can\'t share" and says why', async () => {
    const system = lsblkDisks.filter(holdsRoot);
    if (system.length === 0) {
      // e.g. an overlay root in a container: nothing to check on this machine.
      console.log('      (no lsblk disk holds / here)');
      return;
    }
    const list = await rows();
    for (const d of system) {
      const row = list.find((r) => r.path === d.path);
      expect(row).toBeDefined();
      expect(row!.verdict).toBe('no');
      expect(row!.text).toContain("Can't share");
      expect(row!.text.toLowerCase()).toContain('system disk');
    }
  });

  it('shows volumes with their free space, or says there are none', async () => {
    const volumes = await $$('[data-testid="volume-row"]');
    if ((await volumes.length) === 0) {
      await expect($('[data-testid="view-disks"]')).toHaveText(expect.stringContaining('No mounted volumes'));
    } else {
      await expect(volumes[0]!).toHaveText(expect.stringContaining('free'));
      await expect(volumes[0]!.$('[role="meter"]')).toBeDisplayed();
    }
  });
});
