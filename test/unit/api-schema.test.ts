import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, defaultSettings, eventNames, isMethodName, methodNames, parseParams, settingsSchema } from '../../src-main/service/api/schema';
import { mergeSettings } from '../../src-main/service/settings';

test('every method declared in the schema has a params schema and a name check', () => {
  for (const m of ['app.info', 'disks.list', 'settings.get', 'settings.set', 'targets.create', 'requests.allow', 'config.importLio']) {
    assert.ok(methodNames.includes(m as never), `${m} is declared`);
  }
  assert.equal(new Set(methodNames).size, methodNames.length, 'no method is listed twice');
  for (const m of methodNames) assert.ok(isMethodName(m));
  assert.equal(isMethodName('toString'), false, 'prototype keys are not methods');
  assert.equal(isMethodName('disks.format'), false);
  assert.deepEqual([...eventNames].sort(), ['disks.changed', 'remotes.changed', 'requests.decided', 'requests.new', 'service.error', 'sessions.closed', 'sessions.opened', 'stats', 'targets.changed']);
});

test('methods without params accept nothing or {} and refuse extra fields', () => {
  assert.equal(parseParams('app.info', undefined), undefined);
  assert.deepEqual(parseParams('disks.list', {}), {});
  assert.throws(() => parseParams('disks.list', { all: true }), (e: ApiError) => e.code === 'INVALID_PARAMS');
});

test('settings.set names each bad field with a message a form can show', () => {
  try {
    parseParams('settings.set', { defaultPortal: 'nope', diskPollSeconds: 0, theme: 'neon' });
    assert.fail('expected INVALID_PARAMS');
  } catch (e) {
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, 'INVALID_PARAMS');
    assert.deepEqual(Object.keys(e.fields ?? {}).sort(), ['defaultPortal', 'diskPollSeconds', 'theme']);
    assert.match(e.fields!.defaultPortal, /HOST:PORT/);
    assert.match(e.message, /settings\.set/);
  }
});

test('settings.set refuses unknown keys instead of storing them', () => {
  assert.throws(() => parseParams('settings.set', { colour: 'red' }), (e: ApiError) => e.code === 'INVALID_PARAMS');
});

test('the default settings satisfy their own schema', () => {
  assert.equal(settingsSchema.safeParse(defaultSettings).success, true);
});

test('stored settings that no longer validate fall back to defaults; unknown keys are dropped', () => {
  const merged = mergeSettings({ theme: 'dark', diskPollSeconds: -3, legacy: 1 });
  assert.equal(merged.theme, 'dark');
  assert.equal(merged.diskPollSeconds, defaultSettings.diskPollSeconds);
  assert.equal('legacy' in merged, false);
});

test('ApiError serialises to the wire body with code, message and fields', () => {
  assert.deepEqual(new ApiError('X', 'y', { a: 'b' }).toJSON(), { code: 'X', message: 'y', fields: { a: 'b' } });
  assert.deepEqual(new ApiError('X', 'y').toJSON(), { code: 'X', message: 'y' });
});
