import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { crc32c } from '@node-rs/crc32';
import { Opcode, RejectReason } from '../../src-main/iscsi/constants';
import { DataDigestError, DataSegmentTooLongError, HeaderDigestError, type FramingError } from '../../src-main/iscsi/errors';
import { PduFramer, type FramerOptions, type RawPdu } from '../../src-main/iscsi/framer';
import { PduWriter, framePdu, writePdu, type PduSink } from '../../src-main/iscsi/writer';
import { encodeDataIn, parseDataIn } from '../../src-main/iscsi/data';
import { PADDING } from '../../src-main/iscsi/bhs';

// ---------------------------------------------------------------------------
// Test helpers: an independent wire encoder (not the writer under test).
// ---------------------------------------------------------------------------

interface TestPdu {
  bhs: Buffer;
  ahs: Buffer;
  data: Buffer;
}

function le32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** A BHS with opcode, ITT (to tell PDUs apart), TotalAHSLength and DataSegmentLength filled in. */
function makePdu(itt: number, dataLength: number, ahsLength = 0, opcode: number = Opcode.SCSI_DATA_OUT): TestPdu {
  const bhs = Buffer.alloc(48);
  bhs[0] = opcode;
  bhs[1] = 0x80;
  bhs[4] = ahsLength / 4;
  bhs.writeUIntBE(dataLength, 5, 3);
  bhs.writeUInt32BE(itt, 16);
  const ahs = Buffer.alloc(ahsLength);
  for (let i = 0; i < ahsLength; i++) ahs[i] = (i * 7 + itt) & 0xff;
  const data = Buffer.alloc(dataLength);
  for (let i = 0; i < dataLength; i++) data[i] = (i * 13 + itt) & 0xff;
  return { bhs, ahs, data };
}

/** RFC 7143 §11.1 layout, digests little-endian over BHS+AHS and data+padding. */
function wire(p: TestPdu, hd = false, dd = false): Buffer {
  const parts = [p.bhs, p.ahs];
  if (hd) parts.push(le32(crc32c(Buffer.concat([p.bhs, p.ahs]))));
  if (p.data.length > 0) {
    const pad = Buffer.alloc((4 - (p.data.length % 4)) % 4);
    parts.push(p.data, pad);
    if (dd) parts.push(le32(crc32c(Buffer.concat([p.data, pad]))));
  }
  return Buffer.concat(parts);
}

interface Collected {
  pdus: RawPdu[];
  errors: FramingError[];
  framer: PduFramer;
}

function collect(options: Partial<FramerOptions> = {}): Collected {
  const c: Collected = { pdus: [], errors: [], framer: undefined as unknown as PduFramer };
  c.framer = new PduFramer({
    onPdu: (pdu) => c.pdus.push(pdu),
    onError: (err) => c.errors.push(err),
    ...options,
  });
  return c;
}

function assertSame(actual: RawPdu[], expected: TestPdu[]): void {
  assert.equal(actual.length, expected.length, 'number of PDUs');
  for (let i = 0; i < expected.length; i++) {
    assert.deepEqual(actual[i].bhs, expected[i].bhs, `PDU ${i} BHS`);
    assert.deepEqual(actual[i].ahs, expected[i].ahs, `PDU ${i} AHS`);
    assert.deepEqual(actual[i].data, expected[i].data, `PDU ${i} data`);
  }
}

/** A mix: no data, every padding amount, an AHS, a large segment. */
function mixedPdus(): TestPdu[] {
  return [makePdu(1, 0), makePdu(2, 1), makePdu(3, 2), makePdu(4, 3), makePdu(5, 4), makePdu(6, 5, 8), makePdu(7, 600), makePdu(8, 0, 12)];
}

const DIGEST_MODES: [boolean, boolean][] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

// ---------------------------------------------------------------------------

