import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  SEND_TARGETS_REPEATABLE_KEYS,
  TextKeyError,
  TextSegmentAssembler,
  decodeTextKeys,
  encodeTextKeys,
  type TextKeyErrorCode,
} from '../../src-main/iscsi/text-keys';

function fails(code: TextKeyErrorCode, fn: () => unknown, check?: (e: TextKeyError) => void): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TextKeyError, `expected TextKeyError, got ${String(e)}`);
    assert.equal(e.code, code);
    check?.(e);
    return true;
  });
}

describe('key=value text (RFC 7143 §6.1)', () => {
  it('decodes NUL-terminated pairs in order', () => {
    const text = Buffer.from('InitiatorName=iqn.1993-08.org.debian:01:abc\0SessionType=Normal\0MaxRecvDataSegmentLength=262144\0');
    assert.deepEqual(decodeTextKeys(text), [
      ['InitiatorName', 'iqn.1993-08.org.debian:01:abc'],
      ['SessionType', 'Normal'],
      ['MaxRecvDataSegmentLength', '262144'],
    ]);
  });

  it('decodes an empty data segment to no pairs', () => {
    assert.deepEqual(decodeTextKeys(Buffer.alloc(0)), []);
  });

  it('splits at the first "=" only, so values may contain "=" and may be empty', () => {
    assert.deepEqual(decodeTextKeys(Buffer.from('X-com.example.opt=a=b\0TargetAlias=\0')), [
      ['X-com.example.opt', 'a=b'],
      ['TargetAlias', ''],
    ]);
  });

  it('decodes UTF-8 values (iSCSI-local-name-value)', () => {
    assert.deepEqual(decodeTextKeys(Buffer.from('InitiatorAlias=Büro-Rechner ✓\0')), [['InitiatorAlias', 'Büro-Rechner ✓']]);
  });

  it('accepts a key that starts lowercase (iSCSIProtocolLevel, RFC 7144)', () => {
    assert.deepEqual(decodeTextKeys(Buffer.from('iSCSIProtocolLevel=1\0')), [['iSCSIProtocolLevel', '1']]);
  });

  it('round-trips encode → decode, and encode writes exactly key=value NUL per pair', () => {
    const pairs: [string, string][] = [
      ['HeaderDigest', 'CRC32C,None'],
      ['DataDigest', 'None'],
      ['InitiatorAlias', 'zürich'],
    ];
    const bytes = encodeTextKeys(pairs);
    assert.equal(bytes.toString('utf8'), 'HeaderDigest=CRC32C,None\0DataDigest=None\0InitiatorAlias=zürich\0');
    assert.deepEqual(decodeTextKeys(bytes), pairs);
    assert.equal(encodeTextKeys([]).length, 0);
  });

  it('rejects a pair without "=" (MISSING_EQUALS), including an empty pair', () => {
    fails('MISSING_EQUALS', () => decodeTextKeys(Buffer.from('SessionType=Normal\0Garbage\0')));
    fails('MISSING_EQUALS', () => decodeTextKeys(Buffer.from('SessionType=Normal\0\0')));
  });

  it('rejects an "=" with no key before it (EMPTY_KEY)', () => {
    fails('EMPTY_KEY', () => decodeTextKeys(Buffer.from('=value\0')));
  });

  it('rejects bytes after the last NUL (TRAILING_GARBAGE), e.g. a missing terminator', () => {
    fails('TRAILING_GARBAGE', () => decodeTextKeys(Buffer.from('SessionType=Normal\0MaxBurstLength=262144')));
    fails('TRAILING_GARBAGE', () => decodeTextKeys(Buffer.from('SessionType=Normal')));
  });

  it('rejects keys longer than 63 characters and keys with control or non-ASCII bytes', () => {
    const ok = 'K'.repeat(63);
    assert.deepEqual(decodeTextKeys(Buffer.from(`${ok}=1\0`)), [[ok, '1']]);
    fails('KEY_TOO_LONG', () => decodeTextKeys(Buffer.from(`${ok}K=1\0`)));
    fails('INVALID_KEY', () => decodeTextKeys(Buffer.from('Session Type=Normal\0')));
    fails('INVALID_KEY', () => decodeTextKeys(Buffer.from('Sessión=Normal\0')));
    fails('KEY_TOO_LONG', () => encodeTextKeys([[`${ok}K`, '1']]));
    fails('INVALID_KEY', () => encodeTextKeys([['Sessión', '1']]));
  });

  it('limits ordinary values to 255 bytes', () => {
    assert.equal(decodeTextKeys(Buffer.from(`TargetAlias=${'a'.repeat(255)}\0`))[0][1].length, 255);
    fails(
      'VALUE_TOO_LONG',
      () => decodeTextKeys(Buffer.from(`TargetAlias=${'a'.repeat(256)}\0`)),
      (e) => assert.equal(e.key, 'TargetAlias'),
    );
    fails('VALUE_TOO_LONG', () => encodeTextKeys([['TargetAlias', 'a'.repeat(256)]]));
  });

  it('counts the 255-byte limit in UTF-8 bytes, not characters', () => {
    fails('VALUE_TOO_LONG', () => decodeTextKeys(Buffer.from(`InitiatorAlias=${'ü'.repeat(128)}\0`)));
  });

  it('allows large binary values (CHAP_C / CHAP_R, 0x… encodings) up to 8192 bytes', () => {
    const challenge = `0x${'ab'.repeat(1024)}`;
    assert.deepEqual(decodeTextKeys(Buffer.from(`CHAP_I=1\0CHAP_C=${challenge}\0`)), [
      ['CHAP_I', '1'],
      ['CHAP_C', challenge],
    ]);
    assert.equal(decodeTextKeys(Buffer.from(`X-vendor.blob=0b${'A'.repeat(4000)}\0`)).length, 1);
    fails('VALUE_TOO_LONG', () => decodeTextKeys(Buffer.from(`CHAP_R=0x${'a'.repeat(8192)}\0`)));
  });

  it('rejects values that are not valid UTF-8, and NUL inside a value on encode', () => {
    fails('INVALID_VALUE', () => decodeTextKeys(Buffer.from([...Buffer.from('TargetAlias='), 0xc3, 0x28, 0])));
    fails('INVALID_VALUE', () => encodeTextKeys([['TargetAlias', 'a\0b']]));
  });

  it('reports every duplicated key together (DUPLICATE_KEY with error.keys)', () => {
    fails(
      'DUPLICATE_KEY',
      () => decodeTextKeys(Buffer.from('MaxBurstLength=1\0FirstBurstLength=2\0MaxBurstLength=3\0FirstBurstLength=4\0MaxBurstLength=5\0')),
      (e) => {
        assert.deepEqual(e.keys, ['MaxBurstLength', 'FirstBurstLength']);
        assert.equal(e.key, 'MaxBurstLength');
      },
    );
  });

  it('allows the keys a SendTargets response repeats (TargetName, TargetAddress) when asked', () => {
    const text = Buffer.from(
      'TargetName=iqn.2024-01.lab:a\0TargetAddress=10.0.0.1:3260,1\0TargetAddress=[fe80::1]:3260,1\0TargetName=iqn.2024-01.lab:b\0TargetAddress=10.0.0.1:3260,1\0',
    );
    fails('DUPLICATE_KEY', () => decodeTextKeys(text));
    const pairs = decodeTextKeys(text, { repeatable: SEND_TARGETS_REPEATABLE_KEYS });
    assert.equal(pairs.length, 5);
    assert.deepEqual(pairs[3], ['TargetName', 'iqn.2024-01.lab:b']);
  });
});

