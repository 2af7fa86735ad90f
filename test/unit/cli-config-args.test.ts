// The CLI's shared configuration flags: --lun N=SPEC and --chap USER:SECRET
// turn into API params, and every bad form is a usage error (exit 2) that
// says what to write instead.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseChapArg, parseLunArg, table, targetRefArg } from '../../src-main/cli/config-args';
import { CliError } from '../../src-main/cli/errors';

const usage = (fn: () => unknown, re: RegExp) =>
  assert.throws(fn, (err: unknown) => err instanceof CliError && err.exitCode === 2 && re.test(err.message));

describe('--lun N=SPEC', () => {
  it('maps file with a size to a file backstore that may be created', () => {
    assert.deepEqual(parseLunArg('--lun', '0=file:/srv/a.img:1GiB'), {
      lun: 0,
      backstore: { kind: 'file', path: '/srv/a.img', sizeBytes: 2 ** 30, create: true },
    });
  });
  it('maps file without a size to an existing image, memory and block', () => {
    assert.deepEqual(parseLunArg('--lun', '3=file:/srv/a.img'), { lun: 3, backstore: { kind: 'file', path: '/srv/a.img' } });
    assert.deepEqual(parseLunArg('--lun', '1=memory:16MiB'), { lun: 1, backstore: { kind: 'memory', sizeBytes: 16 * 2 ** 20 } });
    assert.deepEqual(parseLunArg('--lun', '2=block:/dev/sdb'), { lun: 2, backstore: { kind: 'block', path: '/dev/sdb' } });
  });
  it('refuses a missing number, a LUN above 16383 and a bad spec, saying why', () => {
    usage(() => parseLunArg('--lun', 'file:/a.img'), /expected N=SPEC/);
    usage(() => parseLunArg('--lun', '16384=memory:1MiB'), /outside 0\.\.16383/);
    usage(() => parseLunArg('--lun', '0=tape:/dev/st0'), /unknown kind/);
    usage(() => parseLunArg('--lun', '0=memory:lots'), /--lun 0=memory:lots/);
  });
});

describe('--chap USER:SECRET', () => {
  it('splits at the first colon (a secret may contain colons)', () => {
    assert.deepEqual(parseChapArg('--chap', 'alice:a:very:long:sec'), { user: 'alice', secret: 'a:very:long:sec' });
  });
  it('reads USER:@FILE from the first line of the file', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'spindle-chap-')), 'secret');
    writeFileSync(f, 'averylongsecret\nignored\n');
    assert.deepEqual(parseChapArg('--chap', `bob:@${f}`), { user: 'bob', secret: 'averylongsecret' });
    usage(() => parseChapArg('--chap', `bob:@${f}.missing`), /cannot read the secret/);
  });
  it('refuses secrets outside 12..16 bytes and shapes without a user or secret', () => {
    usage(() => parseChapArg('--chap', 'alice:elevenbytes'), /12 to 16 bytes long \(this one is 11\)/);
    usage(() => parseChapArg('--chap', 'alice:seventeen-bytes!!'), /this one is 17/);
    usage(() => parseChapArg('--chap', ':averylongsecret'), /USER:SECRET/);
    usage(() => parseChapArg('--chap', 'alice:'), /USER:SECRET/);
  });
});

describe('output helpers', () => {
  it('reads digits as a target id and anything else as an IQN', () => {
    assert.equal(targetRefArg('12'), 12);
    assert.equal(targetRefArg('iqn.2026-11.lan:x'), 'iqn.2026-11.lan:x');
  });
  it('aligns table columns without trailing spaces', () => {
    assert.equal(table([['A', 'BB', 'C'], ['long', 'x', 'y']]), 'A     BB  C\nlong  x   y\n');
  });
});

describe('--chap with --mutual-chap', () => {
  it('parses both, and refuses mutual CHAP without one-way CHAP', async () => {
    const { parseChapFlags } = await import('../../src-main/cli/config-args');
    assert.deepEqual(parseChapFlags('a:averylongsecret', 'b:anotherlongsecr'), {
      chap: { user: 'a', secret: 'averylongsecret' },
      mutualChap: { user: 'b', secret: 'anotherlongsecr' },
    });
    assert.deepEqual(parseChapFlags(undefined, undefined), { chap: undefined, mutualChap: undefined });
    usage(() => parseChapFlags(undefined, 'b:anotherlongsecr'), /--mutual-chap needs --chap too/);
  });
});
