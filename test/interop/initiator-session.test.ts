// Spindle's initiator in the full feature phase: SCSI commands over a normal
// session against tgt (the reference target) and Spindle's own engine, with
// the RFC defaults and with the awkward parameters SPEC §4 names (a small
// MaxRecvDataSegmentLength, InitialR2T=Yes, ImmediateData=No, digests on):
// what is written reads back byte for byte, many commands in flight at once,
// CHECK CONDITION comes back with its sense, and a dead session fails every
// command with the reason instead of hanging.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryBackstore } from '../../src-main/backstore/memory';
import { InitiatorError } from '../../src-main/initiator/errors';
import { InitiatorSession } from '../../src-main/initiator/session';
import { cdbInquiry, cdbRead10, cdbReadCapacity16, cdbWrite10 } from '../../src-main/iscsi/cdb';
import type { OperationalPreferences } from '../../src-main/iscsi/negotiation';
import { parseSense } from '../../src-main/iscsi/sense';
import { TargetEngine } from '../../src-main/target/target-engine';
import { runCli } from '../support/cli';
import { scriptedTarget } from '../support/scripted-target';
import net from 'node:net';
import { encodeDataIn } from '../../src-main/iscsi/data';
import { freePort, requirePeers, startTgt, type RunningTgt } from '../support/peers';

const ME = 'iqn.2026-11.net.spindle.test:session-initiator';
const BLOCK = 512;

const AWKWARD: Partial<OperationalPreferences> = {
  MaxRecvDataSegmentLength: 4096,
  InitialR2T: true,
  ImmediateData: false,
  HeaderDigest: ['CRC32C'],
  DataDigest: ['CRC32C'],
  MaxBurstLength: 65536,
  FirstBurstLength: 65536,
};

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** TEST UNIT READY until GOOD: a new I_T nexus first hears POWER ON / RESET as a unit attention (SAM-5), as every initiator does. */
async function untilReady(s: InitiatorSession): Promise<number> {
  for (let i = 0; i < 8; i++) {
    const r = await s.command({ lun: 1, cdb: Buffer.alloc(6) });
    if (r.status === 0) return i;
    assert.equal(r.status, 2, 'CHECK CONDITION');
    assert.equal(parseSense(r.sense)?.key, 6, 'UNIT ATTENTION');
  }
  assert.fail('the LUN never became ready');
}

/** Writes `data` at `lba` in 64 KiB commands, all in flight at once, then reads it back the same way. */
async function roundTrip(s: InitiatorSession, lba: number, data: Buffer): Promise<Buffer> {
  const chunk = 64 * 1024;
  const writes: Array<Promise<unknown>> = [];
  for (let off = 0; off < data.length; off += chunk) {
    const part = data.subarray(off, off + chunk);
    writes.push(
      s.command({ lun: 1, cdb: cdbWrite10(lba + off / BLOCK, part.length / BLOCK), dataOut: part }).then((r) => assert.equal(r.status, 0, `write at ${off}`)),
    );
  }
  await Promise.all(writes);
  const parts = await Promise.all(
    Array.from({ length: data.length / chunk }, (_, i) =>
      s.command({ lun: 1, cdb: cdbRead10(lba + (i * chunk) / BLOCK, chunk / BLOCK), dataIn: chunk }).then((r) => {
        assert.equal(r.status, 0);
        return r.data;
      }),
    ),
  );
  return Buffer.concat(parts);
}

/**
 * `digests`: insist on CRC32C. tgt 1.0.85 here answers HeaderDigest=None to an offer of CRC32C alone
 * (a value never offered, which the initiator rightly refuses), so against tgt CRC32C is offered with None.
 */
