import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createMemoryBackstore, openBackstore, parseBackstoreSpec, type AllocationExtent, type Backstore } from '../../src-main/backstore/index';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const read = (b: Backstore, buf: Buffer, bufOffset: number, length: number, offset: number) =>
  new Promise<void>((res, rej) => b.read(buf, bufOffset, length, offset, (e) => (e ? rej(e) : res())));
const write = (b: Backstore, buf: Buffer, bufOffset: number, length: number, offset: number, fua = false) =>
  new Promise<void>((res, rej) => b.write(buf, bufOffset, length, offset, fua, (e) => (e ? rej(e) : res())));
const unmap = (b: Backstore, offset: number, length: number) =>
  new Promise<void>((res, rej) => b.unmap(offset, length, (e) => (e ? rej(e) : res())));
const flush = (b: Backstore) => new Promise<void>((res, rej) => b.flush((e) => (e ? rej(e) : res())));
const close = (b: Backstore) => new Promise<void>((res, rej) => b.close((e) => (e ? rej(e) : res())));
const allocation = (b: Backstore, offset: number, length: number) =>
  new Promise<AllocationExtent[]>((res, rej) => b.allocation(offset, length, (e, x) => (e ? rej(e) : res(x ?? []))));

test('a memory LUN reports its shape and every capability', async () => {
  const b = createMemoryBackstore(64 * MiB);
  assert.equal(b.kind, 'memory');
  assert.equal(b.description, 'memory (64 MiB)');
  assert.equal(b.sizeBytes, 64 * MiB);
  assert.equal(b.blockSize, 512);
  assert.deepEqual({ ...b.capabilities }, { canUnmap: true, unmapZeroes: true, canFua: true, canReportAllocation: true, rotational: false });
  await close(b);
});

test('sizes must be whole blocks', () => {
  assert.throws(() => createMemoryBackstore(1000), { code: 'BACKSTORE_BAD_SIZE', message: /1000 bytes is not a multiple of the 512-byte block size/ });
  assert.throws(() => createMemoryBackstore(0), { code: 'BACKSTORE_BAD_SIZE' });
  assert.throws(() => createMemoryBackstore(MiB + 512, { blockSize: 4096 }), { code: 'BACKSTORE_BAD_SIZE' });
  assert.throws(() => createMemoryBackstore(MiB, { chunkSize: 1000 }), { code: 'BACKSTORE_BAD_SIZE' });
});

test('round trips at odd offsets, across chunk boundaries, into the short last chunk', async () => {
  // 3 chunks of 1 MiB and a last one of 512 bytes.
  const size = 3 * MiB + 512;
  const b = createMemoryBackstore(size);
  const mirror = Buffer.alloc(size);
  const cases = [
    [0, 1],
    [MiB - 3, 7],
    [MiB / 2 + 1, 2 * MiB + 3],
    [size - 600, 600],
    [size - 1, 1],
  ] as const;
  for (const [offset, length] of cases) {
    const src = Buffer.concat([Buffer.alloc(3), randomBytes(length)]);
    await write(b, src, 3, length, offset, offset % 2 === 0);
    src.copy(mirror, offset, 3);
    const back = Buffer.alloc(length + 9, 0x77);
    await read(b, back, 4, length, offset);
    assert.ok(back.subarray(4, 4 + length).equals(src.subarray(3)), `at ${offset}`);
    assert.ok(back.subarray(0, 4).every((x) => x === 0x77) && back.subarray(4 + length).every((x) => x === 0x77));
  }
  const all = Buffer.alloc(size, 0xff);
  await read(b, all, 0, size, 0);
  assert.ok(all.equals(mirror));
  await flush(b);
  await close(b);
});

test('unwritten space reads as zeros and takes no memory', async () => {
  const b = createMemoryBackstore(GiB);
  assert.equal(b.allocatedBytes, 0);
  const buf = Buffer.alloc(MiB, 0xaa);
  await read(b, buf, 0, MiB, 512 * MiB + 512);
  assert.ok(buf.every((x) => x === 0));
  assert.equal(b.allocatedBytes, 0, 'reads allocate nothing');
  await write(b, Buffer.alloc(512, 1), 0, 512, 5 * MiB + 100);
  assert.equal(b.allocatedBytes, MiB, 'one chunk');
  await close(b);
});

test('a 1 GiB memory LUN does not take 1 GiB: RSS grows by what is written, not by the size', async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const rss0 = process.memoryUsage().rss;
  const luns = [createMemoryBackstore(GiB), createMemoryBackstore(10 * GiB)];
  const block = randomBytes(4096);
  const holes = Buffer.alloc(8 * MiB);
  for (const b of luns) {
    // 16 scattered 4 KiB writes and the last block, then a read of 64 MiB of holes.
    for (let i = 0; i < 16; i++) await write(b, block, 0, 4096, Math.floor((i * b.sizeBytes) / 16));
    await write(b, block, 0, 512, b.sizeBytes - 512);
    for (let at = 0; at < 64 * MiB; at += holes.length) await read(b, holes, 0, holes.length, b.sizeBytes / 2 + MiB + at);
  }
  const grown = process.memoryUsage().rss - rss0;
  // 34 chunks of 1 MiB were written; allow for the allocator and the test's own buffers.
  assert.ok(grown < 96 * MiB, `RSS grew by ${(grown / MiB).toFixed(0)} MiB for 11 GiB of memory LUNs`);
  assert.equal(luns[0]!.allocatedBytes, 17 * MiB);

  // The control: writing 128 MiB does show up in RSS, so the measure above can see growth.
  const filled = createMemoryBackstore(GiB);
  const rss1 = process.memoryUsage().rss;
  const mib = randomBytes(MiB);
  for (let at = 0; at < 128 * MiB; at += MiB) await write(filled, mib, 0, MiB, at);
  const filledGrowth = process.memoryUsage().rss - rss1;
  assert.ok(filledGrowth > 100 * MiB, `writing 128 MiB grew RSS by only ${(filledGrowth / MiB).toFixed(0)} MiB`);
  for (const b of [...luns, filled]) await close(b);
});

