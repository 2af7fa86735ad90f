import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { decodeTextKeys, encodeTextKeys } from '../../src-main/iscsi/text-keys';
import {
  CHAP_ALGORITHM_MD5,
  ChapConfigError,
  type ChapFailure,
  type InitiatorChap,
  type TargetChap,
  checkChapConfig,
  chapResponse,
  createInitiatorChap,
  createTargetChap,
  initiatorChapStart,
  initiatorChapStep,
  selectChapAlgorithm,
  targetChapStep,
} from '../../src-main/iscsi/chap';
import { buildInitiatorOffer, createInitiatorNegotiation, createTargetNegotiation, negotiateLogin } from '../../src-main/iscsi/negotiation';

const INITIATOR = { name: 'alice', secret: 'abcdefghijkl' }; // exactly 12 bytes: the minimum
const TARGET = { name: 'target1', secret: 'mutual-secret-of-target' };

/** A random source that hands out fixed bytes, in order. */
function fixed(...chunks: Uint8Array[]): (n: number) => Uint8Array {
  const queue = [...chunks];
  return (n) => {
    const next = queue.shift();
    if (!next || next.length !== n) throw new Error(`unexpected random(${n})`);
    return next;
  };
}

function keys(text: string): Map<string, string> {
  return new Map(decodeTextKeys(Buffer.from(text, 'utf8')));
}

function wireOf(pairs: readonly (readonly [string, string])[]): string {
  return encodeTextKeys(pairs).toString('utf8');
}

const CHALLENGE = Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);

/** A target that has sent CHAP_I=1, CHAP_C=0x000102...0f. */
function challenged(options: Partial<Parameters<typeof createTargetChap>[0]> = {}): TargetChap {
  const t = createTargetChap({ initiator: INITIATOR, random: fixed(Buffer.of(1), CHALLENGE), ...options });
  const r = targetChapStep(t, keys('CHAP_A=5\0'));
  assert.ok(r.ok);
  return r.chap;
}

function failedStep<T>(r: { ok: true; chap: T } | ChapFailure): ChapFailure {
  if (r.ok) assert.fail('expected a CHAP failure');
  return r;
}

// --- RFC 1994 ---------------------------------------------------------------

test('RFC 1994: CHAP_R is MD5(identifier || secret || challenge) — checked against a hand-computed digest', () => {
  // printf '\001abcdefghijkl' + bytes 00..0f | md5sum  →  0ba5fab36926a6aab1f2e4aa6cf1158d
  assert.equal(chapResponse(1, 'abcdefghijkl', CHALLENGE).toString('hex'), '0ba5fab36926a6aab1f2e4aa6cf1158d');
  // id 0xc8, secret "mutual-secret-of-target", challenge 01..10 → 85d85e367ac0ebe1e40fa616d417c32d
  const c2 = Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex');
  assert.equal(chapResponse(0xc8, 'mutual-secret-of-target', c2).toString('hex'), '85d85e367ac0ebe1e40fa616d417c32d');
  assert.throws(() => chapResponse(256, 'abcdefghijkl', CHALLENGE), RangeError);
});

// --- target side ------------------------------------------------------------------

test('the target chooses CHAP_A=5 from an offered list', () => {
  assert.equal(selectChapAlgorithm('7,6,5'), CHAP_ALGORITHM_MD5);
  assert.equal(selectChapAlgorithm('5'), CHAP_ALGORITHM_MD5);
  assert.equal(selectChapAlgorithm('0x5'), CHAP_ALGORITHM_MD5);
  const r = targetChapStep(createTargetChap({ initiator: INITIATOR, random: fixed(Buffer.of(1), CHALLENGE) }), keys('CHAP_A=7,6,5\0'));
  assert.ok(r.ok);
  assert.equal(r.response[0][1], '5');
});

test('the target refuses CHAP algorithms other than MD5', () => {
  const f = failedStep(targetChapStep(createTargetChap({ initiator: INITIATOR }), keys('CHAP_A=7,6\0')));
  assert.equal(f.code, 'UNSUPPORTED_ALGORITHM');
  assert.equal(selectChapAlgorithm('MD5'), null);
});

