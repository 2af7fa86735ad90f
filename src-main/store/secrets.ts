// CHAP secrets live outside spindle.db: the tables hold only references
// ("sec_" + 32 hex digits) into a SecretStore. The one implementation here is
// a 0600 JSON file, secrets.json, beside the database:
//
//   { "format": "spindle-secrets", "version": 1,
//     "entries": { "sec_…": { "enc": "none", "value": "the secret" },
//                  "sec_…": { "enc": "os",   "value": "<base64 ciphertext>" } } }
//
// With a SecretCipher (the desktop shell passes one built on Electron's
// safeStorage) new entries are encrypted ("os") and plain ones are re-encrypted
// when the file is opened. Without one (CLI, headless) entries are written
// plain; reading an "os" entry then fails with SECRETS_LOCKED and says why.
//
// The file is rewritten whole on every change: temp file (0600), fsync,
// rename over, fsync of the directory, so a crash leaves the old or the new
// file, never a torn one. A file other users can read is refused on open.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, lstatSync, openSync, readFileSync, renameSync, unlinkSync, writeSync, fchmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  RepoError,
  errnoCode,
  ioError,
  secretsCorruptError,
  secretsInsecureError,
  secretsLockedError,
} from './errors';

export const SECRETS_FILE_NAME = 'secrets.json';
const FORMAT = 'spindle-secrets';
const VERSION = 1;
const REF_RE = /^sec_[0-9a-f]{32}$/;

/** Where CHAP secrets are kept; rows in spindle.db hold only the references. */
export interface SecretStore {
  /** Stores `plain` durably and returns a new reference to it. */
  put(plain: string): string;
  /** The secret behind `ref`. Throws RepoError SECRET_MISSING, or StoreError SECRETS_LOCKED. */
  get(ref: string): string;
  /** Forgets `ref` (durably). Unknown references are ignored. */
  delete(ref: string): void;
}

/**
 * Encrypts secrets at rest, e.g. with Electron's safeStorage:
 * `{ encrypt: (b) => safeStorage.encryptString(b.toString('utf8')), decrypt: (b) => Buffer.from(safeStorage.decryptString(b), 'utf8') }`.
 */
export interface SecretCipher {
  encrypt(plain: Buffer): Buffer;
  decrypt(cipher: Buffer): Buffer;
}

export interface FileSecretStore extends SecretStore {
  /** Absolute path of secrets.json. */
  readonly path: string;
  /** Whether new secrets are encrypted (a cipher was given). */
  readonly encrypted: boolean;
  has(ref: string): boolean;
  /** Every reference in the file. */
  refs(): string[];
  /** Deletes every entry whose reference is not in `keep` (one write); returns how many went. */
  retainOnly(keep: ReadonlySet<string>): number;
}

interface Entry {
  enc: 'none' | 'os';
  value: string;
}

export function isSecretRef(value: unknown): value is string {
  return typeof value === 'string' && REF_RE.test(value);
}

export interface OpenSecretStoreOptions {
  cipher?: SecretCipher;
  /** Defaults to process.platform; permission bits are not checked on Windows. */
  platform?: NodeJS.Platform;
}