describe('TextSegmentAssembler (C bit continuation)', () => {
  it('returns a single-PDU text as the same Buffer, without copying', () => {
    const asm = new TextSegmentAssembler();
    const data = Buffer.from('a=b\0');
    assert.equal(asm.push(data, false), data);
    assert.equal(asm.pending, false);
  });

  it('joins a text split mid-pair across PDUs before decoding', () => {
    const asm = new TextSegmentAssembler();
    assert.equal(asm.push(Buffer.from('InitiatorName=iqn.2024'), true), undefined);
    assert.equal(asm.pending, true);
    assert.equal(asm.push(Buffer.from('-01.lab:x\0SessionTy'), true), undefined);
    const whole = asm.push(Buffer.from('pe=Normal\0'), false);
    assert.ok(whole);
    assert.deepEqual(decodeTextKeys(whole), [
      ['InitiatorName', 'iqn.2024-01.lab:x'],
      ['SessionType', 'Normal'],
    ]);
    assert.equal(asm.pending, false);
  });

  it('stops a continued text from growing past its limit (TEXT_TOO_LONG) and resets', () => {
    const asm = new TextSegmentAssembler(8192);
    asm.push(Buffer.alloc(8000, 0x41), true);
    fails('TEXT_TOO_LONG', () => asm.push(Buffer.alloc(200, 0x41), true));
    assert.equal(asm.pending, false);
  });
});
