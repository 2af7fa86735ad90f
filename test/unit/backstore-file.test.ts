import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  createImage,
  formatBytes,
  nativeStatus,
  openBackstore,
  openFileBackstore,
  type AllocationExtent,
  type Backstore,
} from '../../src-main/backstore/index';

const MiB = 1024 * 1024;
let dir = '';
let n = 0;
const fresh = (name = 'disk') => join(dir, `${name}-${++n}.img`);

before(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), 'spindle-backstore-file-'));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

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

async function image(sizeBytes: number, opts: { readOnly?: boolean; blockSize?: number } = {}): Promise<{ path: string; b: Backstore }> {
  const path = fresh();
  await createImage(path, sizeBytes, { blockSize: opts.blockSize });
  return { path, b: await openFileBackstore(path, opts) };
}

test('the native addon is built (npm ci builds it; `npm run build:native` rebuilds it)', () => {
  assert.ok(nativeStatus.available, nativeStatus.reason);
});

test('createImage makes a sparse file of the exact size that uses no blocks', async () => {
  const path = fresh();
  const made = await createImage(path, 256 * MiB);
  assert.deepEqual(made, { path, sizeBytes: 256 * MiB, thin: true, warning: null });
  const st = fs.statSync(path);
  assert.equal(st.size, 256 * MiB);
  assert.equal(st.blocks, 0);
  assert.equal(st.mode & 0o777, 0o600);
});

test('createImage never overwrites an existing file', async () => {
  const path = fresh();
  fs.writeFileSync(path, 'precious');
  await assert.rejects(createImage(path, MiB), (e: NodeJS.ErrnoException) => {
    assert.equal(e.code, 'BACKSTORE_EXISTS');
    assert.match(e.message, /already exists and Spindle never overwrites an image — use it as it is .*The file was not changed\./);
    return true;
  });
  assert.equal(fs.readFileSync(path, 'utf8'), 'precious');
});

test('createImage refuses bad sizes and missing folders', async () => {
  await assert.rejects(createImage(fresh(), 1000), { code: 'BACKSTORE_BAD_SIZE', message: /1000 bytes is not a multiple of the 512-byte block size — use 512 or 1024/ });
  await assert.rejects(createImage(fresh(), 0), { code: 'BACKSTORE_BAD_SIZE' });
  await assert.rejects(createImage(fresh(), 6144, { blockSize: 4096 }), { code: 'BACKSTORE_BAD_SIZE', message: /4096-byte block size — use 4096 or 8192/ });
  await assert.rejects(createImage(join(dir, 'no-such-folder', 'a.img'), MiB), {
    code: 'BACKSTORE_NOT_FOUND',
    message: /no-such-folder does not exist — create it first/,
  });
});

/** Bigger than the free space of the temp volume, whole MiB. */
function moreThanFree(): { size: number } {
  const s = fs.statfsSync(dir);
  const free = s.bavail * s.bsize;
  return { size: Math.ceil((free + 64 * MiB) / MiB) * MiB };
}

test('a thin image larger than the free space is created, with a warning that says why it is risky', async () => {
  const { size } = moreThanFree();
  const path = fresh();
  const made = await createImage(path, size, { thin: true });
  assert.equal(fs.statSync(path).size, size);
  assert.ok(made.warning);
  assert.match(made.warning, new RegExp(`only .* free on /\\S*, the image needs ${formatBytes(size)} — `));
  assert.match(made.warning, /\(sparse files grow as written\)/);
  fs.rmSync(path);
});

test('a thick image larger than the free space is refused, and nothing is left behind', async () => {
  const { size } = moreThanFree();
  const path = fresh();
  await assert.rejects(createImage(path, size, { thin: false }), (e: NodeJS.ErrnoException) => {
    assert.equal(e.code, 'BACKSTORE_NO_SPACE');
    assert.match(e.message, new RegExp(`^Cannot create ${path}: only \\S+ \\S+ free on /\\S*, the image needs ${formatBytes(size)} — free some space`));
    assert.match(e.message, /or create a thin image instead \(sparse files grow as written\)/);
    return true;
  });
  assert.equal(fs.existsSync(path), false);
});