test('unmap frees whole chunks, zeroes partial ones, and allocation reports chunks', async () => {
  const b = createMemoryBackstore(8 * MiB);
  const data = randomBytes(4 * MiB);
  await write(b, data, 0, data.length, 2 * MiB);
  assert.equal(b.allocatedBytes, 4 * MiB);
  assert.deepEqual(await allocation(b, 0, 8 * MiB), [
    { offset: 0, length: 2 * MiB, allocated: false },
    { offset: 2 * MiB, length: 4 * MiB, allocated: true },
    { offset: 6 * MiB, length: 2 * MiB, allocated: false },
  ]);

  // Frees chunk 3 whole; zeroes the last 512 KiB of chunk 2 and the first 512 bytes of chunk 4.
  await unmap(b, 2.5 * MiB, 1.5 * MiB + 512);
  assert.equal(b.allocatedBytes, 3 * MiB);
  assert.deepEqual(await allocation(b, 0, 8 * MiB), [
    { offset: 0, length: 2 * MiB, allocated: false },
    { offset: 2 * MiB, length: MiB, allocated: true },
    { offset: 3 * MiB, length: MiB, allocated: false },
    { offset: 4 * MiB, length: 2 * MiB, allocated: true },
    { offset: 6 * MiB, length: 2 * MiB, allocated: false },
  ]);
  const back = Buffer.alloc(4 * MiB);
  await read(b, back, 0, back.length, 2 * MiB);
  assert.ok(back.subarray(0, MiB / 2).equals(data.subarray(0, MiB / 2)));
  assert.ok(back.subarray(MiB / 2, 2 * MiB + 512).every((x) => x === 0), 'unmapped reads as zeros');
  assert.ok(back.subarray(2 * MiB + 512).equals(data.subarray(2 * MiB + 512)));

  // A query from inside a chunk starts where it was asked to.
  assert.deepEqual(await allocation(b, 2 * MiB + 4096, 8192), [{ offset: 2 * MiB + 4096, length: 8192, allocated: true }]);

  await unmap(b, 0, 8 * MiB);
  assert.equal(b.allocatedBytes, 0);
  assert.deepEqual(await allocation(b, 0, 8 * MiB), [{ offset: 0, length: 8 * MiB, allocated: false }]);
  await assert.rejects(unmap(b, 100, 512), { code: 'BACKSTORE_UNALIGNED' });
  await assert.rejects(unmap(b, 8 * MiB - 512, 1024), { code: 'BACKSTORE_OUT_OF_RANGE' });
  await close(b);
});

test('out-of-range I/O, read-only and closed LUNs are refused with codes', async () => {
  const b = createMemoryBackstore(MiB);
  await assert.rejects(read(b, Buffer.alloc(1024), 0, 1024, MiB - 512), { code: 'BACKSTORE_OUT_OF_RANGE' });
  await assert.rejects(write(b, Buffer.alloc(1024), 0, 1024, MiB - 512), { code: 'BACKSTORE_OUT_OF_RANGE' });
  await assert.rejects(write(b, Buffer.alloc(10), 5, 10, 0), { code: 'BACKSTORE_OUT_OF_RANGE', message: /does not fit the 10-byte buffer/ });
  await assert.rejects(allocation(b, 0, 2 * MiB), { code: 'BACKSTORE_OUT_OF_RANGE' });
  assert.equal(b.allocatedBytes, 0, 'a refused write allocated nothing');
  await close(b);
  await assert.rejects(read(b, Buffer.alloc(512), 0, 512, 0), { code: 'BACKSTORE_CLOSED' });
  await assert.rejects(write(b, Buffer.alloc(512), 0, 512, 0), { code: 'BACKSTORE_CLOSED' });

  const ro = await openBackstore({ ...parseBackstoreSpec('memory:1MiB'), readOnly: true });
  assert.equal(ro.readOnly, true);
  await assert.rejects(write(ro, Buffer.alloc(512), 0, 512, 0), { code: 'BACKSTORE_READ_ONLY' });
  await assert.rejects(unmap(ro, 0, 512), { code: 'BACKSTORE_READ_ONLY' });
  const z = Buffer.alloc(512, 1);
  await read(ro, z, 0, 512, 0);
  assert.ok(z.every((x) => x === 0));
  await close(ro);
});

test('4096-byte blocks', async () => {
  const b = createMemoryBackstore(4 * MiB, { blockSize: 4096 });
  assert.equal(b.blockSize, 4096);
  await assert.rejects(unmap(b, 512, 4096), { code: 'BACKSTORE_UNALIGNED' });
  await unmap(b, 4096, 4096);
  await close(b);
});
