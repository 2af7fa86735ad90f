// Reading the target's sockets into reused slabs (connection.ts readIntoSlabs)
// and the framer's chunkViews count it relies on: memory is reused only when
// no PDU was handed on as a view of it, so every delivered PDU stays intact.
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { Opcode } from '../../src-main/iscsi/constants';
import { PduFramer, type RawPdu } from '../../src-main/iscsi/framer';
import { LOGIN_READ_SLAB_BYTES, READ_SLAB_BYTES, readIntoSlabs } from '../../src-main/target/connection';

interface Sent {
  itt: number;
  data: Buffer;
}

/** A Data-Out-like PDU: ITT tells them apart, data is a pattern of it. */
function pdu(itt: number, dataLength: number): { wire: Buffer; sent: Sent } {
  const bhs = Buffer.alloc(48);
  bhs[0] = Opcode.SCSI_DATA_OUT;
  bhs[1] = 0x80;
  bhs.writeUIntBE(dataLength, 5, 3);
  bhs.writeUInt32BE(itt, 16);
  const data = Buffer.alloc(dataLength);
  for (let i = 0; i < dataLength; i++) data[i] = (i * 31 + itt * 7) & 0xff;
  const pad = Buffer.alloc((4 - (dataLength % 4)) % 4);
  return { wire: Buffer.concat([bhs, data, pad]), sent: { itt, data } };
}

/** A stream of PDUs of mixed sizes, some far larger than one read. */
function stream(count: number): { wire: Buffer; sent: Sent[] } {
  const sizes = [0, 1, 48, 512, 4096, 4099, 65536, 262144, 7, 100_000];
  const parts: Buffer[] = [];
  const sent: Sent[] = [];
  for (let i = 0; i < count; i++) {
    const p = pdu(i + 1, sizes[i % sizes.length]);
    parts.push(p.wire);
    sent.push(p.sent);
  }
  return { wire: Buffer.concat(parts), sent };
}

function check(got: RawPdu[], sent: Sent[]): void {
  assert.equal(got.length, sent.length, 'number of PDUs');
  for (let i = 0; i < sent.length; i++) {
    assert.equal(got[i].bhs.readUInt32BE(16), sent[i].itt, `PDU ${i} ITT`);
    assert.ok(got[i].data.equals(sent[i].data), `PDU ${i} data intact`);
  }
}

/** A loopback server, a client connected to it, and the server's side of that connection. */
async function acceptedPair(): Promise<{ server: net.Server; client: net.Socket; socket: net.Socket }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, 'connection');
  const client = net.connect(port, '127.0.0.1');
  const [socket] = (await accepted) as [net.Socket];
  return { server, client, socket };
}

/** Ends the connection from the client side, waits until the server's side has closed, then stops the server. */
async function closePair({ server, client, socket }: { server: net.Server; client: net.Socket; socket: net.Socket }): Promise<void> {
  const closed = once(socket, 'close');
  socket.on('end', () => socket.end());
  client.end();
  client.resume();
  await closed;
  server.close();
}

describe('PduFramer.chunkViews', () => {
  it('counts PDUs delivered in place, not those assembled or placed', () => {
    const placed = Buffer.alloc(1000);
    const framer = new PduFramer({
      onPdu: () => undefined,
      onError: (err) => assert.fail(err.message),
      maxRecvDataSegmentLength: 1 << 20,
      placeData: (bhs, length) => (bhs.readUInt32BE(16) === 3 ? placed.subarray(0, length) : null),
    });
    const a = pdu(1, 100).wire;
    framer.push(a);
    assert.equal(framer.chunkViews, 1, 'a whole PDU in one chunk is a view');
    const b = pdu(2, 100).wire;
    framer.push(b.subarray(0, 20));
    framer.push(b.subarray(20, 70));
    framer.push(b.subarray(70));
    assert.equal(framer.chunkViews, 1, 'a split PDU is assembled (copied)');
    const c = pdu(3, 1000).wire;
    framer.push(c.subarray(0, 100));
    framer.push(c.subarray(100));
    assert.equal(framer.chunkViews, 1, 'a placed PDU is copied to its home');
  });

  it('reusing a chunk whose push added no view never changes a delivered PDU', () => {
    const { wire, sent } = stream(60);
    const got: RawPdu[] = [];
    const framer = new PduFramer({ onPdu: (p) => got.push(p), onError: (err) => assert.fail(err.message), maxRecvDataSegmentLength: 1 << 20 });
    let mem = Buffer.alloc(70_000);
    let reused = 0;
    let seed = 7;
    for (let off = 0; off < wire.length; ) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const n = Math.min(1 + (seed % mem.length), wire.length - off);
      const chunk = mem.subarray(0, n);
      wire.copy(chunk, 0, off, off + n);
      off += n;
      const views = framer.chunkViews;
      framer.push(chunk);
      if (framer.chunkViews === views) {
        chunk.fill(0xee); // reused: scribble over it as the next read would
        reused++;
      } else {
        mem = Buffer.alloc(70_000);
      }
    }
    check(got, sent);
    assert.ok(reused > 0, 'some chunks were reused');
  });
});