test('a thick image has its blocks reserved up front', async () => {
  const path = fresh();
  await createImage(path, 8 * MiB, { thin: false });
  assert.ok(fs.statSync(path).blocks * 512 >= 8 * MiB);
});

test('opening checks that the image exists, is a regular file and has a whole number of blocks', async () => {
  await assert.rejects(openFileBackstore(join(dir, 'missing.img')), {
    code: 'BACKSTORE_NOT_FOUND',
    message: /missing.img does not exist — check the path, or create it with file:.*missing.img:SIZE/,
  });
  await assert.rejects(openFileBackstore(dir), { code: 'BACKSTORE_WRONG_KIND', message: /is a folder/ });
  const odd = fresh();
  fs.writeFileSync(odd, Buffer.alloc(1000));
  await assert.rejects(openFileBackstore(odd), {
    code: 'BACKSTORE_BAD_SIZE',
    message: /is 1000 bytes, not a multiple of the 512-byte block size — .*truncate -s 1024/,
  });
  const empty = fresh();
  fs.writeFileSync(empty, '');
  await assert.rejects(openFileBackstore(empty), { code: 'BACKSTORE_BAD_SIZE', message: /is empty/ });
  const k6 = fresh();
  fs.writeFileSync(k6, Buffer.alloc(6144));
  await assert.rejects(openFileBackstore(k6, { blockSize: 4096 }), { code: 'BACKSTORE_BAD_SIZE' });
  await assert.rejects(openFileBackstore(k6, { blockSize: 1000 }), { code: 'BACKSTORE_BAD_SIZE', message: /use 512 or 4096/ });
});

test('an open image reports its size, block size and capabilities', async () => {
  const { path, b } = await image(16 * MiB);
  assert.equal(b.kind, 'file');
  assert.equal(b.description, path);
  assert.equal(b.sizeBytes, 16 * MiB);
  assert.equal(b.blockSize, 512);
  assert.equal(b.readOnly, false);
  assert.equal(b.capabilities.canUnmap, true);
  assert.equal(b.capabilities.unmapZeroes, true);
  assert.equal(b.capabilities.canFua, true);
  assert.equal(b.capabilities.canReportAllocation, true);
  // The capability probe touched nothing.
  assert.equal(fs.statSync(path).size, 16 * MiB);
  assert.equal(fs.statSync(path).blocks, 0);
  await close(b);
});

test('writes and reads round-trip at odd offsets and buffer offsets', async () => {
  const { path, b } = await image(8 * MiB);
  const cases = [
    { offset: 0, length: 1 },
    { offset: 1, length: 511 },
    { offset: 4095, length: 2 },
    { offset: 1234567, length: 70001 },
    { offset: 8 * MiB - 3, length: 3 },
    { offset: 3 * MiB + 17, length: 2 * MiB + 5 },
  ];
  const expected = Buffer.alloc(8 * MiB);
  for (const { offset, length } of cases) {
    const src = Buffer.concat([Buffer.alloc(7, 0xee), randomBytes(length), Buffer.alloc(5, 0xee)]);
    await write(b, src, 7, length, offset);
    src.copy(expected, offset, 7, 7 + length);
    const back = Buffer.alloc(length + 20, 0x55);
    await read(b, back, 13, length, offset);
    assert.ok(back.subarray(13, 13 + length).equals(src.subarray(7, 7 + length)), `offset ${offset}`);
    assert.ok(back.subarray(0, 13).every((x) => x === 0x55) && back.subarray(13 + length).every((x) => x === 0x55), 'outside bytes untouched');
  }
  await flush(b);
  assert.ok(fs.readFileSync(path).equals(expected), 'the file holds exactly what was written');
  const whole = Buffer.alloc(8 * MiB);
  await read(b, whole, 0, whole.length, 0);
  assert.ok(whole.equals(expected));
  await close(b);
});

