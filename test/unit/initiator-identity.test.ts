// The names Spindle's initiator introduces itself with: a stable initiator
// name from the host name that every target accepts, and random-format ISIDs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultInitiatorName } from '../../src-main/initiator/identity';
import { randomIsid } from '../../src-main/initiator/login';
import { validateIscsiName } from '../../src-main/iscsi/names';

test('the default initiator name is a valid IQN built from the host name, whatever the host name holds', () => {
  const cases: Array<[string, string]> = [
    ['nas', 'iqn.2026-11.app.spindle:nas'],
    ['My-PC', 'iqn.2026-11.app.spindle:my-pc'],
    ['DESKTOP_7Q2 (home)', 'iqn.2026-11.app.spindle:desktop-7q2-home'],
    ['büro.local', 'iqn.2026-11.app.spindle:b-ro.local'],
    ['', 'iqn.2026-11.app.spindle:host'],
    ['___', 'iqn.2026-11.app.spindle:host'],
    ['x'.repeat(300), `iqn.2026-11.app.spindle:${'x'.repeat(63)}`],
  ];
  for (const [host, want] of cases) {
    const name = defaultInitiatorName(host, null);
    assert.equal(name, want, host);
    assert.equal(validateIscsiName(name).ok, true, `${name} is a valid iSCSI name`);
  }
  assert.equal(defaultInitiatorName('nas'), defaultInitiatorName('nas'), 'stable: the same machine always gets the same name');
});

test('two machines with the same host name get different names (a short hash of the machine id)', () => {
  const a = defaultInitiatorName('raspberrypi', '0123456789abcdef0123456789abcdef');
  const b = defaultInitiatorName('raspberrypi', 'fedcba9876543210fedcba9876543210');
  assert.match(a, /^iqn\.2026-11\.app\.spindle:raspberrypi-[0-9a-f]{6}$/);
  assert.match(b, /^iqn\.2026-11\.app\.spindle:raspberrypi-[0-9a-f]{6}$/);
  assert.notEqual(a, b);
  assert.equal(defaultInitiatorName('raspberrypi', '0123456789abcdef0123456789abcdef'), a, 'stable for one machine');
  assert.equal(validateIscsiName(a).ok, true);
});

test('random ISIDs have the random format (T=10b, A=0) and differ', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const isid = randomIsid(7);
    assert.ok(Number.isSafeInteger(isid) && isid < 2 ** 48);
    assert.equal(Math.floor(isid / 2 ** 40), 0x80, 'first byte: T=10b, A=0');
    assert.equal(isid % 2 ** 16, 7, 'qualifier in D');
    seen.add(isid);
  }
  assert.ok(seen.size > 190, 'B and C are random');
});