test('the target challenge is CHAP_I (0..255) and a 16-byte CHAP_C in 0x hex, byte for byte', () => {
  const t = createTargetChap({ initiator: INITIATOR, random: fixed(Buffer.of(0xfe), CHALLENGE) });
  const r = targetChapStep(t, keys('CHAP_A=5\0'));
  assert.ok(r.ok);
  assert.equal(wireOf(r.response), 'CHAP_A=5\0CHAP_I=254\0CHAP_C=0x000102030405060708090a0b0c0d0e0f\0');
  assert.equal(r.done, false);
});

test('the default challenge comes from the system CSPRNG: 16 fresh bytes each time', () => {
  const a = targetChapStep(createTargetChap({ initiator: INITIATOR }), keys('CHAP_A=5\0'));
  const b = targetChapStep(createTargetChap({ initiator: INITIATOR }), keys('CHAP_A=5\0'));
  assert.ok(a.ok && b.ok);
  const ca = new Map(a.response).get('CHAP_C');
  const cb = new Map(b.response).get('CHAP_C');
  assert.match(ca ?? '', /^0x[0-9a-f]{32}$/);
  assert.notEqual(ca, cb);
  assert.throws(() => createTargetChap({ initiator: INITIATOR, challengeBytes: 8 }), RangeError);
});

test('a correct CHAP response authenticates, in hex or base64 (0b, §6.1)', () => {
  const hex = targetChapStep(challenged(), keys('CHAP_N=alice\0CHAP_R=0x0ba5fab36926a6aab1f2e4aa6cf1158d\0'));
  assert.ok(hex.ok);
  assert.equal(hex.done, true);
  assert.equal(hex.chap.mutual, false);
  assert.deepEqual(hex.response, []);
  const upper = targetChapStep(challenged(), keys('CHAP_N=alice\0CHAP_R=0X0BA5FAB36926A6AAB1F2E4AA6CF1158D\0'));
  assert.ok(upper.ok);
  const b64 = Buffer.from('0ba5fab36926a6aab1f2e4aa6cf1158d', 'hex').toString('base64');
  const base64 = targetChapStep(challenged(), keys(`CHAP_N=alice\0CHAP_R=0b${b64}\0`));
  assert.ok(base64.ok);
});

test('a wrong secret fails with WRONG_RESPONSE, a wrong user with WRONG_NAME', () => {
  const wrong = chapResponse(1, 'not-the-secret!', CHALLENGE).toString('hex');
  assert.equal(failedStep(targetChapStep(challenged(), keys(`CHAP_N=alice\0CHAP_R=0x${wrong}\0`))).code, 'WRONG_RESPONSE');
  assert.equal(failedStep(targetChapStep(challenged(), keys('CHAP_N=mallory\0CHAP_R=0x0ba5fab36926a6aab1f2e4aa6cf1158d\0'))).code, 'WRONG_NAME');
});

test('a CHAP_R that is not a 16-byte binary value is malformed', () => {
  for (const r of ['0x0ba5', '0x0ba5fab36926a6aab1f2e4aa6cf1158d00', '12345', '0xzz']) {
    assert.equal(failedStep(targetChapStep(challenged(), keys(`CHAP_N=alice\0CHAP_R=${r}\0`))).code, 'MALFORMED_VALUE', r);
  }
});

test('CHAP keys out of order are refused: a response before the challenge, CHAP_A twice, N without R', () => {
  const t = createTargetChap({ initiator: INITIATOR });
  assert.equal(failedStep(targetChapStep(t, keys('CHAP_N=alice\0CHAP_R=0x00\0'))).code, 'UNEXPECTED_KEY');
  assert.equal(failedStep(targetChapStep(challenged(), keys('CHAP_A=5\0'))).code, 'UNEXPECTED_KEY');
  assert.equal(failedStep(targetChapStep(challenged(), keys('CHAP_N=alice\0'))).code, 'MISSING_KEY');
});

test('secrets shorter than 12 bytes are a configuration error, not a login', () => {
  const short = { name: 'alice', secret: 'elevenbytes' };
  assert.throws(() => createTargetChap({ initiator: short }), (e: ChapConfigError) => e instanceof ChapConfigError && e.code === 'SECRET_TOO_SHORT');
  assert.throws(() => createInitiatorChap({ credentials: short }), ChapConfigError);
  assert.throws(
    () => createTargetNegotiation({ auth: { method: 'CHAP', initiator: short } }),
    ChapConfigError,
    'the negotiator refuses it when the connection is set up, before any Login Request',
  );
  assert.equal(checkChapConfig(short)?.code, 'SECRET_TOO_SHORT');
  assert.equal(checkChapConfig(INITIATOR), null, '12 bytes is enough');
  assert.equal(checkChapConfig({ name: 'alice', secret: 'ünïcödé!!' }), null, '9 characters but 13 UTF-8 bytes: the limit counts bytes');
  assert.equal(checkChapConfig({ name: 'alice', secret: new Uint8Array(11) })?.code, 'SECRET_TOO_SHORT', 'binary secrets too');
});