test('reads and writes outside the image, or outside the buffer, are errors and never partial', async () => {
  const { path, b } = await image(MiB);
  const buf = Buffer.alloc(4096, 1);
  for (const [offset, length] of [
    [MiB, 1],
    [MiB - 512, 1024],
    [-512, 512],
    [0.5, 1],
    [Number.MAX_SAFE_INTEGER, 1],
  ] as const) {
    await assert.rejects(read(b, buf, 0, length, offset), { code: 'BACKSTORE_OUT_OF_RANGE' }, `read ${offset}+${length}`);
    await assert.rejects(write(b, buf, 0, length, offset), { code: 'BACKSTORE_OUT_OF_RANGE' }, `write ${offset}+${length}`);
  }
  await assert.rejects(read(b, buf, 4000, 512, 0), { code: 'BACKSTORE_OUT_OF_RANGE', message: /does not fit the 4096-byte buffer/ });
  await assert.rejects(read(b, buf, 0, 1024, MiB - 512), { message: /A read of 1024 bytes at offset 1048064 is outside .* \(1048576 bytes\)/ });
  await flush(b);
  assert.equal(fs.statSync(path).blocks, 0, 'the refused write at the end wrote nothing');
  assert.equal(fs.statSync(path).size, MiB);
  // A zero-length I/O at the very end is fine.
  await read(b, buf, 0, 0, MiB);
  await close(b);
});

test('callbacks are never called synchronously, even for refused I/O', async () => {
  const { b } = await image(MiB);
  let returned = false;
  const p = new Promise<void>((res) =>
    b.read(Buffer.alloc(1), 0, 1, 2 * MiB, () => {
      assert.equal(returned, true);
      res();
    }),
  );
  returned = true;
  await p;
  await close(b);
});

test('a read-only image refuses writes and unmaps but reads fine', async () => {
  const path = fresh();
  await createImage(path, MiB);
  fs.writeFileSync(path, Buffer.alloc(MiB, 0x42));
  const b = await openFileBackstore(path, { readOnly: true });
  assert.equal(b.readOnly, true);
  assert.equal(b.capabilities.canUnmap, false);
  await assert.rejects(write(b, Buffer.alloc(512), 0, 512, 0), { code: 'BACKSTORE_READ_ONLY', message: /is exported read-only/ });
  await assert.rejects(write(b, Buffer.alloc(512), 0, 512, 0, true), { code: 'BACKSTORE_READ_ONLY' });
  await assert.rejects(unmap(b, 0, 512), { code: 'BACKSTORE_READ_ONLY' });
  const buf = Buffer.alloc(512);
  await read(b, buf, 0, 512, 4096);
  assert.ok(buf.every((x) => x === 0x42));
  await flush(b);
  await close(b);
  assert.ok(fs.readFileSync(path).every((x) => x === 0x42));
});

test('a read-write open of an image that may not be written says to export it read-only', async (t) => {
  const path = fresh();
  await createImage(path, MiB);
  if (process.getuid?.() === 0) {
    // Permission bits do not stop root; the immutable attribute does.
    const r = spawnSync('chattr', ['+i', path], { encoding: 'utf8' });
    if (r.status !== 0) {
      t.skip(`chattr +i is not available here: ${r.stderr || r.error?.message}`);
      return;
    }
    t.after(() => {
      spawnSync('chattr', ['-i', path]);
    });
  } else {
    fs.chmodSync(path, 0o400);
  }
  await assert.rejects(openFileBackstore(path), {
    code: 'BACKSTORE_ACCESS_DENIED',
    message: /cannot be opened for writing \(E(PERM|ACCES)\) — export it read-only, or give Spindle write permission on it/,
  });
  const b = await openFileBackstore(path, { readOnly: true });
  await close(b);
});

