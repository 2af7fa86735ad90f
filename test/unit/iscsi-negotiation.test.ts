import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoginStatus, RejectReason, Stage } from '../../src-main/iscsi/constants';
import { decodeTextKeys, encodeTextKeys } from '../../src-main/iscsi/text-keys';
import { chapResponse } from '../../src-main/iscsi/chap';
import {
  KEYS,
  type BooleanKeyDef,
  type NumericKeyDef,
  isWellFormedKeyName,
  lookupKey,
  parseBinary,
  parseNumber,
} from '../../src-main/iscsi/keys';
import {
  DEFAULT_TARGET_CONFIG,
  RFC_DEFAULTS,
  type CreateTargetNegotiationOptions,
  type NegotiationFailure,
  type TargetLoginResult,
  type TargetNegotiation,
  type TextPair,
  buildInitiatorOffer,
  checkTargetResponse,
  createInitiatorNegotiation,
  createTargetNegotiation,
  finishInitiatorLogin,
  finishLogin,
  initiatorReadyToTransit,
  negotiateLogin,
  negotiateText,
  parseSendTargetsResponse,
  parseTargetAddress,
  readLoginIdentity,
  unsolicitedDataAllowed,
} from '../../src-main/iscsi/negotiation';

// --- wire helpers: requests are bytes, responses are compared as bytes -------

const SEC = Stage.SECURITY_NEGOTIATION;
const OP = Stage.LOGIN_OPERATIONAL_NEGOTIATION;
const FFP = Stage.FULL_FEATURE_PHASE;

/** `key=value\0...` text → pairs, through the real codec. */
function wire(text: string): TextPair[] {
  return decodeTextKeys(Buffer.from(text, 'utf8'));
}

/** Response pairs → the exact bytes a Login/Text Response would carry. */
function bytes(pairs: readonly TextPair[]): Buffer {
  return encodeTextKeys(pairs);
}

function assertWire(pairs: readonly TextPair[], expected: string): void {
  assert.equal(bytes(pairs).toString('utf8'), expected);
  assert.deepEqual(bytes(pairs), Buffer.from(expected, 'utf8'));
}

function ok(r: TargetLoginResult): Extract<TargetLoginResult, { ok: true }> {
  if (!r.ok) assert.fail(`expected success, got ${r.code}: ${r.reason}`);
  return r;
}

function failed<T extends { ok: boolean }>(r: T): NegotiationFailure {
  if (r.ok) assert.fail('expected a failure');
  return r as unknown as NegotiationFailure;
}

const IDENTITY = 'InitiatorName=iqn.2005-03.org.open-iscsi:host1\0TargetName=iqn.2026-11.net.example:disk1\0SessionType=Normal\0';

/** A target that has finished security negotiation (AuthMethod=None) and is in operational negotiation. */
function atOperational(options: CreateTargetNegotiationOptions = {}): TargetNegotiation {
  const r = ok(negotiateLogin(createTargetNegotiation(options), { stage: SEC, transit: true, nsg: OP, pairs: wire(`${IDENTITY}AuthMethod=None\0`) }));
  assert.equal(r.canTransit, true);
  return r.state;
}

/** Negotiate one operational request on a fresh connection; return the response text with the target's own declaration stripped. */
function op(text: string, options: CreateTargetNegotiationOptions = {}): { text: string; state: TargetNegotiation } {
  const r = ok(negotiateLogin(atOperational(options), { stage: OP, transit: true, nsg: FFP, pairs: wire(text) }));
  const mine = `MaxRecvDataSegmentLength=${options.config?.MaxRecvDataSegmentLength ?? DEFAULT_TARGET_CONFIG.MaxRecvDataSegmentLength}\0`;
  const all = bytes(r.response).toString('utf8');
  assert.ok(all.endsWith(mine), `the target declares its own MaxRecvDataSegmentLength once: ${all}`);
  return { text: all.slice(0, -mine.length), state: r.state };
}

function deterministic(seed = 1): (n: number) => Uint8Array {
  let x = seed;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      out[i] = x >>> 24;
    }
    return out;
  };
}

// --- the key table ------------------------------------------------------------

test('the key table has the RFC result functions: InitialR2T OR, ImmediateData AND, DataPDUInOrder OR, DataSequenceInOrder OR', () => {
  const fn = (k: string) => (KEYS.get(k) as BooleanKeyDef).result;
  assert.equal(fn('InitialR2T'), 'OR');
  assert.equal(fn('ImmediateData'), 'AND');
  assert.equal(fn('DataPDUInOrder'), 'OR');
  assert.equal(fn('DataSequenceInOrder'), 'OR');
  const num = (k: string) => KEYS.get(k) as NumericKeyDef;
  assert.deepEqual([num('MaxBurstLength').result, num('FirstBurstLength').result, num('DefaultTime2Wait').result, num('DefaultTime2Retain').result], ['Minimum', 'Minimum', 'Maximum', 'Minimum']);
  assert.deepEqual([num('ErrorRecoveryLevel').min, num('ErrorRecoveryLevel').max], [0, 2]);
  assert.deepEqual([num('MaxRecvDataSegmentLength').min, num('MaxRecvDataSegmentLength').max, num('MaxRecvDataSegmentLength').default], [512, 2 ** 24 - 1, 8192]);
});

test('the key table has every RFC 7143 §13 key with scope, senders and phase', () => {
  for (const k of [
    'HeaderDigest', 'DataDigest', 'MaxConnections', 'SendTargets', 'TargetName', 'InitiatorName', 'TargetAlias', 'InitiatorAlias',
    'TargetAddress', 'TargetPortalGroupTag', 'InitialR2T', 'ImmediateData', 'MaxRecvDataSegmentLength', 'MaxBurstLength',
    'FirstBurstLength', 'DefaultTime2Wait', 'DefaultTime2Retain', 'MaxOutstandingR2T', 'DataPDUInOrder', 'DataSequenceInOrder',
    'ErrorRecoveryLevel', 'SessionType', 'AuthMethod', 'TaskReporting', 'iSCSIProtocolLevel', 'X#NodeArchitecture', 'RDMAExtensions',
    'CHAP_A', 'CHAP_I', 'CHAP_C', 'CHAP_N', 'CHAP_R',
  ]) {
    assert.ok(lookupKey(k), k);
  }
  assert.equal(lookupKey('HeaderDigest')?.scope, 'connection');
  assert.equal(lookupKey('MaxRecvDataSegmentLength')?.scope, 'connection');
  assert.equal(lookupKey('MaxBurstLength')?.scope, 'session');
  assert.equal(lookupKey('MaxRecvDataSegmentLength')?.declarative, true);
  assert.equal(lookupKey('TargetPortalGroupTag')?.senders, 'target');
  assert.equal(lookupKey('InitiatorName')?.senders, 'initiator');
  assert.equal(lookupKey('AuthMethod')?.phase, 'security');
  assert.equal(lookupKey('SessionType')?.phase, 'any');
  assert.equal(lookupKey('MaxBurstLength')?.use, 'LO');
  assert.equal(lookupKey('SendTargets')?.use, 'FFPO');
  assert.equal(lookupKey('headerdigest'), undefined, 'key names are case-sensitive (§6.1)');
});

test('numbers are decimal-constants or 0x hex-constants below 2**64 (§6.1)', () => {
  assert.equal(parseNumber('0'), 0n);
  assert.equal(parseNumber('262144'), 262144n);
  assert.equal(parseNumber('0x40000'), 262144n);
  assert.equal(parseNumber('0X40000'), 262144n);
  assert.equal(parseNumber('18446744073709551615'), 2n ** 64n - 1n);
  for (const bad of ['', '08192', '+1', '-1', '1.5', '0x', 'ten', ' 1', '18446744073709551616', '0x10000000000000000', '0bAAAA']) {
    assert.equal(parseNumber(bad), null, bad);
  }
  assert.equal(parseNumber('0bAAE=', { binary: true }), 1n, 'binary-values may be base64');
});

