// LUN spec strings, as typed on the command line (`--lun N=SPEC`):
//   file:PATH          an existing image file
//   file:PATH:SIZE     an image file, created (thin) if it does not exist
//   memory:SIZE        a memory LUN
//   block:DEV          a whole block device, e.g. block:/dev/sdb
// SIZE is bytes, or a number with KiB, MiB, GiB, TiB (also K, M, G, T; any
// case); sizes are binary (1 GiB = 1024³ bytes) and whole blocks.
import { BackstoreError } from './errors';

export type BackstoreKind = 'file' | 'block' | 'memory';

export interface BackstoreSpec {
  kind: BackstoreKind;
  /** Image file or device path (file, block). */
  path?: string;
  /** Size in bytes (memory; file when it may be created). */
  sizeBytes?: number;
  readOnly?: boolean;
  /** file: create the image (thin) when it does not exist; needs sizeBytes. */
  create?: boolean;
}

const MULTIPLIERS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

function specError(spec: string, why: string, code: 'BACKSTORE_BAD_SPEC' | 'BACKSTORE_BAD_SIZE' = 'BACKSTORE_BAD_SPEC'): BackstoreError {
  return new BackstoreError(code, `"${spec}" — ${why}`);
}

/**
 * Parses a size: "1073741824", "1GiB", "1 GiB", "1g", "1.5G", "512MiB".
 * `spec` (the whole string) and `example` are only for the error message.
 */
export function parseSize(text: string, blockSize = 512, spec = text, example = 'memory:1GiB'): number {
  const m = SIZE_RE.exec(text.trim());
  const badUnit = `size must be a number with KiB, MiB, GiB or TiB, e.g. ${example}`;
  if (m === null) throw specError(spec, badUnit);
  const [, num, rawUnit] = m as unknown as [string, string, string];
  const unit = rawUnit.toLowerCase();
  let key: string;
  if (unit === '' || unit === 'b') key = unit;
  else if (/^[kmgt](ib?)?$/.test(unit)) key = unit[0] as string; // K, Ki, KiB
  else if (/^[kmgt]b$/.test(unit)) {
    const U = unit[0]!.toUpperCase();
    throw specError(spec, `"${rawUnit}" is ambiguous; sizes are binary, write ${num}${U}iB (or ${num}${U}), e.g. ${example}`);
  } else throw specError(spec, badUnit);

  const bytes = Number(num) * (MULTIPLIERS[key] as number);
  if (!Number.isSafeInteger(bytes)) {
    throw specError(spec, `${text.trim()} is not a whole number of bytes (or is too large)`, 'BACKSTORE_BAD_SIZE');
  }
  if (bytes === 0) throw specError(spec, `the size must be greater than zero, e.g. ${example}`, 'BACKSTORE_BAD_SIZE');
  if (bytes % blockSize !== 0) {
    throw specError(spec, `${bytes} bytes is not a whole number of ${blockSize}-byte blocks`, 'BACKSTORE_BAD_SIZE');
  }
  return bytes;
}

const FORMS = 'a LUN is file:PATH[:SIZE], memory:SIZE or block:DEV, e.g. file:/srv/spindle/disk1.img:20GiB';

/** Parses `file:PATH[:SIZE]`, `memory:SIZE` or `block:DEV` into a spec, or throws a BackstoreError that says what is wrong. */
export function parseBackstoreSpec(spec: string, blockSize = 512): BackstoreSpec {
  const colon = spec.indexOf(':');
  if (colon < 0) throw specError(spec, FORMS);
  const kind = spec.slice(0, colon).trim().toLowerCase();
  const rest = spec.slice(colon + 1);

  switch (kind) {
    case 'memory': {
      if (rest.trim() === '') throw specError(spec, 'give the size of the memory LUN, e.g. memory:1GiB');
      return { kind: 'memory', sizeBytes: parseSize(rest, blockSize, spec, 'memory:1GiB') };
    }
    case 'file': {
      // The size, if any, follows the last colon and starts with a digit; a path may contain colons.
      const last = rest.lastIndexOf(':');
      const tail = last >= 0 ? rest.slice(last + 1).trim() : '';
      if (last >= 0 && /^\d/.test(tail)) {
        const path = rest.slice(0, last);
        if (path.trim() === '') throw specError(spec, 'give the image path, e.g. file:/srv/spindle/disk1.img:20GiB');
        return { kind: 'file', path, sizeBytes: parseSize(tail, blockSize, spec, `file:${path}:20GiB`), create: true };
      }
      if (rest.trim() === '') throw specError(spec, 'give the image path, e.g. file:/srv/spindle/disk1.img:20GiB');
      if (last === rest.length - 1) throw specError(spec, `give the size after the last colon, e.g. file:${rest.slice(0, -1)}:20GiB`);
      return { kind: 'file', path: rest };
    }
    case 'block': {
      const dev = rest.trim();
      if (dev === '') throw specError(spec, 'give the device, e.g. block:/dev/sdb');
      if (!dev.startsWith('/')) throw specError(spec, `give the device's full path, e.g. block:/dev/${dev}`);
      if (/:\s*\d[^/]*$/.test(dev)) throw specError(spec, `a block device has its own size; write block:${dev.slice(0, dev.lastIndexOf(':'))}`);
      return { kind: 'block', path: dev };
    }
    default:
      throw specError(spec, `unknown kind "${kind}"; ${FORMS}`);
  }
}
