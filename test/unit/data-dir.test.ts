import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ensureDataDir, resolveDataDir } from '../../src-main/store/index';

describe('resolveDataDir', () => {
  const home = '/home/ada';

  test('--data wins over everything', () => {
    const env = { SPINDLE_DATA: '/env/dir', XDG_DATA_HOME: '/xdg' };
    assert.equal(resolveDataDir({ flag: '/flag/dir', env, home, platform: 'linux' }), '/flag/dir');
  });

  test('$SPINDLE_DATA comes next', () => {
    const env = { SPINDLE_DATA: '/env/dir', XDG_DATA_HOME: '/xdg' };
    assert.equal(resolveDataDir({ env, home, platform: 'linux' }), '/env/dir');
    assert.equal(resolveDataDir({ env, home, platform: 'win32' }), '/env/dir');
  });

  test('empty flag and env values count as unset', () => {
    assert.equal(resolveDataDir({ flag: '', env: { SPINDLE_DATA: '' }, home, platform: 'linux' }), '/home/ada/.local/share/spindle');
  });

  test('relative --data is returned as given (resolved later against the cwd)', () => {
    assert.equal(resolveDataDir({ flag: 'data', env: {}, home, platform: 'linux' }), 'data');
  });

  test('Linux: $XDG_DATA_HOME/spindle, else ~/.local/share/spindle', () => {
    assert.equal(resolveDataDir({ env: { XDG_DATA_HOME: '/xdg' }, home, platform: 'linux' }), '/xdg/spindle');
    assert.equal(resolveDataDir({ env: {}, home, platform: 'linux' }), '/home/ada/.local/share/spindle');
  });

  test('Linux: a relative $XDG_DATA_HOME is ignored, as the XDG spec requires', () => {
    assert.equal(resolveDataDir({ env: { XDG_DATA_HOME: 'rel/xdg' }, home, platform: 'linux' }), '/home/ada/.local/share/spindle');
  });

  test('other Unixes follow the XDG rule too', () => {
    assert.equal(resolveDataDir({ env: {}, home, platform: 'freebsd' }), '/home/ada/.local/share/spindle');
  });

  test('macOS: ~/Library/Application Support/Spindle (XDG ignored)', () => {
    assert.equal(
      resolveDataDir({ env: { XDG_DATA_HOME: '/xdg' }, home: '/Users/ada', platform: 'darwin' }),
      '/Users/ada/Library/Application Support/Spindle',
    );
  });

  test('Windows: %APPDATA%\\Spindle, else <home>\\AppData\\Roaming\\Spindle', () => {
    const winHome = 'C:\\Users\\ada';
    assert.equal(
      resolveDataDir({ env: { APPDATA: 'C:\\Users\\ada\\AppData\\Roaming' }, home: winHome, platform: 'win32' }),
      'C:\\Users\\ada\\AppData\\Roaming\\Spindle',
    );
    assert.equal(resolveDataDir({ env: {}, home: winHome, platform: 'win32' }), 'C:\\Users\\ada\\AppData\\Roaming\\Spindle');
  });
});

describe('ensureDataDir', () => {
  test('creates missing parents with mode 0700, returns the absolute path, leaves no probe file', () => {
    const root = mkdtempSync(join(tmpdir(), 'spindle-datadir-test-'));
    try {
      const dir = join(root, 'a', 'b');
      assert.equal(ensureDataDir(dir), dir);
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      assert.equal(statSync(join(root, 'a')).mode & 0o777, 0o700);
      assert.deepEqual(readdirSync(dir), []);
      assert.equal(ensureDataDir(dir), dir, 'an existing dir is fine');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