test('binary values accept 0x hex (odd digit counts get a leading 0 nibble) and 0b base64', () => {
  assert.deepEqual(parseBinary('0x0102'), Buffer.from([1, 2]));
  assert.deepEqual(parseBinary('0x102'), Buffer.from([1, 2]));
  assert.deepEqual(parseBinary('0bAQI='), Buffer.from([1, 2]));
  assert.equal(parseBinary('0bAQI'), null, 'base64 needs its padding');
  assert.equal(parseBinary('258'), null, 'a decimal constant is not a byte string');
  assert.equal(parseBinary(`0x${'00'.repeat(1025)}`), null, 'CHAP binary values are at most 1024 bytes');
});

test('key names are standard-labels or X# keys of at most 63 characters', () => {
  assert.ok(isWellFormedKeyName('MaxBurstLength'));
  assert.ok(isWellFormedKeyName('X-com.example.Foo'));
  assert.ok(isWellFormedKeyName('X#NodeArchitecture'));
  assert.ok(!isWellFormedKeyName('maxBurstLength'));
  assert.ok(!isWellFormedKeyName('Max Burst'));
  assert.ok(!isWellFormedKeyName('A'.repeat(64)));
});

// --- security stage, first response -----------------------------------------

test('the first response of a normal session answers AuthMethod and carries TargetPortalGroupTag (§13.9)', () => {
  const r = ok(negotiateLogin(createTargetNegotiation(), { stage: SEC, transit: true, nsg: OP, pairs: wire(`${IDENTITY}AuthMethod=None\0`) }));
  assertWire(r.response, 'AuthMethod=None\0TargetPortalGroupTag=1\0');
  assert.equal(r.canTransit, true);
  assert.equal(r.state.stage, 'operational');
  assert.equal(r.state.identity?.InitiatorName, 'iqn.2005-03.org.open-iscsi:host1');
});

test('the first response carries TargetAlias when one is configured, and only once', () => {
  const t = createTargetNegotiation({ config: { TargetAlias: 'Bob disk', TargetPortalGroupTag: 7 } });
  const r1 = ok(negotiateLogin(t, { stage: SEC, transit: false, pairs: wire(`${IDENTITY}AuthMethod=None\0`) }));
  assertWire(r1.response, 'AuthMethod=None\0TargetPortalGroupTag=7\0TargetAlias=Bob disk\0');
  const r2 = ok(negotiateLogin(r1.state, { stage: SEC, transit: true, nsg: OP, pairs: [] }));
  assertWire(r2.response, '');
});

test('operational negotiation can start in the first request (no security stage)', () => {
  const r = ok(negotiateLogin(createTargetNegotiation(), { stage: OP, transit: true, nsg: FFP, pairs: wire(`${IDENTITY}HeaderDigest=None\0`) }));
  assertWire(r.response, 'HeaderDigest=None\0TargetPortalGroupTag=1\0MaxRecvDataSegmentLength=262144\0');
});

// --- list negotiation ----------------------------------------------------------

test('list negotiation picks the first offered value the target supports', () => {
  assert.equal(op('HeaderDigest=CRC32C,None\0DataDigest=None,CRC32C\0').text, 'HeaderDigest=CRC32C\0DataDigest=None\0');
  assert.equal(op('HeaderDigest=Y-com.example.Digest,CRC32C\0').text, 'HeaderDigest=CRC32C\0', 'unknown values are skipped');
  const only = op('HeaderDigest=CRC32C,None\0', { config: { HeaderDigest: ['None'] } });
  assert.equal(only.text, 'HeaderDigest=None\0');
});

test('a list with no supported value is answered Reject, and a digest the target requires then fails the login', () => {
  const r = op('HeaderDigest=None\0', { config: { HeaderDigest: ['CRC32C'] } });
  assert.equal(r.text, 'HeaderDigest=Reject\0');
  const f = failed(finishLogin(r.state));
  assert.equal(f.code, 'REQUIRED_VALUE_NOT_NEGOTIATED');
  assert.equal(f.status, 'INITIATOR_ERROR');
});

test('a required digest is met when the initiator offers it', () => {
  const r = op('HeaderDigest=None,CRC32C\0DataDigest=CRC32C\0', { config: { HeaderDigest: ['CRC32C'], DataDigest: ['CRC32C'] } });
  assert.equal(r.text, 'HeaderDigest=CRC32C\0DataDigest=CRC32C\0');
  const f = finishLogin(r.state);
  assert.ok(f.ok);
  assert.equal(f.params.HeaderDigest, 'CRC32C');
  assert.equal(f.params.DataDigest, 'CRC32C');
});

test('TaskReporting picks the first offered semantics the target implements', () => {
  assert.equal(op('TaskReporting=FastAbort,RFC3720\0').text, 'TaskReporting=RFC3720\0');
  assert.equal(op('TaskReporting=FastAbort,RFC3720\0', { config: { TaskReporting: ['RFC3720', 'FastAbort'] } }).text, 'TaskReporting=FastAbort\0');
});

// --- booleans ---------------------------------------------------------------------

test('InitialR2T is OR: Yes from either side gives Yes', () => {
  assert.equal(op('InitialR2T=Yes\0').text, 'InitialR2T=Yes\0', 'initiator Yes, Spindle No');
  assert.equal(op('InitialR2T=No\0').text, 'InitialR2T=No\0', 'both No');
  assert.equal(op('InitialR2T=No\0', { config: { InitialR2T: true } }).text, 'InitialR2T=Yes\0', 'target Yes');
});

test('ImmediateData is AND: No from either side gives No', () => {
  assert.equal(op('ImmediateData=Yes\0').text, 'ImmediateData=Yes\0');
  assert.equal(op('ImmediateData=No\0').text, 'ImmediateData=No\0');
  assert.equal(op('ImmediateData=Yes\0', { config: { ImmediateData: false } }).text, 'ImmediateData=No\0');
});

test('DataPDUInOrder and DataSequenceInOrder are OR', () => {
  assert.equal(op('DataPDUInOrder=No\0DataSequenceInOrder=No\0').text, 'DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0');
  const lax = { config: { DataPDUInOrder: false, DataSequenceInOrder: false } };
  assert.equal(op('DataPDUInOrder=No\0DataSequenceInOrder=Yes\0', lax).text, 'DataPDUInOrder=No\0DataSequenceInOrder=Yes\0');
});

test('booleans are exactly Yes or No (case-sensitive): anything else is answered Reject', () => {
  assert.equal(op('InitialR2T=yes\0ImmediateData=1\0').text, 'InitialR2T=Reject\0ImmediateData=Reject\0');
});

// --- numbers ---------------------------------------------------------------------

test('MaxBurstLength is the minimum of both offers', () => {
  assert.equal(op('MaxBurstLength=1048576\0').text, 'MaxBurstLength=1048576\0');
  assert.equal(op('MaxBurstLength=16777215\0').text, 'MaxBurstLength=16773120\0', 'Spindle caps at 16 MiB - 4 KiB');
  assert.equal(op('MaxBurstLength=1048576\0', { config: { MaxBurstLength: 65536 } }).text, 'MaxBurstLength=65536\0');
});

test('DefaultTime2Wait is the maximum of both offers, DefaultTime2Retain the minimum', () => {
  assert.equal(op('DefaultTime2Wait=0\0DefaultTime2Retain=0\0').text, 'DefaultTime2Wait=2\0DefaultTime2Retain=0\0');
  assert.equal(op('DefaultTime2Wait=10\0DefaultTime2Retain=3600\0').text, 'DefaultTime2Wait=10\0DefaultTime2Retain=20\0');
});

