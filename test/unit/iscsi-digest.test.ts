import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32cOf, dataDigest, headerDigest, readDigest, writeDigest } from '../../src-main/iscsi/digest';

/** Bytes from a hex dump such as "01 c0 00 00". */
function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

const ascending = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const descending = Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i));

// RFC 3720 Appendix B.4 "An iSCSI - SCSI Read (10) Command PDU".
const rfcReadPdu = hex(`
  01 c0 00 00  00 00 00 00  00 00 00 00  00 00 00 00
  14 00 00 00  00 00 04 00  00 00 00 14  00 00 00 18
  28 00 00 00  00 00 00 00  02 00 00 00  00 00 00 00`);

describe('CRC32C digests (RFC 3720 Appendix B.4 check values)', () => {
  it('32 bytes of zeros give 0x8a9136aa', () => {
    assert.equal(crc32cOf(Buffer.alloc(32)), 0x8a9136aa);
  });
  it('32 bytes of 0xff give 0x62a8ab43', () => {
    assert.equal(crc32cOf(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  });
  it('32 ascending bytes 0..31 give 0x46dd794e', () => {
    assert.equal(crc32cOf(ascending), 0x46dd794e);
  });
  it('32 descending bytes 31..0 give 0x113fdb5c', () => {
    assert.equal(crc32cOf(descending), 0x113fdb5c);
  });
  it('the 48-byte SCSI Read (10) Command PDU of B.4 gives 0xd9963a56 as a header digest', () => {
    assert.equal(rfcReadPdu.length, 48);
    assert.equal(headerDigest(rfcReadPdu), 0xd9963a56);
  });
  it('digests go on the wire little-endian: the RFC lists the Read PDU CRC as bytes 56 3a 96 d9', () => {
    assert.deepEqual(writeDigest(headerDigest(rfcReadPdu)), hex('56 3a 96 d9'));
    assert.deepEqual(writeDigest(0x8a9136aa), hex('aa 36 91 8a'));
    assert.equal(readDigest(hex('43 ab a8 62'), 0), 0x62a8ab43);
  });
  it('a digest continued over two pieces equals the digest of their concatenation (header digest over BHS + AHS)', () => {
    const ahs = Buffer.from([0, 5, 2, 0, 0, 0, 0x10, 0]);
    assert.equal(headerDigest(rfcReadPdu, ahs), crc32cOf(Buffer.concat([rfcReadPdu, ahs])));
    assert.equal(crc32cOf(descending, crc32cOf(ascending)), crc32cOf(Buffer.concat([ascending, descending])));
  });
  it('the data digest covers the zero padding to a 4-byte boundary', () => {
    const data = Buffer.from('abcde');
    assert.equal(dataDigest(data), crc32cOf(Buffer.concat([data, Buffer.alloc(3)])));
    assert.notEqual(dataDigest(data), crc32cOf(data));
    assert.equal(dataDigest(ascending), crc32cOf(ascending), 'no padding when already aligned');
  });
});
