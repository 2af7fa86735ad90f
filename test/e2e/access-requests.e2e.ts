/// <reference types="mocha" />
/// <reference types="@wdio/globals/types" />
// A share, a computer it does not know, and one click: the target created with
// the CLI (through the running `spindle serve`) shows on the Dashboard; a
// refused initiator (libiscsi's iscsi-inq) appears as an access request without
// a reload; "Allow" lets its next try in; the Sessions view shows a live
// session and can disconnect it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { $, $$, browser, expect } from '@wdio/globals';
import { gotoView, openApp, portal, screenshot, spindle } from './helpers';

const TARGET = 'iqn.2026-11.test:e2e-share';
const ALLOWED = 'iqn.2026-11.test:allowed';
const NEWCOMER = 'iqn.2026-11.test:newcomer';

function lunUrl(): string {
  return `iscsi://${portal()}/${TARGET}/0`;
}

/** iscsi-inq as `initiator`: its exit status and output. */
function inquiry(initiator: string): { status: number | null; output: string } {
  const r = spawnSync('iscsi-inq', ['-i', initiator, lunUrl()], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const row = (initiator: string) => $(`[data-testid="request-row"][data-initiator="${initiator}"]`);

describe('access requests: a refused computer gets in with one click', () => {
  let perf: ChildProcess | null = null;

  before(async () => {
    spindle('targets', 'add', TARGET, '--lun', '0=memory:16MiB', '--allow', ALLOWED);
    await openApp();
    // Set once; a reload would clear it, so its survival proves nothing reloaded.
    await browser.execute(() => {
      (globalThis as unknown as { __e2eNoReload: boolean }).__e2eNoReload = true;
    });
  });

  after(() => {
    if (perf && perf.exitCode === null) perf.kill('SIGKILL');
    // Leave the shared server as the other specs expect it: nothing shared.
    try {
      spindle('targets', 'remove', TARGET);
    } catch (err) {
      console.error(String(err));
    }
  });

  it('shows the new target on the Dashboard as serving', async () => {
    const target = $(`[data-testid="target-row"][data-iqn="${TARGET}"]`);
    await target.waitForDisplayed();
    await expect(target).toHaveAttribute('data-state', 'serving');
    await expect(target.$('[data-testid="target-state"]')).toHaveText('Serving');
    await expect(target.$('[data-testid="target-luns"]')).toHaveText('1 LUN, 16 MiB');
    await expect(target.$('[data-testid="target-sessions"]')).toHaveText('0 sessions');
    await expect($('[data-testid="access-requests"]')).not.toBeExisting();
    await browser.pause(1200); // a stats tick for the rate
    await screenshot('dashboard-shared');
  });

  it('lets the allowed initiator in (sanity check)', () => {
    const r = inquiry(ALLOWED);
    expect(r.status).toBe(0);
  });

  it('refuses a newcomer and shows its request without a reload', async () => {
    const r = inquiry(NEWCOMER);
    expect(r.status).not.toBe(0);

    const request = row(NEWCOMER);
    await request.waitForDisplayed({ timeout: 10_000 });
    await expect(request).toHaveAttribute('data-decision', 'pending');
    await expect(request).toHaveText(expect.stringContaining('127.0.0.1'));
    await expect(request).toHaveText(expect.stringContaining(TARGET));
    await expect(request.$('[data-testid="request-seen"]')).toHaveText(expect.stringMatching(/^tried once, last /));
    await expect($('[data-testid="requests-count"]')).toHaveText('1');
    await expect($('[data-testid="nav-requests-badge"]')).toHaveText('1');
    await expect(request.$('[data-testid="request-allow"]')).toBeDisplayed();
    await expect(request.$('[data-testid="request-deny"]')).toBeDisplayed();
    expect(await browser.execute(() => (globalThis as unknown as { __e2eNoReload?: boolean }).__e2eNoReload)).toBe(true);
    await screenshot('access-request');
  });

  it('counts a second refused try on the same request', async () => {
    await browser.pause(1100); // the service records one try per initiator and target a second
    expect(inquiry(NEWCOMER).status).not.toBe(0);
    await expect(row(NEWCOMER).$('[data-testid="request-seen"]')).toHaveText(expect.stringMatching(/^tried 2 times, last /));
    await expect($$('[data-testid="request-row"]')).toBeElementsArrayOfSize(1);
  });

  it('"Allow" lets its next try in', async () => {
    await row(NEWCOMER).$('[data-testid="request-allow"]').click();
    await expect(row(NEWCOMER)).toHaveAttribute('data-decision', 'allowed');
    await expect(row(NEWCOMER).$('[data-testid="request-outcome"]')).toHaveText(expect.stringContaining('Allowed'));
    await expect($('[data-testid="nav-requests-badge"]')).not.toBeExisting();
    await screenshot('access-request-allowed');

    const r = inquiry(NEWCOMER);
    expect(r.status).toBe(0);
    // Answered requests leave the Dashboard after a moment.
    await $('[data-testid="access-requests"]').waitForExist({ reverse: true, timeout: 15_000 });
    const target = $(`[data-testid="target-row"][data-iqn="${TARGET}"]`);
    await expect(target).toHaveText(expect.stringContaining('2 computers allowed'));
  });

  it('lists a live session in the Sessions view, and "Disconnect" closes it', async () => {
    // iscsi-perf keeps one session reading until it is stopped.
    perf = spawn('iscsi-perf', ['-i', NEWCOMER, '-x', '0', '-m', '4', lunUrl()], { stdio: 'ignore' });
    await gotoView('sessions');
    const session = $(`[data-testid="session-row"][data-initiator="${NEWCOMER}"]`);
    await session.waitForDisplayed({ timeout: 15_000 });
    await expect(session).toHaveText(expect.stringContaining(TARGET));
    await expect(session).toHaveText(expect.stringContaining('127.0.0.1:'));
    // Byte counters refresh while the view is open.
    await browser.waitUntil(async () => (await session.$('[data-testid="session-read"]').getText()) !== '0 B', {
      timeout: 10_000,
      timeoutMsg: 'the session never showed bytes read',
    });
    await expect($('[data-testid="nav-sessions-count"]')).toBeDisplayed();
    await screenshot('sessions-live');

    await gotoView('dashboard');
    const target = $(`[data-testid="target-row"][data-iqn="${TARGET}"]`);
    await expect(target.$('[data-testid="target-sessions"]')).toHaveText('1 session');
    await browser.waitUntil(async () => !/read 0 B\/s/.test(await target.$('[data-testid="target-rate"]').getText()), {
      timeout: 10_000,
      timeoutMsg: 'the Dashboard never showed a read rate for the busy target',
    });
    await screenshot('dashboard-busy');

    await gotoView('sessions');
    const id = await session.getAttribute('data-id');
    await session.$('[data-testid="session-kick"]').click();
    await $(`[data-testid="session-row"][data-id="${id}"]`).waitForExist({ reverse: true, timeout: 10_000 });
    // iscsi-perf logs straight back in, as initiators do; the view says so.
    await expect($('[data-testid="session-kicked"]')).toHaveText(expect.stringContaining(NEWCOMER));
    await browser.pause(1500);
    await screenshot('sessions-disconnected');
    perf.kill('SIGKILL');
    await $('[data-testid="sessions-empty"]').waitForDisplayed({ timeout: 10_000 });
    expect(await browser.execute(() => (globalThis as unknown as { __e2eNoReload?: boolean }).__e2eNoReload)).toBe(true);
  });
});