test('ErrorRecoveryLevel, MaxConnections and MaxOutstandingR2T are minimums: Spindle answers 0, 1, 1', () => {
  assert.equal(op('ErrorRecoveryLevel=2\0MaxConnections=8\0MaxOutstandingR2T=16\0').text, 'ErrorRecoveryLevel=0\0MaxConnections=1\0MaxOutstandingR2T=1\0');
});

test('numbers accept decimal and 0x hex (§6.1)', () => {
  assert.equal(op('MaxBurstLength=0x40000\0FirstBurstLength=0X10000\0').text, 'MaxBurstLength=262144\0FirstBurstLength=65536\0');
});

test('malformed or out-of-range numbers are answered Reject', () => {
  const cases = ['-1', '08192', '1.5', '0x', '', '4294967296', '99999999999999999999999', '511', '16777216'];
  for (const v of cases) {
    assert.equal(op(`MaxBurstLength=${v}\0`).text, 'MaxBurstLength=Reject\0', `MaxBurstLength=${v}`);
  }
  assert.equal(op('ErrorRecoveryLevel=3\0').text, 'ErrorRecoveryLevel=Reject\0');
  assert.equal(op('MaxConnections=0\0').text, 'MaxConnections=Reject\0');
  assert.equal(op('DefaultTime2Wait=3601\0').text, 'DefaultTime2Wait=Reject\0');
  assert.equal(op('iSCSIProtocolLevel=32\0').text, 'iSCSIProtocolLevel=Reject\0');
});

test('a rejected key keeps its RFC default', () => {
  const r = op('MaxBurstLength=16777216\0');
  const f = finishLogin(r.state);
  assert.ok(f.ok);
  assert.equal(f.params.MaxBurstLength, RFC_DEFAULTS.MaxBurstLength);
});

test('iSCSIProtocolLevel is the minimum: Spindle speaks level 1 (RFC 7143)', () => {
  assert.equal(op('iSCSIProtocolLevel=2\0').text, 'iSCSIProtocolLevel=1\0');
  assert.equal(op('iSCSIProtocolLevel=0\0').text, 'iSCSIProtocolLevel=0\0');
});

// --- FirstBurstLength (§13.14) ------------------------------------------------------

test('FirstBurstLength > MaxBurstLength is clamped to MaxBurstLength (§13.14), whatever the key order', () => {
  assert.equal(op('FirstBurstLength=1048576\0MaxBurstLength=131072\0').text, 'FirstBurstLength=131072\0MaxBurstLength=131072\0');
  assert.equal(op('MaxBurstLength=131072\0FirstBurstLength=1048576\0').text, 'MaxBurstLength=131072\0FirstBurstLength=131072\0');
});

test('FirstBurstLength is the minimum of the offer and the target\'s 256 KiB', () => {
  assert.equal(op('FirstBurstLength=16777215\0MaxBurstLength=16777215\0').text, 'FirstBurstLength=262144\0MaxBurstLength=16773120\0');
  assert.equal(op('FirstBurstLength=8192\0').text, 'FirstBurstLength=8192\0');
});

test('FirstBurstLength is Irrelevant when InitialR2T=Yes and ImmediateData=No', () => {
  const r = op('InitialR2T=Yes\0ImmediateData=No\0FirstBurstLength=65536\0');
  assert.equal(r.text, 'InitialR2T=Yes\0ImmediateData=No\0FirstBurstLength=Irrelevant\0');
  const f = finishLogin(r.state);
  assert.ok(f.ok);
  assert.equal(unsolicitedDataAllowed(f.params), false);
  // Either side turning unsolicited data back on makes it relevant again.
  assert.equal(op('InitialR2T=No\0ImmediateData=No\0FirstBurstLength=65536\0').text, 'InitialR2T=No\0ImmediateData=No\0FirstBurstLength=65536\0');
});

test('finishLogin caps a FirstBurstLength negotiated before a smaller MaxBurstLength', () => {
  const s1 = atOperational();
  const r1 = ok(negotiateLogin(s1, { stage: OP, transit: false, pairs: wire('FirstBurstLength=262144\0') }));
  const r2 = ok(negotiateLogin(r1.state, { stage: OP, transit: true, nsg: FFP, pairs: wire('MaxBurstLength=65536\0') }));
  const f = finishLogin(r2.state);
  assert.ok(f.ok);
  assert.equal(f.params.MaxBurstLength, 65536);
  assert.equal(f.params.FirstBurstLength, 65536);
});

// --- declaratives ---------------------------------------------------------------

test('MaxRecvDataSegmentLength is declared, not negotiated: recorded per direction, and the target declares its own', () => {
  const r = ok(negotiateLogin(atOperational(), { stage: OP, transit: true, nsg: FFP, pairs: wire('MaxRecvDataSegmentLength=65536\0') }));
  assertWire(r.response, 'MaxRecvDataSegmentLength=262144\0');
  const f = finishLogin(r.state);
  assert.ok(f.ok);
  assert.deepEqual(f.params.MaxRecvDataSegmentLength, { initiator: 65536, target: 262144 });
});

test('the target declares MaxRecvDataSegmentLength once per connection even when the initiator declares none', () => {
  const s = atOperational({ config: { MaxRecvDataSegmentLength: 1048576 } });
  const r1 = ok(negotiateLogin(s, { stage: OP, transit: false, pairs: wire('HeaderDigest=None\0') }));
  assertWire(r1.response, 'HeaderDigest=None\0MaxRecvDataSegmentLength=1048576\0');
  const r2 = ok(negotiateLogin(r1.state, { stage: OP, transit: true, nsg: FFP, pairs: wire('DataDigest=None\0') }));
  assertWire(r2.response, 'DataDigest=None\0');
  const f = finishLogin(r2.state);
  assert.ok(f.ok);
  assert.deepEqual(f.params.MaxRecvDataSegmentLength, { initiator: 8192, target: 1048576 });
});

test('a malformed MaxRecvDataSegmentLength declaration is answered Reject and the default stays', () => {
  const r = ok(negotiateLogin(atOperational(), { stage: OP, transit: true, nsg: FFP, pairs: wire('MaxRecvDataSegmentLength=256\0') }));
  assertWire(r.response, 'MaxRecvDataSegmentLength=Reject\0MaxRecvDataSegmentLength=262144\0');
  const f = finishLogin(r.state);
  assert.ok(f.ok);
  assert.equal(f.params.MaxRecvDataSegmentLength.initiator, 8192);
});

test('RFC defaults hold for every key nobody negotiated', () => {
  const r = ok(negotiateLogin(createTargetNegotiation(), { stage: SEC, transit: true, nsg: FFP, pairs: wire(`${IDENTITY}AuthMethod=None\0`) }));
  const f = finishLogin(r.state);
  assert.ok(f.ok);
  assert.deepEqual(f.params, RFC_DEFAULTS);
});

// --- unknown, obsolete, iSER ---------------------------------------------------------

test('an unknown key is answered NotUnderstood (X- and unregistered X# keys too)', () => {
  assert.equal(
    op('Frobnicate=Yes\0X-com.example.Turbo=1\0X#Unregistered=1\0').text,
    'Frobnicate=NotUnderstood\0X-com.example.Turbo=NotUnderstood\0X#Unregistered=NotUnderstood\0',
  );
});

test('an unknown key is answered NotUnderstood in security negotiation too', () => {
  const r = ok(negotiateLogin(createTargetNegotiation(), { stage: SEC, transit: false, pairs: wire(`${IDENTITY}X-vendor.Hello=1\0`) }));
  assertWire(r.response, 'X-vendor.Hello=NotUnderstood\0TargetPortalGroupTag=1\0');
});

