// CHAP secrets: never in spindle.db or in list output, kept in a 0600
// secrets.json (optionally encrypted), refused when others can read it.
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  RepoError,
  StoreError,
  openFileSecretStore,
  openStore,
  type SecretCipher,
  type StoreErrorCode,
} from '../../src-main/store/index';

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'spindle-secrets-test-'));
  roots.push(dir);
  return dir;
}

const IQN = 'iqn.2026-01.net.example:vault';
const SECRET = 'Sup3r-Secret-1';
const MUTUAL = 'Mutual-Secret-2';
const REMOTE_SECRET = 'Remote-Secret-3';

function expectStoreError(fn: () => unknown, code: StoreErrorCode, message?: RegExp): StoreError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof StoreError, `expected StoreError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (message) assert.match(caught.message, message);
  return caught;
}

/** AES-256-GCM with a fixed key: stands in for Electron's safeStorage. */
function testCipher(key = randomBytes(32)): SecretCipher & { calls: number } {
  const c = {
    calls: 0,
    encrypt(plain: Buffer): Buffer {
      c.calls++;
      const iv = randomBytes(12);
      const enc = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([enc.update(plain), enc.final()]);
      return Buffer.concat([iv, enc.getAuthTag(), body]);
    },
    decrypt(data: Buffer): Buffer {
      const dec = createDecipheriv('aes-256-gcm', key, data.subarray(0, 12));
      dec.setAuthTag(data.subarray(12, 28));
      return Buffer.concat([dec.update(data.subarray(28)), dec.final()]);
    },
  };
  return c;
}

function storeWithSecrets(dir: string, cipher?: SecretCipher) {
  const store = openStore({ dataDir: dir, ...(cipher ? { secretCipher: cipher } : {}) });
  const t = store.targets.create({
    iqn: IQN,
    luns: [{ lun: 0, backstore: { kind: 'memory', sizeBytes: 4096 } }],
    acls: [{ initiatorIqn: 'iqn.x:pc', chap: { user: 'pc', secret: SECRET }, mutualChap: { user: 'vault', secret: MUTUAL } }],
  });
  const remote = store.remotes.save({ host: 'nas', iqn: 'iqn.2000-01.com.synology:nas.t1', chap: { user: 'me', secret: REMOTE_SECRET } });
  return { store, target: t, remote };
}

/** Every file in the data dir, as latin1 text, to search for a secret. */
function everyFile(dir: string): string {
  return readdirSync(dir)
    .filter((n) => statSync(join(dir, n)).isFile())
    .map((n) => readFileSync(join(dir, n)).toString('latin1'))
    .join('\n');
}

describe('secrets.json', () => {
  test('is created 0600 beside the database, atomically (no temp files left)', { skip: process.platform === 'win32' }, () => {
    const dir = tempDir();
    const { store } = storeWithSecrets(dir);
    assert.equal(store.secrets.path, join(dir, 'secrets.json'));
    assert.equal(statSync(store.secrets.path).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.tmp')), []);
    store.close();
  });

  test('a group- or world-readable secrets.json is refused with a clear message, and left as it is', { skip: process.platform === 'win32' }, () => {
    const dir = tempDir();
    storeWithSecrets(dir).store.close();
    const file = join(dir, 'secrets.json');
    for (const mode of [0o644, 0o640, 0o604]) {
      chmodSync(file, mode);
      const before = readFileSync(file);
      const err = expectStoreError(() => openStore({ dataDir: dir }), 'SECRETS_INSECURE');
      assert.match(err.message, new RegExp(`mode 0${mode.toString(8)}`));
      assert.match(err.message, /chmod 600/);
      assert.match(err.message, /not changed/);
      assert.deepEqual(readFileSync(file), before);
      assert.equal(statSync(file).mode & 0o777, mode);
      assert.equal(existsSync(join(dir, 'spindle.lock')), false, 'the lock is released');
    }
    chmodSync(file, 0o600);
    const store = openStore({ dataDir: dir });
    assert.equal(store.acls.credentials(store.targets.get(IQN)!.acls[0]!.id).chap!.secret, SECRET);
    store.close();
  });

  test('garbage, a wrong layout or a symlink is refused as damaged', () => {
    const dir = tempDir();
    const file = join(dir, 'secrets.json');
    const cases: Array<[string, RegExp]> = [
      ['{not json', /not valid JSON/],
      ['[]', /not a JSON object/],
      ['{"format":"other","version":1,"entries":{}}', /"format"/],
      ['{"format":"spindle-secrets","version":9,"entries":{}}', /version 9/],
      ['{"format":"spindle-secrets","version":1,"entries":{"password":{"enc":"none","value":"x"}}}', /not a secret reference/],
      [`{"format":"spindle-secrets","version":1,"entries":{"sec_${'0'.repeat(32)}":{"enc":"rot13","value":"x"}}}`, /malformed/],
    ];
    for (const [text, why] of cases) {
      writeFileSync(file, text, { mode: 0o600 });
      expectStoreError(() => openStore({ dataDir: dir }), 'SECRETS_CORRUPT', why);
    }
    rmSync(file);
    if (process.platform !== 'win32') {
      const elsewhere = join(tempDir(), 'x.json');
      writeFileSync(elsewhere, '{"format":"spindle-secrets","version":1,"entries":{}}', { mode: 0o600 });
      symlinkSync(elsewhere, file);
      expectStoreError(() => openStore({ dataDir: dir }), 'SECRETS_CORRUPT', /symbolic link/);
    }
  });

  test('put / get / delete on the file store, durable across reopen', () => {
    const dir = tempDir();
    const s = openFileSecretStore(dir);
    const a = s.put('alpha-secret-1');
    const b = s.put('beta-secret-22');
    assert.match(a, /^sec_[0-9a-f]{32}$/);
    assert.notEqual(a, b);
    const again = openFileSecretStore(dir);
    assert.equal(again.get(a), 'alpha-secret-1');
    again.delete(a);
    again.delete(a); // idempotent
    assert.deepEqual(openFileSecretStore(dir).refs(), [b]);
    assert.throws(() => again.get(a), (err: unknown) => err instanceof RepoError && err.code === 'SECRET_MISSING');
  });
});

describe('secrets never leave through the tables or list methods', () => {
  test('targets.list(), get(), acls.list(), remotes.list() and events contain no secret', () => {
    const dir = tempDir();
    const { store, target, remote } = storeWithSecrets(dir);
    const outputs = [
      store.targets.list(),
      store.targets.get(IQN),
      store.acls.list(),
      store.acls.list(IQN),
      store.acls.get(target.acls[0]!.id),
      store.remotes.list(),
      store.remotes.get(remote.id),
      store.backstores.list(),
      store.events.recent(100),
    ];
    for (const out of outputs) {
      const json = JSON.stringify(out);
      for (const secret of [SECRET, MUTUAL, REMOTE_SECRET]) assert.ok(!json.includes(secret), `a secret leaked into ${json.slice(0, 80)}…`);
      assert.ok(!json.includes('sec_'), 'not even the secret references are returned');
    }
    // only the explicit calls return them
    assert.deepEqual(store.acls.credentials(target.acls[0]!.id), {
      initiatorIqn: 'iqn.x:pc',
      chap: { user: 'pc', secret: SECRET },
      mutualChap: { user: 'vault', secret: MUTUAL },
    });
    assert.equal(store.remotes.credentials(remote.id).chap!.secret, REMOTE_SECRET);
    store.close();
  });

  test('spindle.db and its WAL never hold a secret in the clear', () => {
    const dir = tempDir();
    const { store } = storeWithSecrets(dir);
    const dbBytes = ['spindle.db', 'spindle.db-wal']
      .filter((n) => existsSync(join(dir, n)))
      .map((n) => readFileSync(join(dir, n)).toString('latin1'))
      .join('');
    for (const secret of [SECRET, MUTUAL, REMOTE_SECRET]) assert.ok(!dbBytes.includes(secret));
    store.close();
  });
});

describe('encryption hook (safeStorage)', () => {
  test('with a cipher the file holds only ciphertext; without it the secret is locked, with a clear message', () => {
    const dir = tempDir();
    const cipher = testCipher();
    const { store, target } = storeWithSecrets(dir, cipher);
    assert.equal(store.secrets.encrypted, true);
    const doc = JSON.parse(readFileSync(store.secrets.path, 'utf8')) as { entries: Record<string, { enc: string; value: string }> };
    assert.ok(Object.values(doc.entries).every((e) => e.enc === 'os' && /^[A-Za-z0-9+/]+=*$/.test(e.value)));
    assert.ok(!everyFile(dir).includes(SECRET));
    assert.equal(store.acls.credentials(target.acls[0]!.id).chap!.secret, SECRET);
    store.close();

    const headless = openStore({ dataDir: dir });
    assert.deepEqual(headless.targets.get(IQN)!.acls[0]!.chapUser, 'pc', 'everything but the secrets still works');
    expectStoreError(() => headless.acls.credentials(target.acls[0]!.id), 'SECRETS_LOCKED', /desktop app/);
    headless.close();

    const wrongKey = openStore({ dataDir: dir, secretCipher: testCipher() });
    expectStoreError(() => wrongKey.acls.credentials(target.acls[0]!.id), 'SECRETS_LOCKED', /could not decrypt/);
    wrongKey.close();
  });

  test('secrets written plain (CLI, headless) are encrypted when the desktop app opens the store', () => {
    const dir = tempDir();
    const { store, target } = storeWithSecrets(dir);
    store.close();
    assert.ok(readFileSync(join(dir, 'secrets.json'), 'utf8').includes(SECRET));
    const cipher = testCipher();
    const desktop = openStore({ dataDir: dir, secretCipher: cipher });
    assert.equal(cipher.calls, 3);
    assert.ok(!everyFile(dir).includes(SECRET));
    assert.equal(desktop.acls.credentials(target.acls[0]!.id).mutualChap!.secret, MUTUAL);
    desktop.close();
  });
});

describe('keeping secrets.json and spindle.db consistent', () => {
  test('secrets no row refers to are dropped on open; a row whose secret is gone says so', () => {
    const dir = tempDir();
    const { store, target } = storeWithSecrets(dir);
    store.close();
    const file = join(dir, 'secrets.json');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { entries: Record<string, unknown> };
    const orphan = `sec_${'f'.repeat(32)}`;
    doc.entries[orphan] = { enc: 'none', value: 'left-behind-by-a-crash' };
    writeFileSync(file, JSON.stringify(doc), { mode: 0o600 });
    let reopened = openStore({ dataDir: dir });
    assert.ok(!readFileSync(file, 'utf8').includes(orphan));
    assert.equal(Object.keys((JSON.parse(readFileSync(file, 'utf8')) as { entries: object }).entries).length, 3);
    reopened.close();

    writeFileSync(file, '{"format":"spindle-secrets","version":1,"entries":{}}', { mode: 0o600 });
    reopened = openStore({ dataDir: dir });
    assert.throws(
      () => reopened.acls.credentials(target.acls[0]!.id),
      (err: unknown) => err instanceof RepoError && err.code === 'SECRET_MISSING' && /enter the secret again/.test(err.message),
    );
    // and it can be fixed by setting CHAP again
    reopened.acls.setChap(target.acls[0]!.id, { user: 'pc', secret: 'a-new-secret-9' });
    assert.equal(reopened.acls.credentials(target.acls[0]!.id).chap!.secret, 'a-new-secret-9');
    reopened.close();
  });
});