function suite(name: string, digests: boolean, start: () => Promise<{ port: number; iqn: string; stop: () => Promise<void>; backingFile?: string }>): void {
  describe(name, () => {
    let port: number;
    let iqn: string;
    let stop: () => Promise<void>;
    let backingFile: string | undefined;
    before(async () => {
      ({ port, iqn, stop, backingFile } = await start());
    });
    after(() => stop?.());

    for (const [label, offer] of [
      ['default parameters (ImmediateData, unsolicited data, 256 KiB segments)', undefined],
      [
        `awkward parameters (4 KiB segments, InitialR2T=Yes, ImmediateData=No${digests ? ', CRC32C digests' : ''})`,
        digests ? AWKWARD : ({ ...AWKWARD, HeaderDigest: ['CRC32C', 'None'], DataDigest: ['CRC32C', 'None'] } satisfies Partial<OperationalPreferences>),
      ],
    ] as const) {
      test(`${label}: INQUIRY, READ CAPACITY(16), 1 MiB written in 16 commands at once reads back identical`, async () => {
        const s = await InitiatorSession.open({ host: '127.0.0.1', port, targetName: iqn, initiatorName: ME, ...(offer ? { offer } : {}) });
        try {
          if (offer) {
            if (digests) assert.equal(s.params.HeaderDigest, 'CRC32C');
            if (digests) assert.equal(s.params.DataDigest, 'CRC32C');
            assert.equal(s.params.MaxRecvDataSegmentLength.initiator, 4096);
            assert.equal(s.params.InitialR2T, true);
            assert.equal(s.params.ImmediateData, false);
          }
          const inq = await s.command({ lun: 1, cdb: cdbInquiry(96), dataIn: 96 });
          await untilReady(s);
          assert.equal(inq.status, 0);
          assert.equal(inq.data[0] & 0x1f, 0, 'a direct-access block device');
          assert.ok(inq.data.length >= 36);
          const cap = await s.command({ lun: 1, cdb: cdbReadCapacity16(32), dataIn: 32 });
          assert.equal(cap.status, 0);
          const blocks = Number(cap.data.readBigUInt64BE(0)) + 1;
          assert.equal(cap.data.readUInt32BE(8), BLOCK);
          assert.equal(blocks * BLOCK, 16 << 20);
          const data = randomBytes(1 << 20);
          const lba = offer ? 4096 : 0;
          const back = await roundTrip(s, lba, data);
          assert.equal(sha(back), sha(data), 'what was written reads back byte for byte');
          if (backingFile !== undefined) {
            const onDisk = readFileSync(backingFile).subarray(lba * BLOCK, lba * BLOCK + data.length);
            assert.equal(sha(onDisk), sha(data), 'and it is in the target\'s backing file at that offset');
          }
        } finally {
          await s.close();
        }
      });
    }

    test('a read past the end comes back as CHECK CONDITION with its sense (ILLEGAL REQUEST / LBA OUT OF RANGE)', async () => {
      const s = await InitiatorSession.open({ host: '127.0.0.1', port, targetName: iqn, initiatorName: ME });
      try {
        await untilReady(s);
        const r = await s.command({ lun: 1, cdb: cdbRead10((16 << 20) / BLOCK, 1), dataIn: BLOCK });
        assert.equal(r.status, 2, 'CHECK CONDITION');
        const sense = parseSense(r.sense);
        assert.equal(sense?.key, 5);
        assert.equal(sense?.asc, 0x21);
      } finally {
        await s.close();
      }
    });
  });
}

suite("Spindle's target engine (memory LUN)", true, async () => {
  const iqn = 'iqn.2026-11.net.spindle.test:session-target';
  const engine = new TargetEngine({ portals: [{ host: '127.0.0.1', port: 0 }] });
  engine.addTarget({ iqn, luns: [{ lun: 1, backstore: createMemoryBackstore(16 << 20, { blockSize: BLOCK }) }], acl: { allow: 'any' } });
  const [{ port }] = await engine.listen();
  return { port, iqn, stop: () => engine.close(200) };
});

