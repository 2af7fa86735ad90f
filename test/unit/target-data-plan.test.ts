import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CmdSnWindow, computeResidual, planDataIn, planR2Ts, nextR2T, unsolicitedLimit, NO_RESIDUAL } from '../../src-main/target/data-plan';

test('CmdSN window: in-order commands are delivered, early ones held, others dropped', () => {
  const w = new CmdSnWindow(10, 4);
  assert.equal(w.expCmdSN, 10);
  assert.equal(w.maxCmdSN, 13);
  assert.equal(w.classify(10, false), 'now');
  assert.equal(w.classify(11, false), 'later');
  assert.equal(w.classify(13, false), 'later');
  assert.equal(w.classify(14, false), 'drop'); // MaxCmdSN + 1
  assert.equal(w.classify(9, false), 'drop'); // ExpCmdSN - 1 (already used)
  assert.equal(w.classify(0, false), 'drop');
  // Immediate PDUs are delivered whatever their CmdSN and do not advance the window.
  assert.equal(w.classify(10, true), 'now');
  assert.equal(w.classify(12345, true), 'now');
  w.advance();
  assert.equal(w.expCmdSN, 11);
});

test('CmdSN window: MaxCmdSN follows the active commands and never decreases', () => {
  const w = new CmdSnWindow(100, 8);
  assert.equal(w.update(0), 107);
  w.advance();
  w.advance();
  // Two commands received and still running: the window does not move on.
  assert.equal(w.update(2), 107);
  // Both done: two more slots.
  assert.equal(w.update(0), 109);
  // More active than before: MaxCmdSN stays (initiators keep the largest they saw).
  assert.equal(w.update(8), 109);
});

test('CmdSN window: a full window refuses even ExpCmdSN', () => {
  const w = new CmdSnWindow(1, 2);
  assert.equal(w.classify(1, false), 'now');
  w.advance();
  assert.equal(w.classify(2, false), 'now');
  w.advance();
  // Two commands running, depth 2: MaxCmdSN stays at 2 = ExpCmdSN - 1.
  assert.equal(w.update(2), 2);
  assert.equal(w.classify(3, false), 'drop');
  assert.equal(w.classify(3, true), 'now');
  assert.equal(w.update(1), 3);
  assert.equal(w.classify(3, false), 'now');
});

test('CmdSN window: serial arithmetic across the 2^32 wrap', () => {
  const w = new CmdSnWindow(0xfffffffe, 4);
  assert.equal(w.maxCmdSN, 1);
  assert.equal(w.classify(0xfffffffe, false), 'now');
  assert.equal(w.classify(0xffffffff, false), 'later');
  assert.equal(w.classify(0, false), 'later');
  assert.equal(w.classify(1, false), 'later');
  assert.equal(w.classify(2, false), 'drop');
  w.advance();
  w.advance();
  assert.equal(w.expCmdSN, 0);
  assert.equal(w.update(0), 3);
  assert.throws(() => new CmdSnWindow(0, 0), RangeError);
});

test('residuals: overflow, underflow, exact', () => {
  assert.deepEqual(computeResidual(512, 0), { overflow: true, underflow: false, count: 512 });
  assert.deepEqual(computeResidual(512, 10000), { overflow: false, underflow: true, count: 9488 });
  assert.deepEqual(computeResidual(512, 200), { overflow: true, underflow: false, count: 312 });
  assert.deepEqual(computeResidual(1024, 1024), NO_RESIDUAL);
  assert.deepEqual(computeResidual(0, 0), NO_RESIDUAL);
});

test('Data-In planning: segments of MaxRecvDataSegmentLength, F at the end of each MaxBurstLength sequence', () => {
  assert.deepEqual(planDataIn(0, 8192, 65536), []);
  assert.deepEqual(planDataIn(4096, 8192, 65536), [{ offset: 0, length: 4096, dataSN: 0, final: true, last: true }]);
  const p = planDataIn(20000, 8192, 262144);
  assert.deepEqual(
    p.map((x) => [x.offset, x.length, x.dataSN, x.final, x.last]),
    [
      [0, 8192, 0, false, false],
      [8192, 8192, 1, false, false],
      [16384, 3616, 2, true, true],
    ],
  );
  // A burst limit that is not a multiple of the segment length: no PDU crosses a burst boundary.
  const q = planDataIn(3000, 1024, 1500);
  assert.deepEqual(
    q.map((x) => [x.offset, x.length, x.final]),
    [
      [0, 1024, false],
      [1024, 476, true],
      [1500, 1024, false],
      [2524, 476, true],
    ],
  );
  assert.equal(q.reduce((n, x) => n + x.length, 0), 3000);
  assert.deepEqual(
    q.map((x) => x.dataSN),
    [0, 1, 2, 3],
  );
  assert.equal(q.filter((x) => x.last).length, 1);
});

test('unsolicited data limit (ImmediateData, InitialR2T, FirstBurstLength)', () => {
  const fast = { InitialR2T: false, ImmediateData: true, FirstBurstLength: 65536, MaxBurstLength: 262144, MaxOutstandingR2T: 1 };
  // All the data as immediate data.
  assert.equal(unsolicitedLimit(fast, 4096, 4096, true), 4096);
  // Immediate data then unsolicited Data-Out up to FirstBurstLength.
  assert.equal(unsolicitedLimit(fast, 1 << 20, 8192, false), 65536);
  assert.equal(unsolicitedLimit(fast, 10000, 8192, false), 10000);
  // F=1: only the immediate data is unsolicited.
  assert.equal(unsolicitedLimit(fast, 1 << 20, 8192, true), 8192);
  const strict = { ...fast, InitialR2T: true, ImmediateData: false };
  assert.equal(unsolicitedLimit(strict, 4096, 0, true), 0);
  assert.equal(unsolicitedLimit(strict, 4096, 512, true), -1); // immediate data not allowed
  assert.equal(unsolicitedLimit(strict, 4096, 0, false), -1); // F=0 needs InitialR2T=No
  assert.equal(unsolicitedLimit(fast, 4096, 8192, true), -1); // more immediate data than EDTL
  assert.equal(unsolicitedLimit(fast, 1 << 20, 70000, true), -1); // more than FirstBurstLength
});

test('R2T planning honours MaxBurstLength and EDTL', () => {
  assert.equal(nextR2T(4096, 4096, 65536), null);
  assert.deepEqual(nextR2T(0, 4096, 65536), { offset: 0, length: 4096 });
  assert.deepEqual(planR2Ts(65536, 300000, 100000), [
    { offset: 65536, length: 100000 },
    { offset: 165536, length: 100000 },
    { offset: 265536, length: 34464 },
  ]);
  const all = planR2Ts(0, 1 << 20, 262144);
  assert.equal(all.length, 4);
  assert.ok(all.every((r) => r.length <= 262144));
});