describe('PduFramer: framing', () => {
  it('delivers a PDU lying in one chunk as views of that chunk (zero copies)', () => {
    const p = makePdu(9, 10, 4);
    const chunk = wire(p);
    const c = collect();
    c.framer.push(chunk);
    assertSame(c.pdus, [p]);
    const got = c.pdus[0];
    for (const part of [got.bhs, got.ahs, got.data]) assert.equal(part.buffer, chunk.buffer, 'same memory as the chunk');
    assert.equal(got.bhs.byteOffset, chunk.byteOffset);
    assert.equal(got.data.byteOffset, chunk.byteOffset + 52);
    assert.equal(c.framer.idle, true);
  });

  it('delivers several PDUs from one chunk in order, with padding stripped from each data segment', () => {
    const pdus = mixedPdus();
    const c = collect();
    c.framer.push(Buffer.concat(pdus.map((p) => wire(p))));
    assertSame(c.pdus, pdus);
    assert.deepEqual(
      c.pdus.map((p) => p.data.length),
      [0, 1, 2, 3, 4, 5, 600, 0],
    );
    assert.equal(c.errors.length, 0);
  });

  for (const [hd, dd] of DIGEST_MODES) {
    it(`re-frames identically when the stream is cut at every byte boundary (HeaderDigest ${hd}, DataDigest ${dd})`, () => {
      const pdus = mixedPdus();
      const stream = Buffer.concat(pdus.map((p) => wire(p, hd, dd)));
      for (let cut = 1; cut < stream.length; cut++) {
        const c = collect({ headerDigest: hd, dataDigest: dd });
        c.framer.push(stream.subarray(0, cut));
        c.framer.push(stream.subarray(cut));
        assert.equal(c.errors.length, 0, `cut at ${cut}`);
        assertSame(c.pdus, pdus);
        assert.equal(c.framer.idle, true);
      }
    });

    it(`re-frames identically from 1-byte chunks (HeaderDigest ${hd}, DataDigest ${dd})`, () => {
      const pdus = mixedPdus();
      const stream = Buffer.concat(pdus.map((p) => wire(p, hd, dd)));
      const c = collect({ headerDigest: hd, dataDigest: dd });
      for (let i = 0; i < stream.length; i++) c.framer.push(stream.subarray(i, i + 1));
      assert.equal(c.errors.length, 0);
      assertSame(c.pdus, pdus);
    });
  }

  it('re-frames identically from pseudo-random chunk sizes, digests on', () => {
    const pdus = [...mixedPdus(), makePdu(20, 70000), makePdu(21, 3, 1020), ...mixedPdus()];
    const stream = Buffer.concat(pdus.map((p) => wire(p, true, true)));
    let seed = 12345;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n) + 1;
    for (let round = 0; round < 20; round++) {
      const c = collect({ headerDigest: true, dataDigest: true, maxRecvDataSegmentLength: 1 << 20 });
      for (let off = 0; off < stream.length; ) {
        const n = rand(round % 2 === 0 ? 100 : 20000);
        c.framer.push(stream.subarray(off, off + n));
        off += n;
      }
      assert.equal(c.errors.length, 0);
      assertSame(c.pdus, pdus);
    }
  });

  it('assembles a PDU that spans chunks with one copy into a buffer of exactly its wire size', () => {
    const p = makePdu(1, 10001);
    const stream = wire(p);
    const c = collect({ maxRecvDataSegmentLength: 65536 });
    const chunks = [stream.subarray(0, 30), stream.subarray(30, 5000), stream.subarray(5000)];
    for (const ch of chunks) c.framer.push(ch);
    assertSame(c.pdus, [p]);
    const got = c.pdus[0];
    assert.equal(got.data.buffer.byteLength, stream.length, 'one buffer sized to the PDU');
    assert.equal(got.bhs.buffer, got.data.buffer, 'header and data share that one buffer');
    for (const ch of chunks) assert.notEqual(got.data.buffer, ch.buffer);
  });

  it('takes buffers for spanning PDUs from the allocate hook (a pool), and none for PDUs inside one chunk', () => {
    const pool = Buffer.alloc(1 << 16);
    const sizes: number[] = [];
    const c = collect({
      allocate: (size) => {
        sizes.push(size);
        return pool;
      },
    });
    const inside = makePdu(1, 100);
    const spanning = makePdu(2, 5000);
    const stream = Buffer.concat([wire(inside), wire(spanning)]);
    c.framer.push(stream.subarray(0, 2000));
    c.framer.push(stream.subarray(2000));
    assertSame(c.pdus, [inside, spanning]);
    assert.deepEqual(sizes, [48 + 5000]);
    assert.equal(c.pdus[1].data.buffer, pool.buffer);
  });

  it('frames the largest AHS (TotalAHSLength 255 = 1020 bytes), whole and split', () => {
    const p = makePdu(3, 5, 1020);
    const stream = wire(p, true, true);
    for (const cut of [1, 47, 48, 49, 1067, 1068, 1071, 1072, stream.length - 1]) {
      const c = collect({ headerDigest: true, dataDigest: true });
      c.framer.push(stream.subarray(0, cut));
      c.framer.push(stream.subarray(cut));
      assert.equal(c.errors.length, 0);
      assertSame(c.pdus, [p]);
    }
  });

  it('applies digest settings changed inside onPdu to the very next PDU of the same chunk (login → full feature phase)', () => {
    const loginResponse = makePdu(1, 20, 0, Opcode.LOGIN_RESPONSE);
    const ffp = [makePdu(2, 7), makePdu(3, 0)];
    const stream = Buffer.concat([wire(loginResponse), ...ffp.map((p) => wire(p, true, true))]);
    const pdus: RawPdu[] = [];
    const framer: PduFramer = new PduFramer({
      onPdu: (pdu) => {
        pdus.push(pdu);
        if (pdu.bhs[0] === Opcode.LOGIN_RESPONSE) framer.setDigests(true, true);
      },
      onError: (err) => assert.fail(err),
    });
    framer.push(stream);
    assertSame(pdus, [loginResponse, ...ffp]);
  });

  it('stops and rethrows if onPdu throws, instead of losing its place in the stream', () => {
    const framer = new PduFramer({
      onPdu: () => {
        throw new Error('handler bug');
      },
      onError: () => {},
    });
    assert.throws(() => framer.push(Buffer.concat([wire(makePdu(1, 0)), wire(makePdu(2, 0))])), /handler bug/);
    assert.equal(framer.isStopped, true);
  });

  it('ignores input after destroy()', () => {
    const c = collect();
    c.framer.destroy();
    c.framer.push(wire(makePdu(1, 0)));
    assert.equal(c.pdus.length, 0);
  });
});