test('X#NodeArchitecture is a known declarative: recorded, not answered', () => {
  const r = op('X#NodeArchitecture=ExampleOS/v1.0,Example.com/v1.2.3\0');
  assert.equal(r.text, '');
  assert.equal(r.state.peerDeclared['X#NodeArchitecture'], 'ExampleOS/v1.0,Example.com/v1.2.3');
});

test('obsolete marker keys are answered Reject (§13.25)', () => {
  assert.equal(op('OFMarker=No\0IFMarker=No\0OFMarkInt=2048~8192\0IFMarkInt=2048\0').text, 'OFMarker=Reject\0IFMarker=Reject\0OFMarkInt=Reject\0IFMarkInt=Reject\0');
});

test('iSER keys are known but irrelevant on TCP: RDMAExtensions=No, the rest Irrelevant', () => {
  assert.equal(
    op('RDMAExtensions=Yes\0InitiatorRecvDataSegmentLength=65536\0MaxOutstandingUnexpectedPDUs=0\0').text,
    'RDMAExtensions=No\0InitiatorRecvDataSegmentLength=Irrelevant\0MaxOutstandingUnexpectedPDUs=Irrelevant\0',
  );
});

// --- protocol errors -----------------------------------------------------------------

test('a key repeated within a request is a protocol error (Login reject 0x0200)', () => {
  const s = atOperational();
  const f = failed(negotiateLogin(s, { stage: OP, transit: false, pairs: [['MaxBurstLength', '65536'], ['MaxBurstLength', '65536']] }));
  assert.equal(f.code, 'REPEATED_KEY');
  assert.equal(f.status, 'INITIATOR_ERROR');
  assert.deepEqual(LoginStatus[f.status], { statusClass: 2, statusDetail: 0x00 });
});

test('a key repeated in a later Login Request of the same login is a protocol error (§6.2)', () => {
  const s = atOperational();
  const r = ok(negotiateLogin(s, { stage: OP, transit: false, pairs: wire('MaxBurstLength=65536\0') }));
  const f = failed(negotiateLogin(r.state, { stage: OP, transit: false, pairs: wire('MaxBurstLength=131072\0') }));
  assert.equal(f.code, 'REPEATED_KEY');
  assert.equal(f.key, 'MaxBurstLength');
});

test('an operational key during security negotiation is a protocol error', () => {
  const f = failed(negotiateLogin(createTargetNegotiation(), { stage: SEC, transit: false, pairs: wire(`${IDENTITY}MaxBurstLength=65536\0`) }));
  assert.equal(f.code, 'WRONG_STAGE');
  assert.equal(f.status, 'INITIATOR_ERROR');
});

test('AuthMethod and CHAP keys during operational negotiation are protocol errors', () => {
  const fresh = createTargetNegotiation();
  assert.equal(failed(negotiateLogin(fresh, { stage: OP, transit: false, pairs: wire(`${IDENTITY}AuthMethod=None\0`) })).code, 'WRONG_STAGE');
  assert.equal(failed(negotiateLogin(atOperational(), { stage: OP, transit: false, pairs: wire('CHAP_A=5\0') })).code, 'WRONG_STAGE');
});

test('keys only a target may send are a protocol error from the initiator', () => {
  for (const text of ['TargetPortalGroupTag=1\0', 'TargetAlias=x\0', 'TargetAddress=10.0.0.1\0']) {
    const f = failed(negotiateLogin(atOperational(), { stage: OP, transit: false, pairs: wire(text) }));
    assert.equal(f.code, 'WRONG_SENDER', text);
    assert.equal(f.status, 'INITIATOR_ERROR');
  }
});

test('an initiator saying NotUnderstood to a key the target declared is tolerated', () => {
  const s = atOperational({ config: { TargetAlias: 'x' } });
  const r = ok(negotiateLogin(s, { stage: OP, transit: false, pairs: wire('TargetAlias=NotUnderstood\0') }));
  assertWire(r.response, 'MaxRecvDataSegmentLength=262144\0');
});

test('SendTargets during login is a protocol error', () => {
  const f = failed(negotiateLogin(atOperational(), { stage: OP, transit: false, pairs: wire('SendTargets=All\0') }));
  assert.equal(f.code, 'WRONG_STAGE');
});

test('a reserved answer used as an offer is a protocol error (§6.2)', () => {
  for (const v of ['Reject', 'Irrelevant', 'NotUnderstood']) {
    const f = failed(negotiateLogin(atOperational(), { stage: OP, transit: false, pairs: wire(`HeaderDigest=${v}\0`) }));
    assert.equal(f.code, 'RESERVED_VALUE', v);
  }
  assert.equal(op('HeaderDigest=CRC32C,Reject\0').text, 'HeaderDigest=Reject\0', 'a reserved word inside a list makes the list malformed');
});

test('a malformed key name is a protocol error', () => {
  const f = failed(negotiateLogin(atOperational(), { stage: OP, transit: false, pairs: [['lowercase', 'x']] }));
  assert.equal(f.code, 'MALFORMED_KEY');
});

test('a leading-only key on a secondary connection is a protocol error; connection keys are fine', () => {
  const opts = { leading: false };
  const f = failed(negotiateLogin(atOperational(opts), { stage: OP, transit: false, pairs: wire('MaxBurstLength=65536\0') }));
  assert.equal(f.code, 'LEADING_ONLY');
  const r = ok(negotiateLogin(atOperational(opts), { stage: OP, transit: true, nsg: FFP, pairs: wire('HeaderDigest=CRC32C\0MaxRecvDataSegmentLength=65536\0') }));
  assertWire(r.response, 'HeaderDigest=CRC32C\0MaxRecvDataSegmentLength=262144\0');
});

test('a secondary connection keeps the session\'s leading-only values', () => {
  const session = { ...RFC_DEFAULTS, MaxBurstLength: 1048576, InitialR2T: false };
  const s = atOperational({ leading: false, sessionParams: session });
  const r = ok(negotiateLogin(s, { stage: OP, transit: true, nsg: FFP, pairs: wire('HeaderDigest=CRC32C\0') }));
  const f = finishLogin(r.state);
  assert.ok(f.ok);
  assert.equal(f.params.MaxBurstLength, 1048576);
  assert.equal(f.params.InitialR2T, false);
  assert.equal(f.params.HeaderDigest, 'CRC32C');
});

test('SessionType and TargetName after the first Login Request are protocol errors', () => {
  const f = failed(negotiateLogin(atOperational(), { stage: OP, transit: false, pairs: wire('SessionType=Discovery\0') }));
  assert.equal(f.code, 'REPEATED_KEY', 'it was in the first request');
  const d = ok(negotiateLogin(createTargetNegotiation(), { stage: SEC, transit: false, pairs: wire('InitiatorName=iqn.2026-11.net.example:h\0SessionType=Discovery\0') }));
  assert.equal(failed(negotiateLogin(d.state, { stage: SEC, transit: false, pairs: wire('TargetName=iqn.2026-11.net.example:d\0') })).code, 'LATE_DECLARATION');
});

test('going back to security negotiation, or an impossible NSG, is a protocol error', () => {
  const f = failed(negotiateLogin(atOperational(), { stage: SEC, transit: false, pairs: [] }));
  assert.equal(f.code, 'STAGE_ORDER');
  const g = failed(negotiateLogin(createTargetNegotiation(), { stage: SEC, transit: true, nsg: 2, pairs: wire(IDENTITY) }));
  assert.equal(g.code, 'STAGE_ORDER');
  const h = failed(negotiateLogin(createTargetNegotiation(), { stage: 3, transit: false, pairs: wire(IDENTITY) }));
  assert.equal(h.code, 'STAGE_ORDER');
});