suite('tgt (file LUN)', false, async () => {
  requirePeers(['tgtd', 'tgtadm']);
  const iqn = 'iqn.2026-11.net.spindle.test:session-tgt';
  const dir = mkdtempSync(join(tmpdir(), 'spindle-session-tgt-'));
  const img = join(dir, 'lun1.img');
  writeFileSync(img, '');
  truncateSync(img, 16 << 20);
  const tgt: RunningTgt = await startTgt({ port: await freePort(), targets: [{ iqn, luns: [{ lun: 1, backingFile: img }] }] });
  const port = Number(tgt.portal.split(':')[1]);
  return {
    port,
    iqn,
    backingFile: img,
    stop: async () => {
      await tgt.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('sessions against targets that misbehave or go away', () => {
  const servers: net.Server[] = [];
  after(() => {
    for (const srv of servers) srv.close();
  });
  const open = (port: number) => InitiatorSession.open({ host: '127.0.0.1', port, targetName: 'iqn.2026-11.net.spindle.test:scripted', initiatorName: ME });

  test('a command the target never answers fails with TIMEOUT (the reason, not "closed"), and so does the session', async () => {
    const { port } = await scriptedTarget({ onCommand: () => undefined }, servers);
    const s = await open(port);
    const err = await s.command({ lun: 0, cdb: cdbRead10(0, 1), dataIn: BLOCK, timeoutMs: 300 }).catch((e: unknown) => e);
    assert.ok(err instanceof InitiatorError && err.code === 'TIMEOUT', String(err));
    await assert.rejects(s.command({ lun: 0, cdb: cdbRead10(0, 1), dataIn: BLOCK }), (e: InitiatorError) => e.code === 'TIMEOUT');
  });

  test('commands in flight when the connection drops fail with CONNECTION_CLOSED; none hangs', async () => {
    let commands = 0;
    const { port } = await scriptedTarget(
      {
        onCommand: (_pdu, _send, socket) => {
          if (++commands === 3) socket.destroy();
        },
      },
      servers,
    );
    const s = await open(port);
    const results = await Promise.allSettled([0, 1, 2].map((i) => s.command({ lun: 0, cdb: cdbRead10(i, 1), dataIn: BLOCK, timeoutMs: 10_000 })));
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.equal((r as PromiseRejectedResult).reason.code, 'CONNECTION_CLOSED');
    }
  });

  test('Data-In with a gap, or a read that ends short without saying so, is a protocol error, not zeros passed off as data', async () => {
    /** A target that answers every read with one 16-byte Data-In at `bufferOffset`, status GOOD, no residual. */
    const answersWith16BytesAt = (bufferOffset: number) =>
      scriptedTarget(
        {
          onCommand: (pdu, send) => {
            const data = Buffer.alloc(16, 0xaa);
            const itt = pdu.bhs.readUInt32BE(16);
            send(encodeDataIn({ final: true, acknowledge: false, residualOverflow: false, residualUnderflow: false, statusPresent: true, status: 0, lun: 0, itt, ttt: 0xffffffff, statSN: 200, expCmdSN: 2, maxCmdSN: 9, dataSN: 0, bufferOffset, residualCount: 0, data }), data);
          },
        },
        servers,
      );
    const s1 = await open((await answersWith16BytesAt(100)).port);
    await assert.rejects(s1.command({ lun: 0, cdb: cdbRead10(0, 1), dataIn: BLOCK }), (e: InitiatorError) => e.code === 'PROTOCOL_ERROR' && /out of order/.test(e.message));
    const s2 = await open((await answersWith16BytesAt(0)).port);
    await assert.rejects(s2.command({ lun: 0, cdb: cdbRead10(0, 1), dataIn: BLOCK }), (e: InitiatorError) => e.code === 'PROTOCOL_ERROR' && /ended a read after 16 of 512 bytes/.test(e.message));
  });

  test('a bad request is refused before it takes a CmdSN: the next command still runs (no hole in the sequence)', async () => {
    const iqn = 'iqn.2026-11.net.spindle.test:session-args';
    const engine = new TargetEngine({ portals: [{ host: '127.0.0.1', port: 0 }] });
    engine.addTarget({ iqn, luns: [{ lun: 1, backstore: createMemoryBackstore(1 << 20, { blockSize: BLOCK }) }], acl: { allow: 'any' } });
    const [{ port }] = await engine.listen();
    const s = await InitiatorSession.open({ host: '127.0.0.1', port, targetName: iqn, initiatorName: ME });
    try {
      for (const bad of [
        { lun: 70000, cdb: cdbRead10(0, 1), dataIn: BLOCK },
        { lun: 1, cdb: Buffer.alloc(0) },
        { lun: 1, cdb: cdbRead10(0, 1), dataIn: -1 },
        { lun: 1, cdb: cdbWrite10(0, 1), dataIn: BLOCK, dataOut: Buffer.alloc(BLOCK) },
      ]) {
        await assert.rejects(s.command(bad), (e: InitiatorError) => e.code === 'INVALID_CONFIG', JSON.stringify(bad.lun));
      }
      await untilReady(s);
      const r = await s.command({ lun: 1, cdb: cdbRead10(0, 1), dataIn: BLOCK, timeoutMs: 2_000 });
      assert.equal(r.status, 0);
    } finally {
      await s.close();
      await engine.close(200);
    }
  });

  test('with the target\'s window at 2 commands, 16 at once still all complete (the rest wait for MaxCmdSN)', async () => {
    const iqn = 'iqn.2026-11.net.spindle.test:session-window';
    const engine = new TargetEngine({ portals: [{ host: '127.0.0.1', port: 0 }], queueDepth: 2 });
    engine.addTarget({ iqn, luns: [{ lun: 1, backstore: createMemoryBackstore(16 << 20, { blockSize: BLOCK }) }], acl: { allow: 'any' } });
    const [{ port }] = await engine.listen();
    const s = await InitiatorSession.open({ host: '127.0.0.1', port, targetName: iqn, initiatorName: ME });
    try {
      await untilReady(s);
      const data = randomBytes(1 << 20);
      assert.equal(sha(await roundTrip(s, 0, data)), sha(data));
    } finally {
      await s.close();
      await engine.close(200);
    }
  });
});

describe('`spindle inquiry URL`', () => {
  let dir: string;
  let tgt: RunningTgt;
  const iqn = 'iqn.2026-11.net.spindle.test:inquiry-tgt';
  before(async () => {
    requirePeers(['tgtd', 'tgtadm', 'iscsi-inq', 'iscsi-readcapacity16']);
    dir = mkdtempSync(join(tmpdir(), 'spindle-inquiry-'));
    const img = join(dir, 'lun1.img');
    writeFileSync(img, '');
    truncateSync(img, 48 << 20);
    tgt = await startTgt({ port: await freePort(), targets: [{ iqn, luns: [{ lun: 1, backingFile: img }] }] });
  });
  after(async () => {
    await tgt?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('says what libiscsi\'s iscsi-inq and iscsi-readcapacity16 say about a tgt LUN', async () => {
    const url = `iscsi://${tgt.portal}/${iqn}/1`;
    const r = await runCli(['inquiry', url, '--json', '--initiator', ME]);
    assert.equal(r.code, 0, r.stderr);
    const mine = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const inq = execFileSync('iscsi-inq', [url], { encoding: 'utf8', timeout: 20_000 });
    const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(inq)?.[1]?.trim();
    assert.equal(mine.vendor, field('Vendor'));
    assert.equal(mine.product, field('Product'));
    assert.equal(mine.revision, field('Revision'));
    const cap = execFileSync('iscsi-readcapacity16', [url], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(mine.bytes, Number(/^Total size:(\d+)/m.exec(cap)?.[1]));
    assert.equal(mine.bytes, 48 << 20);
    const human = await runCli(['inquiry', url, '--initiator', ME]);
    assert.match(human.stdout, /size {6}48 MiB \(98304 blocks of 512 bytes\)/);
  });

  test('a missing LUN, an unknown target, a dead port and a malformed URL are one line each', async () => {
    const dead = await freePort();
    const cases: Array<[string[], number, RegExp]> = [
      [['inquiry', `iscsi://${tgt.portal}/${iqn}/9`], 1, /no LUN 9 on this target/],
      [['inquiry', `iscsi://${tgt.portal}/iqn.2026-11.net.spindle.test:nope/0`], 1, /no such target|not found/],
      [['inquiry', `iscsi://127.0.0.1:${dead}/${iqn}/1`], 1, /nothing listens there/],
      [['inquiry', `iscsi://${tgt.portal}/${iqn}`], 2, /not an iSCSI URL/],
      [['inquiry'], 2, /give the LUN/],
    ];
    for (const [args, code, message] of cases) {
      const r = await runCli([...args, '--initiator', ME]);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});