test('unmap punches a hole: blocks are freed and read back as zeros', async () => {
  const { path, b } = await image(16 * MiB);
  const data = randomBytes(8 * MiB);
  await write(b, data, 0, data.length, 4 * MiB);
  await flush(b);
  const before = fs.statSync(path).blocks;
  assert.ok(before * 512 >= 8 * MiB, `${before} blocks after writing 8 MiB`);

  await unmap(b, 6 * MiB, 2 * MiB);
  const afterUnmap = fs.statSync(path).blocks;
  assert.equal(before - afterUnmap, (2 * MiB) / 512, 'exactly 2 MiB freed');
  assert.equal(fs.statSync(path).size, 16 * MiB, 'size kept');

  const back = Buffer.alloc(8 * MiB);
  await read(b, back, 0, back.length, 4 * MiB);
  assert.ok(back.subarray(0, 2 * MiB).equals(data.subarray(0, 2 * MiB)));
  assert.ok(back.subarray(2 * MiB, 4 * MiB).every((x) => x === 0), 'the hole reads as zeros');
  assert.ok(back.subarray(4 * MiB).equals(data.subarray(4 * MiB)));

  // Unaligned to the file system block (4 KiB) but whole 512-byte blocks: the partial part is zeroed.
  await unmap(b, 4 * MiB + 512, 1024);
  const part = Buffer.alloc(2048);
  await read(b, part, 0, 2048, 4 * MiB);
  assert.ok(part.subarray(0, 512).equals(data.subarray(0, 512)));
  assert.ok(part.subarray(512, 1536).every((x) => x === 0));
  assert.ok(part.subarray(1536).equals(data.subarray(1536, 2048)));
  await close(b);
});

test('unmap checks its range: whole blocks inside the image', async () => {
  const { b } = await image(MiB, { blockSize: 4096 });
  await assert.rejects(unmap(b, 512, 4096), { code: 'BACKSTORE_UNALIGNED', message: /not a whole number of 4096-byte blocks/ });
  await assert.rejects(unmap(b, 0, 1000), { code: 'BACKSTORE_UNALIGNED' });
  await assert.rejects(unmap(b, MiB - 4096, 8192), { code: 'BACKSTORE_OUT_OF_RANGE' });
  await unmap(b, 0, 0);
  await close(b);
});

test('allocation reports written ranges as allocated and holes as not, after writes and unmaps', async () => {
  const { b } = await image(16 * MiB);
  assert.deepEqual(await allocation(b, 0, 16 * MiB), [{ offset: 0, length: 16 * MiB, allocated: false }]);

  await write(b, randomBytes(64 * 1024), 0, 64 * 1024, MiB);
  await write(b, randomBytes(4096), 0, 4096, 3 * MiB);
  await write(b, randomBytes(512), 0, 512, 16 * MiB - 512); // the last block
  await flush(b);
  assert.deepEqual(await allocation(b, 0, 16 * MiB), [
    { offset: 0, length: MiB, allocated: false },
    { offset: MiB, length: 64 * 1024, allocated: true },
    { offset: MiB + 64 * 1024, length: 2 * MiB - 64 * 1024, allocated: false },
    { offset: 3 * MiB, length: 4096, allocated: true },
    { offset: 3 * MiB + 4096, length: 13 * MiB - 8192, allocated: false },
    { offset: 16 * MiB - 4096, length: 4096, allocated: true },
  ]);

  await unmap(b, MiB, 32 * 1024);
  await unmap(b, 3 * MiB, 4096);
  assert.deepEqual(await allocation(b, 0, 4 * MiB), [
    { offset: 0, length: MiB + 32 * 1024, allocated: false },
    { offset: MiB + 32 * 1024, length: 32 * 1024, allocated: true },
    { offset: MiB + 64 * 1024, length: 3 * MiB - 64 * 1024, allocated: false },
  ]);

  // A query from the middle of an allocated range starts there and stops at its end.
  assert.deepEqual(await allocation(b, MiB + 40 * 1024, 8192), [{ offset: MiB + 40 * 1024, length: 8192, allocated: true }]);
  assert.deepEqual(await allocation(b, 0, 0), []);
  await assert.rejects(allocation(b, 15 * MiB, 2 * MiB), { code: 'BACKSTORE_OUT_OF_RANGE' });
  await close(b);
});