test('a mutual CHAP secret equal to the initiator\'s is refused', () => {
  const same = { name: 'target1', secret: INITIATOR.secret };
  const e = checkChapConfig(INITIATOR, same);
  assert.equal(e?.code, 'MUTUAL_SECRET_REUSED');
  assert.throws(() => createTargetChap({ initiator: INITIATOR, mutual: same }), ChapConfigError);
  assert.throws(() => createInitiatorChap({ credentials: INITIATOR, mutual: same }), ChapConfigError);
  assert.equal(checkChapConfig(undefined, TARGET)?.code, 'MUTUAL_WITHOUT_ONE_WAY');
  assert.equal(checkChapConfig({ name: '', secret: INITIATOR.secret })?.code, 'NAME_EMPTY');
});

test('a response computed with the target\'s own secret fails as SAME_SECRET (§9.2.1)', () => {
  const t = challenged({ mutual: TARGET });
  const r = chapResponse(1, TARGET.secret, CHALLENGE).toString('hex');
  const f = failedStep(targetChapStep(t, keys(`CHAP_N=alice\0CHAP_R=0x${r}\0`)));
  assert.equal(f.code, 'SAME_SECRET');
});

test('mutual CHAP: the target answers the initiator\'s challenge with its own name and MD5 — hand-computed digest', () => {
  const t = challenged({ mutual: TARGET });
  const r = targetChapStep(t, keys('CHAP_N=alice\0CHAP_R=0x0ba5fab36926a6aab1f2e4aa6cf1158d\0CHAP_I=200\0CHAP_C=0x0102030405060708090a0b0c0d0e0f10\0'));
  assert.ok(r.ok);
  assert.equal(wireOf(r.response), 'CHAP_N=target1\0CHAP_R=0x85d85e367ac0ebe1e40fa616d417c32d\0');
  assert.equal(r.done, true);
  assert.equal(r.chap.mutual, true);
});

test('an initiator that reflects the target\'s own challenge is refused (§12.1.3)', () => {
  const t = challenged({ mutual: TARGET });
  const f = failedStep(targetChapStep(t, keys('CHAP_N=alice\0CHAP_R=0x0ba5fab36926a6aab1f2e4aa6cf1158d\0CHAP_I=1\0CHAP_C=0x000102030405060708090a0b0c0d0e0f\0')));
  assert.equal(f.code, 'REFLECTED_CHALLENGE');
});

test('a challenge the target issued on another connection is refused too, through isOwnChallenge', () => {
  const other = Buffer.from('ffeeddccbbaa99887766554433221100', 'hex');
  const t = challenged({ mutual: TARGET, isOwnChallenge: (c) => Buffer.from(c).equals(other) });
  const f = failedStep(targetChapStep(t, keys(`CHAP_N=alice\0CHAP_R=0x0ba5fab36926a6aab1f2e4aa6cf1158d\0CHAP_I=1\0CHAP_C=0x${other.toString('hex')}\0`)));
  assert.equal(f.code, 'REFLECTED_CHALLENGE');
});

test('mutual CHAP requested without a mutual user configured fails; CHAP_I without CHAP_C is incomplete', () => {
  const asked = 'CHAP_N=alice\0CHAP_R=0x0ba5fab36926a6aab1f2e4aa6cf1158d\0CHAP_I=1\0CHAP_C=0x0102\0';
  assert.equal(failedStep(targetChapStep(challenged(), keys(asked))).code, 'MUTUAL_NOT_CONFIGURED');
  assert.equal(failedStep(targetChapStep(challenged({ mutual: TARGET }), keys('CHAP_N=alice\0CHAP_R=0x0ba5fab36926a6aab1f2e4aa6cf1158d\0CHAP_I=1\0'))).code, 'MISSING_KEY');
  assert.equal(
    failedStep(targetChapStep(challenged({ mutual: TARGET }), keys('CHAP_N=alice\0CHAP_R=0x0ba5fab36926a6aab1f2e4aa6cf1158d\0CHAP_I=256\0CHAP_C=0x0102\0'))).code,
    'MALFORMED_VALUE',
  );
});

