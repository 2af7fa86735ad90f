/// <reference types="mocha" />
/// <reference types="@wdio/globals/types" />
// Finding targets from the Connect view: a typo and a dead address get
// messages that say what to fix; the running Spindle's own portal, whose
// target allows another computer only, answers "nothing for you" and names
// this computer's initiator name — which shows up on the Dashboard as an
// access request; one click on Allow there, and the same search lists the
// target, which can then be saved — and shows in the saved list until removed.
import { $, browser, expect } from '@wdio/globals';
import { gotoView, openApp, portal, screenshot, spindle } from './helpers';

const TARGET = 'iqn.2026-11.test:e2e-connect';
const SOMEONE_ELSE = 'iqn.2026-11.test:someone-else';

/** Types `address` and searches; resolves once this search's outcome (an answer, an error or a field message) is on screen. */
async function find(address: string): Promise<void> {
  const input = $('[data-testid="discover-address"]');
  await input.clearValue();
  await input.setValue(address);
  const section = $('[data-testid="discover"]');
  const before = Number(await section.getAttribute('data-answered'));
  await $('[data-testid="discover-submit"]').click();
  await browser.waitUntil(async () => Number(await section.getAttribute('data-answered')) > before, {
    timeout: 20_000,
    timeoutMsg: `the search for ${address} did not finish`,
  });
}

describe('the Connect view finds the targets a portal offers this computer', () => {
  let myName = '';

  before(async () => {
    spindle('targets', 'add', TARGET, '--lun', '0=memory:8MiB', '--allow', SOMEONE_ELSE);
    await openApp();
    await gotoView('connect');
  });

  after(() => {
    try {
      spindle('targets', 'remove', TARGET);
    } catch (err) {
      console.error(String(err));
    }
  });

  it('says what to fix when the address is empty or malformed, before asking anyone', async () => {
    await find('');
    await expect($('[data-testid="discover-address-error"]')).toHaveText(expect.stringContaining('Type the address'));
    await find('nas:99999');
    await expect($('[data-testid="discover-address-error"]')).toHaveText(expect.stringContaining('1 to 65535'));
    await expect($('[data-testid="discover-result"]')).not.toBeExisting();
  });

  it('says nothing listens when the address has no iSCSI server', async () => {
    await find('127.0.0.1:1');
    const err = $('[data-testid="discover-error"]');
    await err.waitForDisplayed();
    await expect(err).toHaveAttribute('data-code', 'CONNECT_FAILED');
    await expect(err).toHaveText(expect.stringContaining('nothing listens there'));
  });

  it('tells this computer its name when the portal offers it nothing', async () => {
    await find(portal());
    const none = $('[data-testid="discover-none"]');
    await none.waitForDisplayed();
    myName = await $('[data-testid="discover-initiator"]').getText();
    expect(myName).toMatch(/^iqn\.2026-11\.app\.spindle:/);
    await expect(none).toHaveText(expect.stringContaining('offers no targets to this computer'));
    await screenshot('connect-none');
  });

  it('shows that name as an access request on the Dashboard, and lists the target once it is allowed', async () => {
    await gotoView('dashboard');
    const request = $(`[data-testid="request-row"][data-initiator="${myName}"]`);
    await request.waitForDisplayed({ timeout: 10_000 });
    await request.$('[data-testid="request-allow"]').click();
    await expect(request).toHaveAttribute('data-decision', 'allowed');

    await gotoView('connect');
    await find(portal());
    const row = $(`[data-testid="discovered-target"][data-iqn="${TARGET}"]`);
    await row.waitForDisplayed();
    await expect($('[data-testid="discover-result"]')).toHaveAttribute('data-count', '1');
    await expect(row).toHaveAttribute('data-saved', 'no');
    await expect(row).toHaveText(expect.stringContaining(portal()));
  });

  it('saves a found target, and a new search still shows it as saved', async () => {
    const row = $(`[data-testid="discovered-target"][data-iqn="${TARGET}"]`);
    await row.$('[data-testid="discovered-save"]').click();
    await expect(row).toHaveAttribute('data-saved', 'yes');
    await find(portal());
    await expect($(`[data-testid="discovered-target"][data-iqn="${TARGET}"]`)).toHaveAttribute('data-saved', 'yes');
    await screenshot('connect-found');
  });

  it('lists the saved target under "Saved targets" without a reload, and Remove forgets it', async () => {
    const saved = $(`[data-testid="saved-remote"][data-iqn="${TARGET}"]`);
    await saved.waitForDisplayed();
    await expect(saved).toHaveText(expect.stringContaining(portal()));
    await screenshot('connect-saved');
    await saved.$('[data-testid="saved-remove"]').click();
    await saved.waitForExist({ reverse: true });
    await expect($('[data-testid="saved-none"]')).toBeDisplayed();
    // A new search no longer calls it saved.
    await find(portal());
    await expect($(`[data-testid="discovered-target"][data-iqn="${TARGET}"]`)).toHaveAttribute('data-saved', 'no');
  });
});