describe('PduFramer: placeData (Data-Out straight into the consumer buffer)', () => {
  /** A placeData that hands out a fresh home for every PDU with odd ITT, and records what it gave. */
  function placer() {
    const given = new Map<number, Buffer>();
    const calls: Array<{ itt: number; dsl: number }> = [];
    const placeData = (bhs: Buffer, dsl: number): Buffer | null => {
      const itt = bhs.readUInt32BE(16);
      calls.push({ itt, dsl });
      if (itt % 2 === 0) return null;
      const home = Buffer.alloc(dsl + 8, 0xee); // longer than asked: only dsl bytes are the data
      given.set(itt, home);
      return home;
    };
    return { given, calls, placeData };
  }

  for (const [hd, dd] of DIGEST_MODES) {
    it(`re-frames identically at every cut, placing the data of spanning PDUs (HeaderDigest ${hd}, DataDigest ${dd})`, () => {
      const pdus = [...mixedPdus(), makePdu(31, 1001, 4), makePdu(33, 70)];
      const stream = Buffer.concat(pdus.map((p) => wire(p, hd, dd)));
      let placed = 0;
      for (let cut = 1; cut < stream.length; cut += 7) {
        const pl = placer();
        const c = collect({ headerDigest: hd, dataDigest: dd, placeData: pl.placeData });
        c.framer.push(stream.subarray(0, cut));
        c.framer.push(stream.subarray(cut));
        assert.equal(c.errors.length, 0, `cut at ${cut}`);
        assertSame(c.pdus, pdus);
        assert.equal(c.framer.idle, true);
        for (const got of c.pdus) {
          const home = pl.given.get(got.bhs.readUInt32BE(16));
          if (home === undefined) continue;
          placed++;
          assert.equal(got.data.buffer, home.buffer, 'data delivered in the consumer buffer');
          assert.equal(got.data.byteOffset, home.byteOffset);
          assert.equal(home[got.data.length], 0xee, 'nothing written past the data segment');
        }
        // Asked only for PDUs with data that span the cut.
        for (const call of pl.calls) assert.ok(call.dsl > 0);
      }
      assert.ok(placed > 0, 'some PDUs were placed');
    });
  }

  it('places from 1-byte chunks and from large chunks, digests on', () => {
    const pdus = [makePdu(1, 70000), makePdu(2, 3), makePdu(3, 65537, 8), makePdu(5, 0)];
    const stream = Buffer.concat(pdus.map((p) => wire(p, true, true)));
    for (const size of [1, 1000, 65536]) {
      const pl = placer();
      const c = collect({ headerDigest: true, dataDigest: true, maxRecvDataSegmentLength: 1 << 20, placeData: pl.placeData });
      for (let off = 0; off < stream.length; off += size) c.framer.push(stream.subarray(off, off + size));
      assert.equal(c.errors.length, 0);
      assertSame(c.pdus, pdus);
      assert.equal(c.pdus[0].data.buffer, pl.given.get(1)!.buffer);
      assert.equal(c.pdus[2].data.buffer, pl.given.get(3)!.buffer);
    }
  });

  it('is not asked about a PDU lying whole in one chunk (zero copies already)', () => {
    const pl = placer();
    const c = collect({ placeData: pl.placeData });
    c.framer.push(wire(makePdu(1, 100)));
    assert.equal(pl.calls.length, 0);
    assert.equal(c.pdus.length, 1);
  });

  it('reports a DataDigestError for a placed PDU and keeps framing', () => {
    const pdus = [makePdu(1, 5000), makePdu(3, 5000)];
    const stream = Buffer.concat(pdus.map((p) => wire(p, false, true)));
    stream[48 + 100] ^= 0xff;
    const pl = placer();
    const c = collect({ dataDigest: true, placeData: pl.placeData, maxRecvDataSegmentLength: 65536 });
    for (let off = 0; off < stream.length; off += 1500) c.framer.push(stream.subarray(off, off + 1500));
    assert.equal(c.errors.length, 1);
    assert.ok(c.errors[0] instanceof DataDigestError);
    assert.deepEqual(c.errors[0].bhs, pdus[0].bhs);
    assertSame(c.pdus, [pdus[1]]);
    assert.equal(c.framer.isStopped, false);
  });

  it('assembles as usual when placeData returns a buffer shorter than the segment', () => {
    const p = makePdu(1, 3000);
    const stream = wire(p);
    const c = collect({ placeData: () => Buffer.alloc(10) });
    c.framer.push(stream.subarray(0, 100));
    c.framer.push(stream.subarray(100));
    assertSame(c.pdus, [p]);
  });
});