test('a FUA write is on the file when its callback runs: a fresh descriptor reads it back', async () => {
  const { path, b } = await image(4 * MiB);
  const data = randomBytes(64 * 1024 + 3);
  await write(b, data, 0, data.length, MiB + 1, true);
  const fd = fs.openSync(path, 'r');
  const back = Buffer.alloc(data.length);
  assert.equal(fs.readSync(fd, back, 0, back.length, MiB + 1), data.length);
  fs.closeSync(fd);
  assert.ok(back.equals(data));
  // FUA and ordinary writes share one file: the latest write wins.
  await write(b, Buffer.alloc(512, 9), 0, 512, MiB + 1, false);
  await flush(b);
  assert.ok(fs.readFileSync(path).subarray(MiB + 1, MiB + 513).every((x) => x === 9));
  await close(b);
});

test('close waits for I/O in flight; I/O after close is refused', async () => {
  const { b } = await image(4 * MiB);
  const results: string[] = [];
  const writes = [0, 1, 2, 3].map(
    (i) => new Promise<void>((res) => b.write(randomBytes(MiB), 0, MiB, i * MiB, i % 2 === 0, (e) => (results.push(e ? `err ${e.code}` : 'ok'), res()))),
  );
  const closed = close(b).then(() => results.push('closed'));
  await Promise.all([...writes, closed]);
  assert.deepEqual(results, ['ok', 'ok', 'ok', 'ok', 'closed']);
  await assert.rejects(read(b, Buffer.alloc(512), 0, 512, 0), { code: 'BACKSTORE_CLOSED' });
  await assert.rejects(write(b, Buffer.alloc(512), 0, 512, 0), { code: 'BACKSTORE_CLOSED' });
  await assert.rejects(flush(b), { code: 'BACKSTORE_CLOSED' });
  await close(b); // twice is fine
});

test('a 4096-byte-block image works with 4 KiB blocks', async () => {
  const { b } = await image(4 * MiB, { blockSize: 4096 });
  assert.equal(b.blockSize, 4096);
  const data = randomBytes(8192);
  await write(b, data, 0, 8192, 8192);
  const back = Buffer.alloc(8192);
  await read(b, back, 0, 8192, 8192);
  assert.ok(back.equals(data));
  await unmap(b, 8192, 4096);
  await read(b, back, 0, 8192, 8192);
  assert.ok(back.subarray(0, 4096).every((x) => x === 0));
  assert.ok(back.subarray(4096).equals(data.subarray(4096)));
  await close(b);
});

test('openBackstore with file:PATH:SIZE creates a missing image, reopens it at that size, and refuses another size', async () => {
  const path = fresh();
  const warnings: string[] = [];
  const b1 = await openBackstore({ kind: 'file', path, sizeBytes: 2 * MiB, create: true }, { onWarning: (w) => warnings.push(w) });
  assert.equal(b1.sizeBytes, 2 * MiB);
  await write(b1, Buffer.alloc(512, 7), 0, 512, 0);
  await close(b1);
  assert.deepEqual(warnings, []);

  const b2 = await openBackstore({ kind: 'file', path, sizeBytes: 2 * MiB, create: true });
  const buf = Buffer.alloc(512);
  await read(b2, buf, 0, 512, 0);
  assert.ok(buf.every((x) => x === 7), 'reopened, not recreated');
  await close(b2);

  await assert.rejects(openBackstore({ kind: 'file', path, sizeBytes: 4 * MiB, create: true }), {
    code: 'BACKSTORE_EXISTS',
    message: /already exists with a size of 2 MiB \(2097152 bytes\), not 4 MiB — drop the size .* The file was not changed\./,
  });
  await assert.rejects(openBackstore({ kind: 'file', path: join(dir, 'ro-new.img'), sizeBytes: MiB, create: true, readOnly: true }), {
    code: 'BACKSTORE_READ_ONLY',
  });
  const b3 = await openBackstore({ kind: 'file', path, readOnly: true });
  assert.equal(b3.readOnly, true);
  await close(b3);
});

