#!/usr/bin/env node
// How FUA writes are made durable, measured: a second descriptor opened with
// O_DSYNC (one pwrite per write, one thread-pool hop) against write followed
// by fdatasync (two hops). fd-backstore.ts uses O_DSYNC, the faster one here.
//   node src-main/backstore/native/fua-bench.mjs [DIR]   (UV_THREADPOOL_SIZE applies)
import fs from 'node:fs';
import { dirname, join } from 'node:path';

const dir = process.argv[2] ?? '/var/tmp';
const path = join(fs.mkdtempSync(join(dir, 'spindle-fua-')), 'img');
const SIZE = 256 << 20;
const { O_RDWR, O_DSYNC } = fs.constants;
fs.writeFileSync(path, '');
{
  // Written once, so the runs measure rewriting, not block allocation.
  const fd = fs.openSync(path, 'r+');
  const b = Buffer.alloc(8 << 20, 7);
  for (let o = 0; o < SIZE; o += b.length) fs.writeSync(fd, b, 0, b.length, o);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
}
const fd = fs.openSync(path, O_RDWR);
const dfd = fs.openSync(path, O_RDWR | O_DSYNC);
const viaDsync = (bs) => (buf, off, cb) => fs.write(dfd, buf, 0, bs, off, (e) => cb(e));
const viaFdatasync = (bs) => (buf, off, cb) => fs.write(fd, buf, 0, bs, off, (e) => (e ? cb(e) : fs.fdatasync(fd, cb)));

function run(name, op, bs, qd, n) {
  return new Promise((resolve, reject) => {
    let issued = 0;
    let done = 0;
    const t0 = process.hrtime.bigint();
    const buf = Buffer.alloc(bs, 3);
    const next = () => {
      if (issued >= n) return;
      issued++;
      op(buf, Math.floor(Math.random() * (SIZE / bs)) * bs, (e) => {
        if (e) return reject(e);
        if (++done === n) {
          const s = Number(process.hrtime.bigint() - t0) / 1e9;
          console.log(`${name.padEnd(16)} ${String(bs).padStart(7)} B  QD ${String(qd).padStart(2)}: ${(n / s).toFixed(0).padStart(6)} IOPS ${(n * bs / s / 1e6).toFixed(1).padStart(7)} MB/s`);
          resolve();
        } else next();
      });
    };
    for (let i = 0; i < qd; i++) next();
  });
}

for (const [bs, qd, n] of [[4096, 1, 2000], [4096, 32, 8000], [1 << 20, 8, 300]]) {
  await run('O_DSYNC', viaDsync(bs), bs, qd, n);
  await run('write+fdatasync', viaFdatasync(bs), bs, qd, n);
}
fs.closeSync(fd);
fs.closeSync(dfd);
fs.rmSync(dirname(path), { recursive: true, force: true });