describe('PduFramer: digest errors', () => {
  it('reports a corrupted BHS as a fatal HeaderDigestError and delivers nothing after it', () => {
    const pdus = [makePdu(1, 4), makePdu(2, 4), makePdu(3, 4)];
    const stream = Buffer.concat(pdus.map((p) => wire(p, true, false)));
    const bad = Buffer.from(stream);
    bad[52 + 4 + 16] ^= 0x01; // second PDU: a bit of its ITT
    const c = collect({ headerDigest: true });
    c.framer.push(bad);
    assertSame(c.pdus, [pdus[0]]);
    assert.equal(c.errors.length, 1);
    const err = c.errors[0];
    assert.ok(err instanceof HeaderDigestError);
    assert.equal(err.code, 'HEADER_DIGEST_ERROR');
    assert.equal(err.fatal, true);
    assert.equal(c.framer.isStopped, true);
    c.framer.push(wire(pdus[2], true, false));
    assert.equal(c.pdus.length, 1, 'no PDUs after a fatal error');
  });

  it('reports a corrupted header digest itself, split across 1-byte chunks', () => {
    const stream = wire(makePdu(1, 0), true, false);
    stream[50] ^= 0x80;
    const c = collect({ headerDigest: true });
    for (let i = 0; i < stream.length; i++) c.framer.push(stream.subarray(i, i + 1));
    assert.equal(c.pdus.length, 0);
    assert.ok(c.errors[0] instanceof HeaderDigestError);
  });

  it('checks the header digest before trusting DataSegmentLength', () => {
    const p = makePdu(1, 0);
    const stream = wire(p, true, false);
    stream.writeUIntBE(0xffffff, 5, 3); // a lie, and the digest no longer matches
    const c = collect({ headerDigest: true });
    c.framer.push(stream);
    assert.ok(c.errors[0] instanceof HeaderDigestError);
  });

  it('reports a corrupted data segment as a non-fatal DataDigestError carrying the BHS, then keeps framing', () => {
    const pdus = [makePdu(1, 9), makePdu(2, 9), makePdu(3, 9)];
    for (const split of [false, true]) {
      const stream = Buffer.concat(pdus.map((p) => wire(p, true, true)));
      const secondStart = wire(pdus[0], true, true).length;
      stream[secondStart + 52 + 3] ^= 0xff; // a data byte of the second PDU
      const c = collect({ headerDigest: true, dataDigest: true });
      if (split) for (let i = 0; i < stream.length; i++) c.framer.push(stream.subarray(i, i + 1));
      else c.framer.push(stream);
      assertSame(c.pdus, [pdus[0], pdus[2]]);
      assert.equal(c.errors.length, 1);
      const err = c.errors[0];
      assert.ok(err instanceof DataDigestError);
      assert.equal(err.fatal, false);
      assert.equal(err.rejectReason, RejectReason.DATA_DIGEST_ERROR);
      assert.deepEqual(err.bhs, pdus[1].bhs, 'the header to put in the Reject');
      assert.equal(c.framer.isStopped, false);
    }
  });

  it('covers padding bytes with the data digest', () => {
    const p = makePdu(1, 5);
    const stream = wire(p, false, true);
    stream[48 + 6] = 0x55; // a padding byte
    const c = collect({ dataDigest: true });
    c.framer.push(stream);
    assert.ok(c.errors[0] instanceof DataDigestError);
  });

  it('expects no data digest on a PDU without a data segment', () => {
    const pdus = [makePdu(1, 0), makePdu(2, 3)];
    const c = collect({ dataDigest: true });
    c.framer.push(Buffer.concat(pdus.map((p) => wire(p, false, true))));
    assert.equal(c.errors.length, 0);
    assertSame(c.pdus, pdus);
  });
});