// --- identity --------------------------------------------------------------------

test('a first Login Request without InitiatorName is "Missing parameter" (0x0207)', () => {
  const f = failed(negotiateLogin(createTargetNegotiation(), { stage: SEC, transit: false, pairs: wire('TargetName=iqn.2026-11.net.example:disk1\0AuthMethod=None\0') }));
  assert.equal(f.code, 'MISSING_INITIATOR_NAME');
  assert.deepEqual(LoginStatus[f.status], { statusClass: 2, statusDetail: 0x07 });
});

test('a normal session without TargetName is "Missing parameter" (0x0207); a discovery session needs none', () => {
  const f = failed(negotiateLogin(createTargetNegotiation(), { stage: SEC, transit: false, pairs: wire('InitiatorName=iqn.2026-11.net.example:h\0') }));
  assert.equal(f.code, 'MISSING_TARGET_NAME');
  assert.equal(f.status, 'MISSING_PARAMETER');
  const id = readLoginIdentity(wire('InitiatorName=IQN.2026-11.NET.EXAMPLE:H\0SessionType=Discovery\0'));
  assert.ok(id.ok);
  assert.equal(id.identity.InitiatorName, 'iqn.2026-11.net.example:h', 'names are compared normalized');
  assert.equal(id.identity.TargetName, undefined);
});

test('an unknown SessionType, or discovery when it is turned off, is "Session type not supported" (0x0209)', () => {
  const f = failed(readLoginIdentity(wire('InitiatorName=iqn.2026-11.net.example:h\0SessionType=Fast\0')));
  assert.equal(f.status, 'SESSION_TYPE_NOT_SUPPORTED');
  assert.deepEqual(LoginStatus[f.status], { statusClass: 2, statusDetail: 0x09 });
  const g = failed(negotiateLogin(createTargetNegotiation({ config: { allowDiscovery: false } }), { stage: SEC, transit: false, pairs: wire('InitiatorName=iqn.2026-11.net.example:h\0SessionType=Discovery\0') }));
  assert.equal(g.code, 'DISCOVERY_DISABLED');
});

test('odd but usable initiator names are accepted with a warning; names with spaces are not', () => {
  const id = readLoginIdentity(wire(`InitiatorName=iqn.1991-05.com.microsoft:desk_top\0TargetName=iqn.2026-11.net.example:disk1\0`));
  assert.ok(id.ok);
  assert.equal(id.identity.warnings.length, 1);
  const f = failed(readLoginIdentity(wire('InitiatorName=iqn.2026-11.net.example:my host\0TargetName=iqn.2026-11.net.example:disk1\0')));
  assert.equal(f.code, 'BAD_INITIATOR_NAME');
});

// --- discovery sessions ---------------------------------------------------------------

test('SessionType=Discovery makes session keys Irrelevant and sends no TargetPortalGroupTag', () => {
  const t = createTargetNegotiation();
  const r1 = ok(negotiateLogin(t, { stage: SEC, transit: true, nsg: OP, pairs: wire('InitiatorName=iqn.2026-11.net.example:h\0SessionType=Discovery\0AuthMethod=None\0') }));
  assertWire(r1.response, 'AuthMethod=None\0');
  const r2 = ok(
    negotiateLogin(r1.state, {
      stage: OP,
      transit: true,
      nsg: FFP,
      pairs: wire('HeaderDigest=None\0InitialR2T=No\0ImmediateData=Yes\0MaxBurstLength=262144\0FirstBurstLength=65536\0MaxConnections=1\0DefaultTime2Wait=2\0ErrorRecoveryLevel=0\0MaxRecvDataSegmentLength=32768\0'),
    }),
  );
  assertWire(
    r2.response,
    'HeaderDigest=None\0InitialR2T=Irrelevant\0ImmediateData=Irrelevant\0MaxBurstLength=Irrelevant\0FirstBurstLength=Irrelevant\0MaxConnections=Irrelevant\0DefaultTime2Wait=2\0ErrorRecoveryLevel=0\0MaxRecvDataSegmentLength=262144\0',
  );
  const f = finishLogin(r2.state);
  assert.ok(f.ok);
  assert.equal(f.params.SessionType, 'Discovery');
  assert.equal(f.params.MaxConnections, 1);
  assert.deepEqual(f.params.MaxRecvDataSegmentLength, { initiator: 32768, target: 262144 });
});

// --- authentication through the negotiator ---------------------------------------------

const CHAP_USER = { name: 'alice', secret: 'alice-secret-12345' };
const TARGET_USER = { name: 'target1', secret: 'target-secret-67890' };

test('a target that requires CHAP fails an initiator that skips security negotiation (0x0201)', () => {
  const t = createTargetNegotiation({ auth: { method: 'CHAP', initiator: CHAP_USER } });
  const f = failed(negotiateLogin(t, { stage: OP, transit: true, nsg: FFP, pairs: wire(IDENTITY) }));
  assert.equal(f.code, 'AUTH_REQUIRED');
  assert.deepEqual(LoginStatus[f.status], { statusClass: 2, statusDetail: 0x01 });
});

test('a target that requires CHAP fails an initiator offering only AuthMethod=None, or leaving without any', () => {
  const t = createTargetNegotiation({ auth: { method: 'CHAP', initiator: CHAP_USER } });
  assert.equal(failed(negotiateLogin(t, { stage: SEC, transit: false, pairs: wire(`${IDENTITY}AuthMethod=None\0`) })).code, 'AUTH_METHOD_UNAVAILABLE');
  assert.equal(failed(negotiateLogin(t, { stage: SEC, transit: true, nsg: OP, pairs: wire(IDENTITY) })).code, 'AUTH_REQUIRED');
});

test('an initiator offering only CHAP to a target without CHAP users fails with Authentication failure', () => {
  const f = failed(negotiateLogin(createTargetNegotiation(), { stage: SEC, transit: false, pairs: wire(`${IDENTITY}AuthMethod=CHAP\0`) }));
  assert.equal(f.code, 'AUTH_METHOD_UNAVAILABLE');
  assert.equal(f.status, 'AUTHENTICATION_FAILURE');
});

test('CHAP through negotiateLogin: AuthMethod, CHAP_A, challenge, response, mutual answer, then transit', () => {
  const t = createTargetNegotiation({ auth: { method: 'CHAP', initiator: CHAP_USER, mutual: TARGET_USER }, random: deterministic(7) });
  const r1 = ok(negotiateLogin(t, { stage: SEC, transit: true, nsg: OP, pairs: wire(`${IDENTITY}AuthMethod=None,CHAP\0`) }));
  assertWire(r1.response, 'AuthMethod=CHAP\0TargetPortalGroupTag=1\0');
  assert.equal(r1.canTransit, false, 'not before CHAP completes');

  const r2 = ok(negotiateLogin(r1.state, { stage: SEC, transit: true, nsg: OP, pairs: wire('CHAP_A=7,5\0') }));
  const challenge = new Map(r2.response);
  assert.equal(challenge.get('CHAP_A'), '5');
  assert.match(challenge.get('CHAP_C') ?? '', /^0x[0-9a-f]{32}$/);
  assert.equal(r2.canTransit, false);

  const id = Number(challenge.get('CHAP_I'));
  const c = Buffer.from((challenge.get('CHAP_C') ?? '').slice(2), 'hex');
  const r = chapResponse(id, CHAP_USER.secret, c).toString('hex');
  const myC = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const r3 = ok(negotiateLogin(r2.state, { stage: SEC, transit: true, nsg: OP, pairs: wire(`CHAP_N=alice\0CHAP_R=0x${r}\0CHAP_I=9\0CHAP_C=0x${myC.toString('hex')}\0`) }));
  assertWire(r3.response, `CHAP_N=target1\0CHAP_R=0x${chapResponse(9, TARGET_USER.secret, myC).toString('hex')}\0`);
  assert.equal(r3.canTransit, true);
  assert.equal(r3.state.stage, 'operational');
});