describe('readIntoSlabs (target sockets)', () => {
  it('delivers a long mixed PDU stream intact, reuses memory, and still ends and closes', async () => {
    const { wire, sent } = stream(300);
    const got: RawPdu[] = [];
    let active = false;
    let chunks = 0;
    let largest = 0;
    const memories = new Set<ArrayBufferLike>();
    const done = new Promise<void>((resolve, reject) => {
      const server = net.createServer((socket) => {
        const framer = new PduFramer({ onPdu: (p) => got.push(p), onError: reject, maxRecvDataSegmentLength: 1 << 20 });
        active = readIntoSlabs(socket, (chunk) => {
          chunks++;
          largest = Math.max(largest, chunk.length);
          memories.add(chunk.buffer);
          const views = framer.chunkViews;
          framer.push(chunk);
          return framer.chunkViews !== views;
        });
        if (!active) socket.on('data', (chunk: Buffer) => framer.push(chunk));
        socket.on('end', () => socket.end());
        socket.on('close', () => {
          server.close();
          resolve();
        });
        socket.on('error', reject);
      });
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        const client = net.connect(port, '127.0.0.1', () => {
          // Uneven writes, so PDUs straddle reads in every way.
          let off = 0;
          let i = 0;
          const step = (): void => {
            while (off < wire.length) {
              const n = Math.min([1, 47, 4096, 70_000, 300_000][i++ % 5], wire.length - off);
              const ok = client.write(wire.subarray(off, off + n));
              off += n;
              if (!ok) {
                client.once('drain', step);
                return;
              }
            }
            client.end();
          };
          step();
        });
        client.on('error', reject);
        client.resume();
      });
    });
    await done;
    assert.equal(active, true, 'Node 20 has what readIntoSlabs needs (else the target falls back to data events)');
    check(got, sent);
    assert.ok(largest <= READ_SLAB_BYTES);
    assert.ok(memories.size < chunks, `memory was reused (${memories.size} slabs for ${chunks} reads)`);
  });

  it('reads a connection in login into a small slab and switches to the large one when told, without losing a byte', async () => {
    const { server, client, socket } = await acceptedPair();
    let loggedIn = false;
    const received: Buffer[] = [];
    const slabSizes: number[] = [];
    assert.equal(
      readIntoSlabs(
        socket,
        (chunk) => {
          slabSizes.push(chunk.buffer.byteLength);
          received.push(Buffer.from(chunk));
          return false;
        },
        () => (loggedIn ? READ_SLAB_BYTES : LOGIN_READ_SLAB_BYTES),
      ),
      true,
    );
    const first = Buffer.alloc(100_000);
    for (let i = 0; i < first.length; i++) first[i] = (i * 13) & 0xff;
    client.write(first);
    while (Buffer.concat(received).length < first.length) await new Promise((r) => setTimeout(r, 5));
    assert.ok(Math.max(...slabSizes) <= LOGIN_READ_SLAB_BYTES, `login reads used slabs of at most ${LOGIN_READ_SLAB_BYTES} bytes (saw ${Math.max(...slabSizes)})`);
    loggedIn = true;
    const second = Buffer.alloc(1_000_000);
    for (let i = 0; i < second.length; i++) second[i] = (i * 7 + 3) & 0xff;
    const before = slabSizes.length;
    client.write(second);
    while (Buffer.concat(received).length < first.length + second.length) await new Promise((r) => setTimeout(r, 5));
    assert.ok(Buffer.concat(received).equals(Buffer.concat([first, second])), 'every byte arrived, in order');
    // The first read after the switch may still land in the small slab; the rest go to the large one.
    assert.ok(slabSizes.slice(before + 1).every((n) => n === READ_SLAB_BYTES), 'reads after the switch use the large slab');
    await closePair({ server, client, socket });
  });

  it('pause() stops reading and resume() goes on', async () => {
    const { server, client, socket } = await acceptedPair();
    let bytes = 0;
    assert.equal(
      readIntoSlabs(socket, (chunk) => {
        bytes += chunk.length;
        return false;
      }),
      true,
    );
    socket.pause();
    client.write(Buffer.alloc(10_000, 1));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(bytes, 0, 'nothing read while paused');
    socket.resume();
    for (let i = 0; i < 50 && bytes < 10_000; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(bytes, 10_000);
    await closePair({ server, client, socket });
  });

  it('declines a socket that already has a data listener', async () => {
    const { server, client, socket } = await acceptedPair();
    socket.on('data', () => undefined);
    assert.equal(readIntoSlabs(socket, () => false), false);
    client.destroy();
    socket.destroy();
    server.close();
  });
});