describe('PduFramer: lying lengths and MaxRecvDataSegmentLength', () => {
  it('fails fast on DataSegmentLength 2^24-1 from the header alone, buffering nothing', () => {
    const p = makePdu(1, 0);
    p.bhs.writeUIntBE(0xffffff, 5, 3);
    const c = collect({ maxRecvDataSegmentLength: 8192 });
    c.framer.push(p.bhs);
    assert.equal(c.errors.length, 1);
    const err = c.errors[0];
    assert.ok(err instanceof DataSegmentTooLongError);
    assert.equal(err.fatal, true);
    assert.equal(err.dataSegmentLength, 0xffffff);
    assert.equal(err.maxRecvDataSegmentLength, 8192);
    assert.deepEqual(err.bhs, p.bhs);
    assert.equal(c.framer.bufferedBytes, 0);
    assert.equal(c.framer.isStopped, true);
  });

  it('fails as soon as a header trickled in byte by byte is complete', () => {
    const p = makePdu(1, 0, 1020);
    p.bhs.writeUIntBE(9000, 5, 3);
    const stream = Buffer.concat([wire(p, true, false), Buffer.alloc(9000)]);
    const c = collect({ headerDigest: true, maxRecvDataSegmentLength: 8192 });
    let fed = 0;
    while (c.errors.length === 0 && fed < stream.length) c.framer.push(stream.subarray(fed, ++fed));
    assert.equal(fed, 48 + 1020 + 4, 'error right after BHS + AHS + HeaderDigest');
    assert.ok(c.errors[0] instanceof DataSegmentTooLongError);
    assert.equal(c.framer.bufferedBytes, 0);
  });

  it('accepts a segment of exactly MaxRecvDataSegmentLength and rejects one byte more', () => {
    const ok = collect({ maxRecvDataSegmentLength: 8192 });
    ok.framer.push(wire(makePdu(1, 8192)));
    assert.equal(ok.pdus.length, 1);
    const tooLong = collect({ maxRecvDataSegmentLength: 8192 });
    tooLong.framer.push(wire(makePdu(1, 8193)));
    assert.equal(tooLong.pdus.length, 0);
    assert.ok(tooLong.errors[0] instanceof DataSegmentTooLongError);
  });

  it('defaults to 8192 and honours a MaxRecvDataSegmentLength raised after login', () => {
    const c = collect();
    assert.equal(c.framer.maxRecvDataSegmentLength, 8192);
    c.framer.maxRecvDataSegmentLength = 262144;
    c.framer.push(wire(makePdu(1, 262144)));
    assert.equal(c.pdus.length, 1);
    assert.throws(() => {
      c.framer.maxRecvDataSegmentLength = 0x1000000;
    }, RangeError);
  });

  it('holds at most one PDU-sized buffer while a large PDU trickles in', () => {
    const p = makePdu(1, 100000);
    const stream = wire(p);
    const c = collect({ maxRecvDataSegmentLength: 1 << 20 });
    c.framer.push(stream.subarray(0, 100));
    assert.equal(c.framer.bufferedBytes, 100);
    c.framer.push(stream.subarray(100, 50000));
    assert.equal(c.framer.bufferedBytes, 50000);
    c.framer.push(stream.subarray(50000));
    assert.equal(c.framer.bufferedBytes, 0);
    assert.equal(c.pdus.length, 1);
  });
});