test('a wrong CHAP response through negotiateLogin is Authentication failure, and the reason holds no secret', () => {
  const t = createTargetNegotiation({ auth: { method: 'CHAP', initiator: CHAP_USER }, random: deterministic(3) });
  const r1 = ok(negotiateLogin(t, { stage: SEC, transit: false, pairs: wire(`${IDENTITY}AuthMethod=CHAP\0`) }));
  const r2 = ok(negotiateLogin(r1.state, { stage: SEC, transit: false, pairs: wire('CHAP_A=5\0') }));
  const f = failed(negotiateLogin(r2.state, { stage: SEC, transit: true, nsg: OP, pairs: wire(`CHAP_N=alice\0CHAP_R=0x${'ab'.repeat(16)}\0`) }));
  assert.equal(f.status, 'AUTHENTICATION_FAILURE');
  assert.equal(f.chap, 'WRONG_RESPONSE');
  assert.ok(!f.reason.includes(CHAP_USER.secret));
});

test('CHAP keys before AuthMethod=CHAP was agreed are Authentication failure', () => {
  const f = failed(negotiateLogin(createTargetNegotiation(), { stage: SEC, transit: false, pairs: wire(`${IDENTITY}CHAP_A=5\0`) }));
  assert.equal(f.code, 'AUTH_FAILED');
  assert.equal(f.status, 'AUTHENTICATION_FAILURE');
});

// --- Full Feature Phase Text negotiation --------------------------------------------------

function fullFeature(): TargetNegotiation {
  const r = ok(negotiateLogin(atOperational(), { stage: OP, transit: true, nsg: FFP, pairs: wire('MaxRecvDataSegmentLength=65536\0') }));
  const f = finishLogin(r.state);
  assert.ok(f.ok);
  return f.state;
}

test('SendTargets in a Text Request is handed to the caller', () => {
  const r = negotiateText(fullFeature(), wire('SendTargets=All\0'));
  assert.ok(r.ok);
  assert.equal(r.sendTargets, 'All');
  assertWire(r.response, '');
  const e = negotiateText(fullFeature(), wire('SendTargets=\0'));
  assert.ok(e.ok);
  assert.equal(e.sendTargets, '');
});

test('MaxRecvDataSegmentLength may be redeclared in a Text Request; unknown keys get NotUnderstood', () => {
  const r = negotiateText(fullFeature(), wire('MaxRecvDataSegmentLength=131072\0X-foo=1\0'));
  assert.ok(r.ok);
  assertWire(r.response, 'X-foo=NotUnderstood\0');
  assert.equal(r.state.params.MaxRecvDataSegmentLength.initiator, 131072);
  const again = negotiateText(r.state, wire('MaxRecvDataSegmentLength=8192\0'), { newSequence: true });
  assert.ok(again.ok, 'a new text sequence may negotiate it again');
  const repeat = failed(negotiateText(again.state, wire('MaxRecvDataSegmentLength=8192\0'), { newSequence: false }));
  assert.equal(repeat.code, 'REPEATED_KEY');
});

test('a login-only key in a Text Request is a protocol error answered with a Reject PDU (reason 0x04)', () => {
  const f = failed(negotiateText(fullFeature(), wire('MaxBurstLength=65536\0')));
  assert.equal(f.code, 'WRONG_STAGE');
  assert.equal(f.rejectReason, RejectReason.PROTOCOL_ERROR);
  assert.equal(failed(negotiateText(fullFeature(), wire('HeaderDigest=CRC32C\0'))).code, 'WRONG_STAGE');
});

test('Text negotiation before the login finished, or a Login Request after it, is refused', () => {
  assert.equal(failed(negotiateText(atOperational(), wire('SendTargets=All\0'))).code, 'STAGE_ORDER');
  assert.equal(failed(negotiateLogin(fullFeature(), { stage: OP, transit: false, pairs: [] })).code, 'STAGE_ORDER');
});

// --- realistic offers ------------------------------------------------------------------------

test('an open-iscsi default offer gets Spindle\'s large, fast parameters, byte for byte', () => {
  const r = op(
    'HeaderDigest=None\0DataDigest=None\0MaxRecvDataSegmentLength=262144\0InitialR2T=No\0ImmediateData=Yes\0MaxBurstLength=16776192\0FirstBurstLength=262144\0MaxConnections=1\0DefaultTime2Wait=2\0DefaultTime2Retain=0\0MaxOutstandingR2T=1\0DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0ErrorRecoveryLevel=0\0',
  );
  assert.equal(
    r.text,
    'HeaderDigest=None\0DataDigest=None\0InitialR2T=No\0ImmediateData=Yes\0MaxBurstLength=16773120\0FirstBurstLength=262144\0MaxConnections=1\0DefaultTime2Wait=2\0DefaultTime2Retain=0\0MaxOutstandingR2T=1\0DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0ErrorRecoveryLevel=0\0',
  );
  const f = finishLogin(r.state);
  assert.ok(f.ok);
  assert.deepEqual(f.params, {
    ...RFC_DEFAULTS,
    InitialR2T: false,
    ImmediateData: true,
    MaxRecvDataSegmentLength: { initiator: 262144, target: 262144 },
    MaxBurstLength: 16773120,
    FirstBurstLength: 262144,
    DefaultTime2Retain: 0,
  });
});

test('a cautious initiator (InitialR2T=Yes, ImmediateData=No, small segments, digests) gets exactly that', () => {
  const r = op('HeaderDigest=CRC32C\0DataDigest=CRC32C\0InitialR2T=Yes\0ImmediateData=No\0MaxRecvDataSegmentLength=4096\0MaxBurstLength=65536\0FirstBurstLength=65536\0');
  assert.equal(r.text, 'HeaderDigest=CRC32C\0DataDigest=CRC32C\0InitialR2T=Yes\0ImmediateData=No\0MaxBurstLength=65536\0FirstBurstLength=Irrelevant\0');
  const f = finishLogin(r.state);
  assert.ok(f.ok);
  assert.equal(f.params.MaxRecvDataSegmentLength.initiator, 4096);
  assert.equal(f.params.InitialR2T, true);
  assert.equal(f.params.ImmediateData, false);
});

// --- initiator side ----------------------------------------------------------------------------

const INITIATOR = { InitiatorName: 'iqn.2026-11.net.example:spindle', TargetName: 'iqn.2026-11.net.example:disk1', SessionType: 'Normal' as const };

test('the initiator\'s first offer carries its identity and AuthMethod', () => {
  const i = createInitiatorNegotiation({ config: INITIATOR });
  const o = buildInitiatorOffer(i, SEC);
  assertWire(o.pairs, 'InitiatorName=iqn.2026-11.net.example:spindle\0TargetName=iqn.2026-11.net.example:disk1\0SessionType=Normal\0AuthMethod=None\0');
  const chap = createInitiatorNegotiation({ config: { ...INITIATOR, chap: { credentials: CHAP_USER } } });
  assert.equal(new Map(buildInitiatorOffer(chap, SEC).pairs).get('AuthMethod'), 'CHAP,None');
});

test('an initiator without CHAP asks to leave security negotiation in its first request; with CHAP it waits', () => {
  const plain = buildInitiatorOffer(createInitiatorNegotiation({ config: INITIATOR }), SEC).state;
  assert.equal(initiatorReadyToTransit(plain), true);
  const chap = buildInitiatorOffer(createInitiatorNegotiation({ config: { ...INITIATOR, chap: { credentials: CHAP_USER } } }), SEC).state;
  assert.equal(initiatorReadyToTransit(chap), false);
});

