/// <reference types="mocha" />
/// <reference types="@wdio/globals/types" />
// Settings is a real form over settings.get / settings.set.
import { $, browser, expect } from '@wdio/globals';
import { gotoView, openApp, screenshot } from './helpers';

const field = (name: string) => $(`[data-testid="setting-${name}"]`);

async function save(): Promise<void> {
  await $('[data-testid="settings-save"]').click();
}

async function reloadSettings(): Promise<void> {
  await browser.refresh();
  await $('[data-testid="settings-form"]').waitForDisplayed({ timeout: 15_000 });
}

describe('the Settings view', () => {
  before(async () => {
    await openApp();
    await gotoView('settings');
    await $('[data-testid="settings-form"]').waitForDisplayed();
  });

  after(async () => {
    // Leave the shared server as we found it for any later spec.
    await gotoView('settings');
    await $('[data-testid="setting-theme-system"]').click();
    await field('diskPollSeconds').setValue('5');
    await field('defaultPortal').setValue('0.0.0.0:3260');
    const saveBtn = await $('[data-testid="settings-save"]');
    if (await saveBtn.isEnabled()) {
      await saveBtn.click();
      await $('[data-testid="settings-saved"]').waitForDisplayed();
    }
  });

  it('saves a change that survives a reload', async () => {
    await field('diskPollSeconds').setValue('17');
    await field('defaultPortal').setValue('127.0.0.1:3261');
    await save();
    await $('[data-testid="settings-saved"]').waitForDisplayed();
    await reloadSettings();
    await expect(field('diskPollSeconds')).toHaveValue('17');
    await expect(field('defaultPortal')).toHaveValue('127.0.0.1:3261');
  });

  it('applies the theme it saves to the whole page', async () => {
    await $('[data-testid="setting-theme-dark"]').click();
    await save();
    await $('[data-testid="settings-saved"]').waitForDisplayed();
    await expect($('html')).toHaveAttribute('data-theme', 'dark');
    await screenshot('settings-dark');
    await reloadSettings();
    await expect($('html')).toHaveAttribute('data-theme', 'dark');
  });

  it('shows the server\'s field error for an invalid portal and keeps the saved value', async () => {
    await field('defaultPortal').setValue('nope');
    await save();
    const error = await $('[data-testid="field-error-defaultPortal"]');
    await error.waitForDisplayed();
    await expect(error).toHaveText(expect.stringContaining('HOST:PORT'));
    await expect(field('defaultPortal')).toHaveAttribute('aria-invalid', 'true');
    await expect($('[data-testid="settings-saved"]')).not.toBeExisting();
    await screenshot('settings-invalid');
    await reloadSettings();
    await expect(field('defaultPortal')).toHaveValue('127.0.0.1:3261');
  });
});
