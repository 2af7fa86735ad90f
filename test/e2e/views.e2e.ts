/// <reference types="mocha" />
/// <reference types="@wdio/globals/types" />
// Every view opens from the navigation, renders its content, and leaves a
// screenshot in artifacts/screenshots/<view>.png for a person to look at.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { $, browser, expect } from '@wdio/globals';
import { gotoView, openApp, ROOT, screenshot, VIEWS, type View } from './helpers';

/** Wait until a view shows real content, not a loading placeholder. */
async function waitReady(view: View): Promise<void> {
  switch (view) {
    case 'dashboard':
      await $('[data-testid="info-version"]').waitForDisplayed();
      await $('[data-testid="stat-rss"]').waitForDisplayed({ timeout: 5000 }); // the 1 Hz stats event
      break;
    case 'disks':
      await $('[data-testid="disks-loading"]').waitForExist({ reverse: true, timeout: 15_000 });
      break;
    case 'settings':
      await $('[data-testid="settings-form"]').waitForDisplayed();
      break;
    default:
      break;
  }
  await browser.pause(300); // let transitions and the sparkline settle for the picture
}

describe('the app frame and its views', () => {
  const consoleErrors: string[] = [];

  before(async () => {
    await browser.sessionSubscribe({ events: ['log.entryAdded'] });
    browser.on('log.entryAdded', (entry: { level?: string; text?: string | null }) => {
      if (entry.level === 'error') consoleErrors.push(entry.text ?? '(no text)');
    });
    await openApp();
  });

  for (const view of VIEWS) {
    it(`opens ${view} from the left navigation and saves artifacts/screenshots/${view}.png`, async () => {
      await gotoView(view);
      await waitReady(view);
      await expect($(`[data-testid="nav-${view}"]`)).toHaveAttribute('aria-current', 'page');
      await screenshot(view);
    });
  }

  it('shows the running version and honest empty states on the Dashboard', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    await gotoView('dashboard');
    await expect($('[data-testid="info-version"]')).toHaveText(pkg.version);
    await expect($('[data-testid="view-dashboard"]')).toHaveText(expect.stringContaining('Nothing shared yet'));
    await expect($('[data-testid="view-dashboard"]')).toHaveText(expect.stringContaining('Not connected to any target'));
  });

  it('takes the Dashboard\'s "Share a drive" button to the Share view', async () => {
    await gotoView('dashboard');
    await $('[data-testid="cta-share"]').click();
    await $('[data-testid="view-share"]').waitForDisplayed();
    await expect(browser).toHaveUrl(expect.stringContaining('#/share'));
  });

  it('links the Share placeholder to the Disks view', async () => {
    await gotoView('share');
    await $('[data-testid="share-see-disks"]').click();
    await $('[data-testid="view-disks"]').waitForDisplayed();
  });

  it('logs no errors to the browser console (CSP violations included) while doing all that', () => {
    expect(consoleErrors).toEqual([]);
  });
});