test('the initiator offers large, fast operational values and declares its MaxRecvDataSegmentLength', () => {
  let i = createInitiatorNegotiation({ config: INITIATOR });
  i = buildInitiatorOffer(i, SEC).state;
  const o = buildInitiatorOffer(i, OP);
  assertWire(
    o.pairs,
    'HeaderDigest=None,CRC32C\0DataDigest=None,CRC32C\0InitialR2T=No\0ImmediateData=Yes\0MaxBurstLength=16773120\0FirstBurstLength=262144\0MaxConnections=1\0MaxOutstandingR2T=1\0DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0DefaultTime2Wait=2\0DefaultTime2Retain=20\0ErrorRecoveryLevel=0\0MaxRecvDataSegmentLength=262144\0',
  );
});

function initiatorAtOperational(config: Partial<Parameters<typeof createInitiatorNegotiation>[0]['config']> = {}) {
  let i = createInitiatorNegotiation({ config: { ...INITIATOR, ...config } });
  i = buildInitiatorOffer(i, SEC).state;
  const r = checkTargetResponse(i, { stage: SEC, transit: true, nsg: OP, pairs: wire('AuthMethod=None\0TargetPortalGroupTag=1\0') });
  assert.ok(r.ok);
  return buildInitiatorOffer(r.state, OP).state;
}

test('a target answer outside what was offered is an error for the initiator', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['HeaderDigest=CRC32C\0', { HeaderDigest: ['None'] }],
    ['MaxBurstLength=16777215\0', {}],
    ['ImmediateData=Yes\0', { ImmediateData: false }],
    ['InitialR2T=No\0', { InitialR2T: true }],
    ['DefaultTime2Wait=1\0', {}],
    ['ErrorRecoveryLevel=3\0', {}],
  ];
  for (const [text, config] of cases) {
    const f = failed(checkTargetResponse(initiatorAtOperational(config), { stage: OP, transit: false, pairs: wire(text) }));
    assert.equal(f.code, 'INADMISSIBLE_ANSWER', text);
  }
});

test('Reject, Irrelevant and NotUnderstood answers leave the initiator\'s defaults', () => {
  const i = initiatorAtOperational();
  const r = checkTargetResponse(i, { stage: OP, transit: true, nsg: FFP, pairs: wire('MaxBurstLength=Reject\0FirstBurstLength=Irrelevant\0HeaderDigest=NotUnderstood\0') });
  assert.ok(r.ok);
  const f = finishInitiatorLogin(r.state);
  assert.ok(f.ok);
  assert.equal(f.params.MaxBurstLength, RFC_DEFAULTS.MaxBurstLength);
  assert.equal(f.params.FirstBurstLength, RFC_DEFAULTS.FirstBurstLength);
  assert.equal(f.params.HeaderDigest, 'None');
});

test('an unanswered ImmediateData=No stays No (AND needs no answer, §6.2.2)', () => {
  const i = initiatorAtOperational({ ImmediateData: false, InitialR2T: true });
  const r = checkTargetResponse(i, { stage: OP, transit: true, nsg: FFP, pairs: wire('MaxRecvDataSegmentLength=65536\0') });
  assert.ok(r.ok);
  const f = finishInitiatorLogin(r.state);
  assert.ok(f.ok);
  assert.equal(f.params.ImmediateData, false);
  assert.equal(f.params.InitialR2T, true);
  assert.deepEqual(f.params.MaxRecvDataSegmentLength, { initiator: 262144, target: 65536 });
});

test('the initiator records the target\'s declarations and refuses keys only an initiator sends', () => {
  let i = createInitiatorNegotiation({ config: INITIATOR });
  i = buildInitiatorOffer(i, SEC).state;
  const r = checkTargetResponse(i, { stage: SEC, transit: false, pairs: wire('AuthMethod=None\0TargetPortalGroupTag=0x0010\0TargetAlias=Disk One\0') });
  assert.ok(r.ok);
  assert.deepEqual(r.state.target, { TargetPortalGroupTag: 16, TargetAlias: 'Disk One' });
  const f = failed(checkTargetResponse(i, { stage: SEC, transit: false, pairs: wire('InitiatorName=iqn.2026-11.net.example:x\0') }));
  assert.equal(f.code, 'WRONG_SENDER');
  const g = failed(checkTargetResponse(r.state, { stage: SEC, transit: false, pairs: wire('TargetAlias=again\0') }));
  assert.equal(g.code, 'REPEATED_KEY', 'a changed re-declaration is an error');
  const same = checkTargetResponse(r.state, { stage: SEC, transit: false, pairs: wire('TargetPortalGroupTag=16\0TargetAlias=Disk One\0') });
  assert.ok(same.ok, 'repeating the same declaration is tolerated');
});

test('keys the target offers on its own are answered in the initiator\'s next request', () => {
  const i = initiatorAtOperational();
  const r = checkTargetResponse(i, { stage: OP, transit: false, pairs: wire('iSCSIProtocolLevel=2\0X-vendor.Thing=1\0TaskReporting=FastAbort,RFC3720\0OFMarker=Yes\0') });
  assert.ok(r.ok);
  const next = buildInitiatorOffer(r.state, OP);
  assertWire(next.pairs, 'iSCSIProtocolLevel=1\0X-vendor.Thing=NotUnderstood\0TaskReporting=RFC3720\0OFMarker=Reject\0');
  const f = finishInitiatorLogin(next.state);
  assert.ok(f.ok);
  assert.equal(f.params.iSCSIProtocolLevel, 1);
});

test('a target answer to a key the initiator offered is checked, not treated as a new offer', () => {
  const f = failed(checkTargetResponse(initiatorAtOperational(), { stage: OP, transit: false, pairs: wire('MaxOutstandingR2T=4\0') }));
  assert.equal(f.code, 'INADMISSIBLE_ANSWER', 'MaxOutstandingR2T is a minimum: 4 exceeds the 1 offered');
});

test('against a tgt-style target that declares its own values and stays (T=0), the initiator moves on with an empty request', () => {
  const i = initiatorAtOperational();
  const answers =
    'HeaderDigest=None\0DataDigest=None\0InitialR2T=No\0ImmediateData=Yes\0MaxBurstLength=262144\0FirstBurstLength=65536\0MaxConnections=1\0MaxOutstandingR2T=1\0DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0DefaultTime2Wait=2\0DefaultTime2Retain=20\0ErrorRecoveryLevel=0\0MaxRecvDataSegmentLength=131072\0';
  const r1 = checkTargetResponse(i, { stage: OP, transit: false, pairs: wire(answers) });
  assert.ok(r1.ok);
  const next = buildInitiatorOffer(r1.state, OP);
  assertWire(next.pairs, '');
  assert.equal(initiatorReadyToTransit(next.state), true);
  const r2 = checkTargetResponse(next.state, { stage: OP, transit: true, nsg: FFP, pairs: [] });
  assert.ok(r2.ok);
  const f = finishInitiatorLogin(r2.state);
  assert.ok(f.ok);
  assert.deepEqual(f.params, {
    ...RFC_DEFAULTS,
    InitialR2T: false,
    MaxRecvDataSegmentLength: { initiator: 262144, target: 131072 },
  });
});

test('a target refusing the initiator\'s MaxRecvDataSegmentLength declaration leaves the default for it', () => {
  const r = checkTargetResponse(initiatorAtOperational(), { stage: OP, transit: true, nsg: FFP, pairs: wire('MaxRecvDataSegmentLength=Reject\0') });
  assert.ok(r.ok);
  assert.equal(r.state.params.MaxRecvDataSegmentLength.initiator, 8192);
});