test('no secret appears in any CHAP error message', () => {
  const secrets = [INITIATOR.secret, TARGET.secret, 'elevenbytes'];
  const messages: string[] = [];
  for (const bad of [
    () => createTargetChap({ initiator: { name: 'a', secret: 'elevenbytes' } }),
    () => createTargetChap({ initiator: INITIATOR, mutual: { name: 'b', secret: INITIATOR.secret } }),
  ]) {
    try {
      bad();
    } catch (e) {
      messages.push(String((e as Error).message), String(e), JSON.stringify(e));
    }
  }
  const attempts = [
    `CHAP_N=alice\0CHAP_R=0x${chapResponse(1, 'wrong-secret-xx', CHALLENGE).toString('hex')}\0`,
    `CHAP_N=alice\0CHAP_R=0x${chapResponse(1, TARGET.secret, CHALLENGE).toString('hex')}\0`,
    'CHAP_N=bob\0CHAP_R=0x0ba5fab36926a6aab1f2e4aa6cf1158d\0',
    'CHAP_N=alice\0CHAP_R=0x0ba5fab36926a6aab1f2e4aa6cf1158d\0CHAP_I=1\0CHAP_C=0x000102030405060708090a0b0c0d0e0f\0',
  ];
  for (const a of attempts) {
    const r = targetChapStep(challenged({ mutual: TARGET }), keys(a));
    assert.ok(!r.ok);
    messages.push(r.reason, JSON.stringify(r));
  }
  assert.ok(messages.length >= 8);
  for (const m of messages) {
    for (const s of secrets) assert.ok(!m.includes(s), `secret leaked in: ${m}`);
    assert.ok(!m.includes('0ba5fab36926a6aab1f2e4aa6cf1158d') || m.includes('CHAP_N'), 'expected responses are not echoed');
  }
});

// --- initiator side ------------------------------------------------------------------

function initiatorChallenged(mutual = false, random?: (n: number) => Uint8Array): { chap: InitiatorChap; request: string } {
  let c = createInitiatorChap({ credentials: INITIATOR, ...(mutual ? { mutual: TARGET } : {}), ...(random ? { random } : {}) });
  const start = initiatorChapStart(c);
  assert.equal(wireOf(start.request), 'CHAP_A=5\0');
  c = start.chap;
  const r = initiatorChapStep(c, keys('CHAP_A=5\0CHAP_I=1\0CHAP_C=0x000102030405060708090a0b0c0d0e0f\0'));
  assert.ok(r.ok);
  return { chap: r.chap, request: wireOf(r.response) };
}

test('the initiator answers a challenge with CHAP_N and MD5(id || secret || challenge)', () => {
  const { chap, request } = initiatorChallenged();
  assert.equal(request, 'CHAP_N=alice\0CHAP_R=0x0ba5fab36926a6aab1f2e4aa6cf1158d\0');
  assert.equal(chap.step, 'done');
});

test('the initiator asks for mutual CHAP with its own CHAP_I and CHAP_C and checks the target\'s answer', () => {
  const mine = Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex');
  const { chap, request } = initiatorChallenged(true, fixed(Buffer.of(200), mine));
  assert.equal(request, `CHAP_N=alice\0CHAP_R=0x0ba5fab36926a6aab1f2e4aa6cf1158d\0CHAP_I=200\0CHAP_C=0x${mine.toString('hex')}\0`);
  const good = initiatorChapStep(chap, keys('CHAP_N=target1\0CHAP_R=0x85d85e367ac0ebe1e40fa616d417c32d\0'));
  assert.ok(good.ok);
  assert.equal(good.done, true);
  const bad = initiatorChapStep(chap, keys(`CHAP_N=target1\0CHAP_R=0x${'00'.repeat(16)}\0`));
  assert.equal(failedStep(bad).code, 'WRONG_RESPONSE');
  assert.equal(failedStep(initiatorChapStep(chap, keys('CHAP_N=impostor\0CHAP_R=0x85d85e367ac0ebe1e40fa616d417c32d\0'))).code, 'WRONG_NAME');
  assert.equal(failedStep(initiatorChapStep(chap, keys(''))).code, 'MISSING_KEY');
});