/** Opens (without creating) `dir`/secrets.json. Throws StoreError SECRETS_INSECURE / SECRETS_CORRUPT / STORE_IO. */
export function openFileSecretStore(dir: string, options: OpenSecretStoreOptions = {}): FileSecretStore {
  const file = join(dir, SECRETS_FILE_NAME);
  const cipher = options.cipher;
  const platform = options.platform ?? process.platform;
  const entries = loadEntries(file, platform);

  const write = (): void => writeAtomically(file, serialise(entries));

  // Encrypt what was written plain before a cipher was available.
  if (cipher !== undefined) {
    let upgraded = false;
    for (const [ref, entry] of entries) {
      if (entry.enc === 'none') {
        entries.set(ref, { enc: 'os', value: cipher.encrypt(Buffer.from(entry.value, 'utf8')).toString('base64') });
        upgraded = true;
      }
    }
    if (upgraded) write();
  }

  const encode = (plain: string): Entry =>
    cipher === undefined
      ? { enc: 'none', value: plain }
      : { enc: 'os', value: cipher.encrypt(Buffer.from(plain, 'utf8')).toString('base64') };

  return {
    path: file,
    encrypted: cipher !== undefined,
    put(plain) {
      if (typeof plain !== 'string' || plain.length === 0) throw new RepoError('INVALID_INPUT', 'a secret must be a non-empty string');
      const ref = `sec_${randomBytes(16).toString('hex')}`;
      entries.set(ref, encode(plain));
      try {
        write();
      } catch (err) {
        entries.delete(ref);
        throw err;
      }
      return ref;
    },
    get(ref) {
      const entry = entries.get(ref);
      if (entry === undefined) {
        throw new RepoError(
          'SECRET_MISSING',
          `a CHAP secret is missing from ${file} (it was replaced or edited); enter the secret again`,
        );
      }
      if (entry.enc === 'none') return entry.value;
      if (cipher === undefined) throw secretsLockedError(file, 'this process (CLI or headless server) has no access to it');
      try {
        return cipher.decrypt(Buffer.from(entry.value, 'base64')).toString('utf8');
      } catch (err) {
        throw secretsLockedError(file, 'the keychain could not decrypt it (was it made by another user or machine?)', err);
      }
    },
    delete(ref) {
      const entry = entries.get(ref);
      if (entry === undefined) return;
      entries.delete(ref);
      try {
        write();
      } catch (err) {
        entries.set(ref, entry);
        throw err;
      }
    },
    has: (ref) => entries.has(ref),
    refs: () => [...entries.keys()],
    retainOnly(keep) {
      const gone = [...entries.keys()].filter((ref) => !keep.has(ref));
      if (gone.length === 0) return 0;
      const saved = new Map(entries);
      for (const ref of gone) entries.delete(ref);
      try {
        write();
      } catch (err) {
        for (const [ref, entry] of saved) entries.set(ref, entry);
        throw err;
      }
      return gone.length;
    },
  };
}

function loadEntries(file: string, platform: NodeJS.Platform): Map<string, Entry> {
  let stats;
  try {
    stats = lstatSync(file);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return new Map();
    throw ioError(file, err);
  }
  if (!stats.isFile()) throw secretsCorruptError(file, stats.isSymbolicLink() ? 'it is a symbolic link' : 'it is not a regular file');
  if (platform !== 'win32' && (stats.mode & 0o077) !== 0) throw secretsInsecureError(file, stats.mode);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw ioError(file, err);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw secretsCorruptError(file, 'it is not valid JSON', err);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw secretsCorruptError(file, 'it is not a JSON object');
  const { format, version, entries } = doc as Record<string, unknown>;
  if (format !== FORMAT) throw secretsCorruptError(file, `"format" is ${JSON.stringify(format)}, expected "${FORMAT}"`);
  if (version !== VERSION) {
    throw secretsCorruptError(file, `version ${JSON.stringify(version)} is not one this Spindle knows (${VERSION}); upgrade Spindle`);
  }
  if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) throw secretsCorruptError(file, '"entries" is not an object');
  const out = new Map<string, Entry>();
  for (const [ref, raw] of Object.entries(entries)) {
    if (!REF_RE.test(ref)) throw secretsCorruptError(file, `entry name ${JSON.stringify(ref.slice(0, 40))} is not a secret reference`);
    const e = raw as Partial<Entry> | null;
    if (typeof e !== 'object' || e === null || (e.enc !== 'none' && e.enc !== 'os') || typeof e.value !== 'string') {
      throw secretsCorruptError(file, `entry ${ref} is malformed`);
    }
    out.set(ref, { enc: e.enc, value: e.value });
  }
  return out;
}

function serialise(entries: Map<string, Entry>): string {
  const obj: Record<string, Entry> = {};
  for (const [ref, entry] of entries) obj[ref] = entry;
  return `${JSON.stringify({ format: FORMAT, version: VERSION, entries: obj }, null, 2)}\n`;
}

/** temp (0600, exclusive) → write → fsync → rename over → fsync the directory. */
function writeAtomically(file: string, text: string): void {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx', 0o600);
    fchmodSync(fd, 0o600); // whatever the umask did
    const buf = Buffer.from(text, 'utf8');
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, file);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // already renamed or never created
    }
    throw ioError(file, err);
  }
  syncDirectory(dirname(file));
}

function syncDirectory(dir: string): void {
  if (process.platform === 'win32') return;
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // some file systems refuse fsync on directories; the rename is still atomic
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
