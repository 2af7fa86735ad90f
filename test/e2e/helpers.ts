/// <reference types="@wdio/globals/types" />
// Shared by the e2e specs: where the server is, how to open a view, where
// screenshots go.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { $, browser } from '@wdio/globals';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SCREENSHOTS = join(ROOT, 'artifacts/screenshots');

export const VIEWS = ['dashboard', 'share', 'connect', 'sessions', 'disks', 'settings'] as const;
export type View = (typeof VIEWS)[number];

/** The URL `spindle serve` printed, with its token. */
export function appUrl(): string {
  const url = process.env.SPINDLE_E2E_URL;
  if (!url) throw new Error('SPINDLE_E2E_URL is not set — run the suite with `npm run test:e2e`.');
  return url;
}

export function origin(): string {
  return new URL(appUrl()).origin;
}

/** Open the app with its token at 1280×800 and wait until the API is connected. */
export async function openApp(): Promise<void> {
  await browser.setViewport({ width: 1280, height: 800 });
  await browser.url(appUrl());
  await waitConnected();
}

export async function waitConnected(): Promise<void> {
  const status = await $('[data-testid="connection-status"]');
  await status.waitForExist({ timeout: 15_000 });
  await browser.waitUntil(async () => (await status.getAttribute('data-state')) === 'connected', {
    timeout: 15_000,
    timeoutMsg: 'the UI did not connect to the API',
  });
}

/** Navigate with the left navigation, as a user would, and wait for the view. */
export async function gotoView(view: View): Promise<void> {
  await $(`[data-testid="nav-${view}"]`).click();
  await $(`[data-testid="view-${view}"]`).waitForDisplayed();
}

export async function screenshot(name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await browser.saveScreenshot(path);
  return path;
}

/** The running server's data dir: CLI commands given `--data` with it go through that server. */
export function dataDir(): string {
  const dir = process.env.SPINDLE_E2E_DATA;
  if (!dir) throw new Error('SPINDLE_E2E_DATA is not set — run the suite with `npm run test:e2e`.');
  return dir;
}

/** HOST:PORT of the running server's iSCSI portal. */
export function portal(): string {
  const p = process.env.SPINDLE_E2E_PORTAL;
  if (!p) throw new Error('SPINDLE_E2E_PORTAL is not set — `spindle serve` printed no "iscsi: listening on" line.');
  return p;
}

/** Runs the `spindle` CLI from source against the running server's data dir; its stdout, or throws with both streams. */
export function spindle(...args: string[]): string {
  const r = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), ['src-main/cli/main.ts', ...args, '--data', dataDir()], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NO_COLOR: '1' },
  });
  if (r.status !== 0) throw new Error(`spindle ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