test('without the native addon, unmap and allocation are reported as unsupported, not faked', () => {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const path = fresh();
  fs.writeFileSync(path, Buffer.alloc(MiB));
  const code = `
    import { openFileBackstore, nativeStatus } from '../../src-main/backstore/index.ts';
    const b = await openFileBackstore(${JSON.stringify(path)});
    const unmapErr = await new Promise((r) => b.unmap(0, 512, (e) => r(e && e.code)));
    const allocErr = await new Promise((r) => b.allocation(0, 512, (e) => r(e && e.code)));
    const buf = Buffer.alloc(512, 1);
    const writeErr = await new Promise((r) => b.write(buf, 0, 512, 0, true, (e) => r(e && e.code)));
    console.log(JSON.stringify({ available: nativeStatus.available, reason: nativeStatus.reason, caps: b.capabilities, unmapErr, allocErr, writeErr }));
    b.close(() => {});
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: here,
    env: { ...process.env, SPINDLE_BACKSTORE_ADDON: 'off' },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.equal(out.available, false);
  assert.match(out.reason, /turned off/);
  assert.equal(out.caps.canUnmap, false);
  assert.equal(out.caps.canReportAllocation, false);
  assert.equal(out.caps.canFua, true);
  assert.equal(out.unmapErr, 'BACKSTORE_UNSUPPORTED');
  assert.equal(out.allocErr, 'BACKSTORE_UNSUPPORTED');
  assert.equal(out.writeErr, null);
});

// Small I/O on the main thread (fd-backstore.ts: preadv2 RWF_NOWAIT reads, synchronous page-cache writes).

test('small reads and writes (page-aligned, unaligned, straddling cached and uncached data) read back exactly, completing asynchronously', async () => {
  const { b } = await image(8 * MiB);
  const model = Buffer.alloc(8 * MiB);
  const cases: Array<[number, number]> = [
    [0, 4096],
    [4096, 65536],
    [512, 512],
    [8192 + 512, 4096],
    [65536, 65536 + 4096], // over the synchronous limit: the thread pool
    [3 * MiB, 4096],
    [8 * MiB - 4096, 4096],
  ];
  for (const [offset, length] of cases) {
    const data = randomBytes(length);
    let sync = true;
    const p = new Promise<void>((res, rej) =>
      b.write(data, 0, length, offset, false, (e) => {
        assert.equal(sync, false, 'write callback ran before write() returned');
        if (e) rej(e);
        else res();
      }),
    );
    sync = false;
    await p;
    data.copy(model, offset);
  }
  for (const [offset, length] of [...cases, [0, 128 * 1024] as [number, number], [4 * MiB, 4096] as [number, number]]) {
    const got = Buffer.alloc(length + 16, 0xee);
    let sync = true;
    const p = new Promise<void>((res, rej) =>
      b.read(got, 8, length, offset, (e) => {
        assert.equal(sync, false, 'read callback ran before read() returned');
        if (e) rej(e);
        else res();
      }),
    );
    sync = false;
    await p;
    assert.ok(got.subarray(8, 8 + length).equals(model.subarray(offset, offset + length)), `read ${offset}+${length}`);
    assert.equal(got[7], 0xee);
    assert.equal(got[8 + length], 0xee);
  }
  // FUA writes keep their O_DSYNC path and still land.
  const fuaData = randomBytes(4096);
  await write(b, fuaData, 0, 4096, 2 * MiB, true);
  const back = Buffer.alloc(4096);
  await read(b, back, 0, 4096, 2 * MiB);
  assert.ok(back.equals(fuaData));
  await close(b);
});

test('a small read or write after close fails with BACKSTORE_CLOSED', async () => {
  const { b } = await image(MiB);
  await close(b);
  await assert.rejects(read(b, Buffer.alloc(4096), 0, 4096, 0), { code: 'BACKSTORE_CLOSED' });
  await assert.rejects(write(b, Buffer.alloc(4096), 0, 4096, 0), { code: 'BACKSTORE_CLOSED' });
});

test('the addon reads from the page cache without blocking (preadNowait)', { skip: !nativeStatus.available }, async () => {
  const { native } = await import('../../src-main/backstore/native');
  assert.ok(native?.preadNowait, 'the addon has preadNowait (rebuild it with `npm run build:native`)');
  const path = fresh();
  fs.writeFileSync(path, Buffer.alloc(8192, 0x5a));
  const fd = fs.openSync(path, 'r');
  try {
    const buf = Buffer.alloc(8192);
    assert.equal(native.preadNowait!(fd, buf, 0, 4096, 0), 4096);
    assert.equal(buf[0], 0x5a);
    assert.equal(native.preadNowait!(fd, buf, 4096, 4096, 6144), 2048, 'short at end of file');
    assert.equal(native.preadNowait!(fd, buf, 0, 4096, 1 << 20), 0, 'nothing past the end');
    assert.throws(() => native.preadNowait!(fd, buf, 4096, 8192, 0), RangeError);
    assert.ok(native.preadNowait!(123456, buf, 0, 4096, 0) < 0, 'a bad descriptor is -EBADF');
  } finally {
    fs.closeSync(fd);
  }
});

test('a slow synchronous write sends writes to the thread pool briefly; back to synchronous once they are fast again', async (t) => {
  const { SYNC_WRITE_BACKOFF_MIN_MS, SYNC_WRITE_BACKOFF_MS } = await import('../../src-main/backstore/fd-backstore');
  const { b } = await image(MiB);
  // A fake clock (fd-backstore times its synchronous writes with performance.now()), so that
  // only the writes this test makes slow are slow, however busy the machine is.
  let now = 1_000_000;
  t.mock.method(performance, 'now', () => now);
  const realWriteSync = fs.writeSync;
  const realWrite = fs.write;
  let syncWrites = 0;
  let poolWrites = 0;
  let slow = false;
  t.mock.method(fs, 'writeSync', (...args: Parameters<typeof fs.writeSync>) => {
    syncWrites++;
    if (slow) now += 3; // a write throttled for 3 ms
    return (realWriteSync as (...a: unknown[]) => number)(...args);
  });
  t.mock.method(fs, 'write', (...args: unknown[]) => {
    poolWrites++;
    return (realWrite as (...a: unknown[]) => void)(...args);
  });
  const data = Buffer.alloc(4096, 0x42);
  const writeOne = async (isSlow = false): Promise<'sync' | 'pool'> => {
    slow = isSlow;
    const s = syncWrites;
    const p = poolWrites;
    await write(b, data, 0, 4096, 0);
    slow = false;
    assert.equal(syncWrites - s + poolWrites - p, 1);
    return syncWrites > s ? 'sync' : 'pool';
  };
  const min = SYNC_WRITE_BACKOFF_MIN_MS;
  assert.equal(await writeOne(), 'sync', 'synchronous to start with');
  assert.equal(await writeOne(true), 'sync', 'the slow one itself is synchronous');
  assert.equal(await writeOne(), 'pool', 'right after it: the thread pool');
  now += min - 1;
  assert.equal(await writeOne(), 'pool', 'still within the backoff');
  now += 2;
  assert.equal(await writeOne(true), 'sync', 'after the backoff: synchronous again (and slow again)');
  now += min + 1;
  assert.equal(await writeOne(), 'pool', 'slow again right after a backoff: the next backoff is twice as long');
  now += min;
  assert.equal(await writeOne(), 'sync', 'fast again: synchronous');
  assert.equal(await writeOne(true), 'sync');
  now += min + 1;
  assert.equal(await writeOne(), 'sync', 'after a fast write the backoff starts from the minimum again');
  // Slow every time: the backoff doubles up to its cap.
  let backoff = 0;
  for (let i = 0; i < 12; i++) {
    assert.equal(await writeOne(true), 'sync');
    backoff = backoff === 0 ? min : Math.min(backoff * 2, SYNC_WRITE_BACKOFF_MS);
    now += backoff - 1;
    assert.equal(await writeOne(), 'pool');
    now += 2;
  }
  assert.equal(backoff, SYNC_WRITE_BACKOFF_MS);
  const back = Buffer.alloc(4096);
  await read(b, back, 0, 4096, 0);
  assert.ok(back.equals(data));
  await close(b);
});