test('the initiator detects a target answering with the initiator\'s own secret', () => {
  const mine = Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex');
  const { chap } = initiatorChallenged(true, fixed(Buffer.of(200), mine));
  const r = chapResponse(200, INITIATOR.secret, mine).toString('hex');
  assert.equal(failedStep(initiatorChapStep(chap, keys(`CHAP_N=target1\0CHAP_R=0x${r}\0`))).code, 'SAME_SECRET');
});

test('the initiator never reuses the target\'s challenge as its own mutual challenge', () => {
  const theirs = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
  const fresh = Buffer.from('a0a1a2a3a4a5a6a7a8a9aaabacadaeaf', 'hex');
  const { request } = initiatorChallenged(true, fixed(Buffer.of(3), theirs, fresh));
  assert.ok(request.includes(`CHAP_C=0x${fresh.toString('hex')}`));
  assert.ok(!request.includes(`CHAP_C=0x${theirs.toString('hex')}`));
});

test('the initiator refuses an algorithm it did not offer and a malformed challenge', () => {
  const c = initiatorChapStart(createInitiatorChap({ credentials: INITIATOR })).chap;
  assert.equal(failedStep(initiatorChapStep(c, keys('CHAP_A=7\0CHAP_I=1\0CHAP_C=0x00\0'))).code, 'UNSUPPORTED_ALGORITHM');
  assert.equal(failedStep(initiatorChapStep(c, keys('CHAP_A=5\0CHAP_I=1\0CHAP_C=zz\0'))).code, 'MALFORMED_VALUE');
  assert.equal(failedStep(initiatorChapStep(c, keys('CHAP_A=5\0CHAP_I=x\0CHAP_C=0x00\0'))).code, 'MALFORMED_VALUE');
  assert.equal(failedStep(initiatorChapStep(c, keys('CHAP_A=5\0CHAP_C=0x00\0'))).code, 'MISSING_KEY');
});

test('target and initiator CHAP sides authenticate each other end to end', () => {
  let t = createTargetChap({ initiator: INITIATOR, mutual: TARGET });
  let i = createInitiatorChap({ credentials: INITIATOR, mutual: TARGET });
  const s = initiatorChapStart(i);
  i = s.chap;
  const r1 = targetChapStep(t, new Map(decodeTextKeys(encodeTextKeys(s.request))));
  assert.ok(r1.ok);
  t = r1.chap;
  const r2 = initiatorChapStep(i, new Map(decodeTextKeys(encodeTextKeys(r1.response))));
  assert.ok(r2.ok);
  i = r2.chap;
  const r3 = targetChapStep(t, new Map(decodeTextKeys(encodeTextKeys(r2.response))));
  assert.ok(r3.ok && r3.done);
  const r4 = initiatorChapStep(i, new Map(decodeTextKeys(encodeTextKeys(r3.response))));
  assert.ok(r4.ok && r4.done);
});

test('logging a negotiation state (JSON or inspect) never shows a CHAP secret', () => {
  const t = createTargetNegotiation({ auth: { method: 'CHAP', initiator: INITIATOR, mutual: TARGET } });
  const r = negotiateLogin(t, {
    stage: 0,
    transit: false,
    pairs: [['InitiatorName', 'iqn.2026-11.net.example:h'], ['TargetName', 'iqn.2026-11.net.example:d'], ['AuthMethod', 'CHAP']],
  });
  assert.ok(r.ok);
  const i = createInitiatorNegotiation({
    config: { InitiatorName: 'iqn.2026-11.net.example:h', TargetName: 'iqn.2026-11.net.example:d', SessionType: 'Normal', chap: { credentials: INITIATOR, mutual: TARGET } },
  });
  const dumps = [JSON.stringify(t), JSON.stringify(r.state), inspect(r.state, { depth: 10 }), JSON.stringify(i), inspect(buildInitiatorOffer(i, 0), { depth: 10 })];
  for (const d of dumps) {
    assert.ok(d.includes('alice'), 'names stay visible');
    assert.ok(!d.includes(INITIATOR.secret) && !d.includes(TARGET.secret), `secret visible in: ${d.slice(0, 200)}`);
    assert.ok(!d.includes(Buffer.from(INITIATOR.secret).toString('hex')));
  }
});