test('Spindle initiator and Spindle target agree byte for byte, through the codec, with mutual CHAP', () => {
  const target = createTargetNegotiation({ auth: { method: 'CHAP', initiator: CHAP_USER, mutual: TARGET_USER }, random: deterministic(11) });
  const initiator = createInitiatorNegotiation({
    config: { ...INITIATOR, chap: { credentials: CHAP_USER, mutual: TARGET_USER }, MaxRecvDataSegmentLength: 131072, HeaderDigest: ['CRC32C', 'None'] },
    random: deterministic(99),
  });
  let t: TargetNegotiation = target;
  let i = initiator;
  let stage: number = SEC;
  for (let round = 0; round < 10; round++) {
    const built = buildInitiatorOffer(i, stage);
    i = built.state;
    const transit = initiatorReadyToTransit(i);
    const nsg = stage === SEC ? OP : FFP;
    const reqBytes = encodeTextKeys(built.pairs);
    const tr = ok(negotiateLogin(t, { stage, transit, nsg, pairs: decodeTextKeys(reqBytes) }));
    t = tr.state;
    const answerT = transit && tr.canTransit;
    const ir = checkTargetResponse(i, { stage, transit: answerT, nsg, pairs: decodeTextKeys(encodeTextKeys(tr.response)) });
    if (!ir.ok) assert.fail(ir.reason);
    i = ir.state;
    if (answerT) {
      if (nsg === FFP) break;
      stage = nsg;
    }
  }
  const tf = finishLogin(t);
  const inf = finishInitiatorLogin(i);
  assert.ok(tf.ok && inf.ok);
  assert.deepEqual(inf.params, tf.params);
  assert.equal(tf.params.HeaderDigest, 'CRC32C');
  assert.equal(tf.params.InitialR2T, false);
  assert.equal(tf.params.ImmediateData, true);
  assert.equal(tf.params.MaxBurstLength, 16773120);
  assert.deepEqual(tf.params.MaxRecvDataSegmentLength, { initiator: 131072, target: 262144 });
  assert.equal(i.target.TargetPortalGroupTag, 1);
});

test('the initiator refuses a target that ends security negotiation before the mutual CHAP answer', () => {
  let i = createInitiatorNegotiation({ config: { ...INITIATOR, chap: { credentials: CHAP_USER, mutual: TARGET_USER } }, random: deterministic(5) });
  i = buildInitiatorOffer(i, SEC).state;
  let r = checkTargetResponse(i, { stage: SEC, transit: false, pairs: wire('AuthMethod=CHAP\0TargetPortalGroupTag=1\0') });
  assert.ok(r.ok);
  i = buildInitiatorOffer(r.state, SEC).state;
  r = checkTargetResponse(i, { stage: SEC, transit: false, pairs: wire(`CHAP_A=5\0CHAP_I=1\0CHAP_C=0x${'11'.repeat(16)}\0`) });
  assert.ok(r.ok);
  i = buildInitiatorOffer(r.state, SEC).state;
  const f = failed(checkTargetResponse(i, { stage: SEC, transit: true, nsg: OP, pairs: [] }));
  assert.equal(f.code, 'AUTH_FAILED');
});

// --- SendTargets responses ------------------------------------------------------------------

test('TargetAddress parses host, port (default 3260) and portal group tag, IPv6 in brackets', () => {
  assert.deepEqual(parseTargetAddress('10.0.0.1:5003,1'), { host: '10.0.0.1', port: 5003, portalGroupTag: 1 });
  assert.deepEqual(parseTargetAddress('[1080::8:800:200C:417A]:5003,1'), { host: '1080::8:800:200C:417A', port: 5003, portalGroupTag: 1 });
  assert.deepEqual(parseTargetAddress('[1080:0:0:0:8:800:200C:417A],65'), { host: '1080:0:0:0:8:800:200C:417A', port: 3260, portalGroupTag: 65 });
  assert.deepEqual(parseTargetAddress('computingcenter.example.com,23'), { host: 'computingcenter.example.com', port: 3260, portalGroupTag: 23 });
  assert.deepEqual(parseTargetAddress('10.0.0.1'), { host: '10.0.0.1', port: 3260 });
  assert.equal(parseTargetAddress('10.0.0.1:99999'), null);
  assert.equal(parseTargetAddress('1080::1'), null, 'IPv6 needs brackets');
});

test('a SendTargets response groups each TargetName with the TargetAddress pairs after it', () => {
  const pairs = decodeTextKeys(
    Buffer.from('TargetName=iqn.2026-11.net.example:a\0TargetAddress=10.0.0.1:3260,1\0TargetAddress=[fe80::1]:3260,2\0TargetName=iqn.2026-11.net.example:b\0TargetAddress=10.0.0.2,1\0'),
    { repeatable: new Set(['TargetName', 'TargetAddress']) },
  );
  assert.deepEqual(parseSendTargetsResponse(pairs), [
    { name: 'iqn.2026-11.net.example:a', portals: [{ host: '10.0.0.1', port: 3260, portalGroupTag: 1 }, { host: 'fe80::1', port: 3260, portalGroupTag: 2 }] },
    { name: 'iqn.2026-11.net.example:b', portals: [{ host: '10.0.0.2', port: 3260, portalGroupTag: 1 }] },
  ]);
  assert.equal(parseSendTargetsResponse([['TargetAddress', '10.0.0.1']]), null);
});

test('a target named once per portal group becomes one entry with all its portals (names match case-insensitively)', () => {
  const got = parseSendTargetsResponse([
    ['TargetName', 'iqn.2026-11.net.example:a'],
    ['TargetAddress', '10.0.0.1:3260,1'],
    ['TargetName', 'iqn.2026-11.net.example:b'],
    ['TargetAddress', '10.0.0.2:3260,1'],
    ['TargetName', 'IQN.2026-11.net.example:A'],
    ['TargetAddress', '10.0.1.1:3260,2'],
    ['TargetAddress', '10.0.0.1:3260,1'],
  ]);
  assert.deepEqual(got, [
    { name: 'iqn.2026-11.net.example:a', portals: [{ host: '10.0.0.1', port: 3260, portalGroupTag: 1 }, { host: '10.0.1.1', port: 3260, portalGroupTag: 2 }] },
    { name: 'iqn.2026-11.net.example:b', portals: [{ host: '10.0.0.2', port: 3260, portalGroupTag: 1 }] },
  ]);
});

// --- configuration ---------------------------------------------------------------------------

test('out-of-range target preferences are configuration errors', () => {
  assert.throws(() => createTargetNegotiation({ config: { MaxBurstLength: 2 ** 24 } }), RangeError);
  assert.throws(() => createTargetNegotiation({ config: { MaxRecvDataSegmentLength: 256 } }), RangeError);
  assert.throws(() => createTargetNegotiation({ config: { ErrorRecoveryLevel: 3 } }), RangeError);
  assert.throws(() => createTargetNegotiation({ config: { HeaderDigest: [] } }), RangeError);
});

test('Spindle\'s target defaults prefer large, fast values (SPEC §6)', () => {
  assert.ok(DEFAULT_TARGET_CONFIG.MaxRecvDataSegmentLength >= 262144);
  assert.ok(DEFAULT_TARGET_CONFIG.MaxBurstLength > 16 * 1024 * 1024 - 8192);
  assert.equal(DEFAULT_TARGET_CONFIG.FirstBurstLength, 262144);
  assert.equal(DEFAULT_TARGET_CONFIG.ImmediateData, true);
  assert.equal(DEFAULT_TARGET_CONFIG.InitialR2T, false);
});
