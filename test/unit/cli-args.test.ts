import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCommandArgs, parseHostPort } from '../../src-main/cli/args';
import { CliError } from '../../src-main/cli/errors';

test('HOST:PORT parses IPv4, [IPv6], :PORT (default host) and port 0', () => {
  assert.deepEqual(parseHostPort('--ui', '127.0.0.1:7373', 'x'), { host: '127.0.0.1', port: 7373 });
  assert.deepEqual(parseHostPort('--ui', '[::1]:80', 'x'), { host: '::1', port: 80 });
  assert.deepEqual(parseHostPort('--ui', ':3260', '0.0.0.0'), { host: '0.0.0.0', port: 3260 });
  assert.deepEqual(parseHostPort('--ui', 'localhost:0', 'x'), { host: 'localhost', port: 0 });
});

test('a bad HOST:PORT is a usage error naming the flag and an example', () => {
  for (const bad of ['7373', 'host:', 'host:99999', 'a b:1', '::1:80', 'host:-1']) {
    assert.throws(() => parseHostPort('--portal', bad, 'x'), (e: CliError) => e.exitCode === 2 && /--portal expects HOST:PORT/.test(e.message), bad);
  }
});

test('an unknown flag is one usage line that points at --help', () => {
  assert.throws(
    () => parseCommandArgs('serve', ['--bogus'], { data: { type: 'string' } }),
    (e: CliError) => e.exitCode === 2 && e.message === 'serve: unknown option --bogus (see: spindle serve --help)',
  );
});

test('a flag missing its value is a usage error', () => {
  assert.throws(() => parseCommandArgs('serve', ['--data'], { data: { type: 'string' } }), (e: CliError) => e.exitCode === 2 && /--data/.test(e.message));
});

test('a stray positional argument is refused unless the command takes them', () => {
  assert.throws(() => parseCommandArgs('serve', ['extra'], {}), (e: CliError) => e.exitCode === 2 && /unexpected argument extra/.test(e.message));
  assert.deepEqual(parseCommandArgs('x', ['a'], {}, true).positionals, ['a']);
});
