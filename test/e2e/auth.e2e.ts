/// <reference types="mocha" />
/// <reference types="@wdio/globals/types" />
// The headless UI requires the token `spindle serve` printed, and hides it
// from the address bar once it has it.
import { $, browser, expect } from '@wdio/globals';
import { appUrl, origin, waitConnected } from './helpers';

const MESSAGE = 'This page needs the link with its access token that spindle serve printed';

interface Storage {
  clear(): void;
}

async function clearToken(): Promise<void> {
  // (runs in the page; the test's tsconfig has no DOM types)
  await browser.execute(() => (globalThis as unknown as { sessionStorage: Storage }).sessionStorage.clear());
}

describe('access to the web UI', () => {
  before(async () => {
    await browser.setViewport({ width: 1280, height: 800 });
  });

  it('shows the access-link message when opened without the token', async () => {
    await browser.url(`${origin()}/`);
    await clearToken();
    await browser.url(`${origin()}/#/disks`);
    const box = await $('[data-testid="unauthorized"]');
    await box.waitForDisplayed({ timeout: 15_000 });
    await expect(box).toHaveText(expect.stringContaining(MESSAGE));
    await expect($('[data-testid="disk-row"]')).not.toBeExisting();
  });

  it('shows the same message for a wrong token', async () => {
    await clearToken();
    await browser.url(`${origin()}/?token=not-the-token`);
    await $('[data-testid="unauthorized"]').waitForDisplayed({ timeout: 15_000 });
  });

  it('removes the token from the address bar and stays connected across a reload', async () => {
    await clearToken();
    await browser.url(appUrl());
    await waitConnected();
    const url = await browser.getUrl();
    expect(url).not.toContain('token=');
    await browser.refresh();
    await waitConnected();
    await expect($('[data-testid="unauthorized"]')).not.toBeExisting();
  });
});
