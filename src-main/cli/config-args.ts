// Parsing of the configuration flags the service commands share:
// --lun N=SPEC, --chap USER:SECRET (or USER:@FILE), and the output helpers.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseBackstoreSpec } from '../backstore';
import type { BackstoreRefParams } from '../service/api/schema';
import { checkWireIscsiName } from '../iscsi/names';
import { usageError } from './errors';

export interface LunArg {
  lun: number;
  backstore: BackstoreRefParams;
}

/** `N=file:PATH[:SIZE]`, `N=memory:SIZE`, `N=block:DEV`; a file with a size is created when it does not exist. */
export function parseLunArg(flag: string, arg: string): LunArg {
  const m = /^(\d{1,5})=(.+)$/s.exec(arg);
  if (!m) throw usageError(`${flag} ${arg}: expected N=SPEC, e.g. ${flag} 0=file:/srv/disk.img:20GiB`);
  const lun = Number(m[1]);
  if (lun > 16383) throw usageError(`${flag} ${arg}: LUN ${lun} is outside 0..16383`);
  let spec;
  try {
    spec = parseBackstoreSpec(m[2]!);
  } catch (err) {
    throw usageError(`${flag} ${arg}: ${(err as Error).message}`);
  }
  switch (spec.kind) {
    case 'memory':
      return { lun, backstore: { kind: 'memory', sizeBytes: spec.sizeBytes! } };
    case 'block':
      return { lun, backstore: { kind: 'block', path: resolve(spec.path!) } };
    case 'file':
      // Paths are the caller's: a running serve has another working directory.
      return {
        lun,
        backstore: { kind: 'file', path: resolve(spec.path!), ...(spec.sizeBytes !== undefined ? { sizeBytes: spec.sizeBytes, create: true } : {}) },
      };
  }
}

/** `USER:SECRET` or `USER:@FILE` (the secret is the file's first line). */
export function parseChapArg(flag: string, value: string): { user: string; secret: string } {
  const colon = value.indexOf(':');
  if (colon <= 0 || colon === value.length - 1) {
    throw usageError(`${flag} expects USER:SECRET or USER:@FILE, e.g. ${flag} alice:averylongsecret`);
  }
  const user = value.slice(0, colon);
  let secret = value.slice(colon + 1);
  if (secret.startsWith('@')) {
    const file = secret.slice(1);
    try {
      secret = readFileSync(file, 'utf8').split(/\r?\n/, 1)[0] ?? '';
    } catch (err) {
      throw usageError(`${flag}: cannot read the secret from ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  const bytes = Buffer.byteLength(secret);
  if (bytes < 12 || bytes > 16) throw usageError(`${flag}: a CHAP secret must be 12 to 16 bytes long (this one is ${bytes})`);
  return { user, secret };
}

/** `--chap` and `--mutual-chap` together: mutual CHAP only on top of one-way CHAP. */
export function parseChapFlags(
  chap: string | undefined,
  mutualChap: string | undefined,
): { chap: { user: string; secret: string } | undefined; mutualChap: { user: string; secret: string } | undefined } {
  const one = chap !== undefined ? parseChapArg('--chap', chap) : undefined;
  const mutual = mutualChap !== undefined ? parseChapArg('--mutual-chap', mutualChap) : undefined;
  if (mutual !== undefined && one === undefined) throw usageError('--mutual-chap needs --chap too');
  return { chap: one, mutualChap: mutual };
}

/** A target reference as typed: digits are an id, anything else an IQN. */
export function targetRefArg(value: string): string | number {
  return /^\d+$/.test(value) ? Number(value) : value;
}

export function requirePositional(command: string, positionals: string[], what: string, count = 1): string[] {
  if (positionals.length < count) throw usageError(`${command}: give ${what} (see: spindle ${command} --help)`);
  if (positionals.length > count) throw usageError(`${command}: unexpected argument ${positionals[count]} (see: spindle ${command} --help)`);
  return positionals;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return `${rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n')}\n`;
}

/** `--initiator IQN` as typed, or Spindle's default name; a usage error for a name no target would take. */
export function initiatorNameArg(value: string | undefined, fallback: string): string {
  const name = value ?? fallback;
  const checked = checkWireIscsiName(name);
  if (!checked.ok || !/^(iqn|eui|naa)\./i.test(name)) {
    throw usageError(`--initiator: "${name}" is not a usable initiator name${checked.ok ? ' (it starts with iqn., eui. or naa.)' : `: ${checked.reason}`}`);
  }
  return name;
}

/**
 * The initiator's CHAP from `--chap`/`--mutual-chap`, or from USER%SECRET@ in the address when
 * `--chap` is not given (checked the same way), in the shape the initiator takes.
 */
export function initiatorChapArgs(
  chapFlag: string | undefined,
  mutualFlag: string | undefined,
  fromAddress: { user: string; secret: string } | undefined,
): { chap: { credentials: { name: string; secret: string }; mutual?: { name: string; secret: string } } } | Record<string, never> {
  const oneWay = fromAddress !== undefined && chapFlag === undefined ? `${fromAddress.user}:${fromAddress.secret}` : chapFlag;
  const { chap, mutualChap } = parseChapFlags(oneWay, mutualFlag);
  if (chap === undefined) return {};
  return {
    chap: {
      credentials: { name: chap.user, secret: chap.secret },
      ...(mutualChap !== undefined ? { mutual: { name: mutualChap.user, secret: mutualChap.secret } } : {}),
    },
  };
}