// ---------------------------------------------------------------------------

class RecordingSink implements PduSink {
  calls: string[] = [];
  written: Buffer[] = [];
  cork(): void {
    this.calls.push('cork');
  }
  uncork(): void {
    this.calls.push('uncork');
  }
  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean {
    this.calls.push(callback ? 'write+cb' : 'write');
    callback?.(null);
    this.written.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    return true;
  }
  bytes(): Buffer {
    return Buffer.concat(this.written);
  }
}

describe('PDU writer', () => {
  for (const [hd, dd] of DIGEST_MODES) {
    it(`lays out header, AHS, padding and digests exactly as RFC 7143 §11.1 (HeaderDigest ${hd}, DataDigest ${dd})`, () => {
      for (const p of mixedPdus()) {
        assert.deepEqual(Buffer.concat(framePdu(p.bhs, p.data, p.ahs, { headerDigest: hd, dataDigest: dd })), wire(p, hd, dd));
      }
    });
  }

  it('never copies the data segment and reuses the shared zero padding', () => {
    const p = makePdu(1, 5);
    const pieces = framePdu(p.bhs, p.data);
    assert.equal(pieces.length, 3);
    assert.equal(pieces[1], p.data);
    assert.equal(pieces[2], PADDING[3]);
    assert.deepEqual(framePdu(p.bhs, p.data), pieces);
    assert.equal(framePdu(makePdu(2, 8).bhs, makePdu(2, 8).data).length, 2, 'no padding piece when aligned');
  });

  it('copies the header, so one scratch BHS can be re-encoded while earlier writes are queued', () => {
    const sink = new RecordingSink();
    const writer = new PduWriter(sink);
    const scratch = Buffer.alloc(48);
    const data = [Buffer.alloc(16, 1), Buffer.alloc(16, 2)];
    for (let i = 0; i < 2; i++) {
      encodeDataIn(
        {
          final: i === 1,
          acknowledge: false,
          residualOverflow: false,
          residualUnderflow: false,
          statusPresent: false,
          status: 0,
          lun: 0,
          itt: 7,
          ttt: 0xffffffff,
          statSN: 0,
          expCmdSN: 1,
          maxCmdSN: 2,
          dataSN: i,
          bufferOffset: i * 16,
          residualCount: 0,
          data: data[i],
        },
        scratch,
      );
      writer.write(scratch, data[i]);
    }
    const c = collect();
    c.framer.push(sink.bytes());
    assert.deepEqual(
      c.pdus.map((p) => parseDataIn(p.bhs, p.data).dataSN),
      [0, 1],
    );
  });

  it('sends a PDU with data as one corked write, and a header-only PDU as a single plain write', () => {
    const sink = new RecordingSink();
    const p = makePdu(1, 3);
    let done = 0;
    writePdu(sink, p.bhs, p.data, p.ahs, { headerDigest: true, dataDigest: true }, () => done++);
    assert.deepEqual(sink.calls, ['cork', 'write', 'write', 'write+cb', 'uncork'], 'completion is tied to the last piece');
    sink.calls = [];
    writePdu(sink, makePdu(2, 0).bhs);
    assert.deepEqual(sink.calls, ['write']);
    assert.equal(done, 1);
  });

  it('fits a real net.Socket and reports completion of the whole PDU through onWritten', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const received = new Promise<RawPdu[]>((resolve) => {
      server.once('connection', (sock) => {
        const got: RawPdu[] = [];
        const framer = new PduFramer({
          headerDigest: true,
          dataDigest: true,
          maxRecvDataSegmentLength: 1 << 20,
          onPdu: (pdu) => {
            got.push(pdu);
            if (got.length === 2) {
              sock.destroy();
              resolve(got);
            }
          },
          onError: (err) => assert.fail(err),
        });
        sock.on('data', (chunk: Buffer) => framer.push(chunk));
      });
    });
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    const writer = new PduWriter(client);
    writer.setDigests(true, true);
    const pdus = [makePdu(1, 300000), makePdu(2, 5, 8)];
    const written = new Promise<void>((resolve, reject) => {
      writer.write(pdus[0].bhs, pdus[0].data, pdus[0].ahs);
      writer.write(pdus[1].bhs, pdus[1].data, pdus[1].ahs, (err) => (err ? reject(err) : resolve()));
    });
    await written;
    assertSame(await received, pdus);
    client.destroy();
    server.close();
  });

  it('batches several PDUs in one cork and round-trips through the framer with digests on', () => {
    const sink = new RecordingSink();
    const writer = new PduWriter(sink);
    writer.setDigests(true, true);
    const pdus = mixedPdus();
    writer.batch(() => {
      for (const p of pdus) writer.write(p.bhs, p.data, p.ahs);
    });
    assert.equal(sink.calls[0], 'cork');
    assert.equal(sink.calls.at(-1), 'uncork');
    const c = collect({ headerDigest: true, dataDigest: true });
    c.framer.push(sink.bytes());
    assertSame(c.pdus, pdus);
  });

  it('refuses a BHS whose DataSegmentLength or TotalAHSLength disagrees with the buffers given', () => {
    const p = makePdu(1, 4, 4);
    assert.throws(() => framePdu(p.bhs, Buffer.alloc(5), p.ahs), RangeError);
    assert.throws(() => framePdu(p.bhs, p.data), RangeError);
  });
});
