/**
 * LBA range lock, shared/exclusive. Plain READs and WRITEs take shared holds
 * (they may overlap each other — SIMPLE tasks have no ordering); COMPARE AND
 * WRITE, ORWRITE, WRITE ATOMIC and copy targets take exclusive holds, so the
 * read-compare-write happens with nothing else touching those blocks.
 *
 * Grants are FIFO among overlapping requests: a shared request that overlaps
 * a waiting exclusive one queues behind it. With no exclusive hold active or
 * waiting, a shared acquire is O(1).
 */

export interface RangeHold {
  readonly start: number;
  readonly end: number;
  readonly exclusive: boolean;
}

interface Waiter extends RangeHold {
  readonly grant: (hold: RangeHold) => void;
}

function overlaps(a: RangeHold, b: RangeHold): boolean {
  return a.start < b.end && b.start < a.end && (a.exclusive || b.exclusive);
}

export class RangeLock {
  private readonly active = new Set<RangeHold>();
  private readonly waiting: Waiter[] = [];
  private exclusiveActive = 0;

  /** Holds currently granted (for tests and diagnostics). */
  get activeCount(): number {
    return this.active.size;
  }

  get waitingCount(): number {
    return this.waiting.length;
  }

  /**
   * Acquires blocks [lba, lba + count). `grant` runs synchronously when the
   * range is free, later otherwise. A count of 0 is held as one block.
   */
  acquire(lba: number, count: number, exclusive: boolean, grant: (hold: RangeHold) => void): void {
    const hold: RangeHold = { start: lba, end: lba + Math.max(count, 1), exclusive };
    const free =
      (this.exclusiveActive === 0 && this.waiting.length === 0 && !exclusive) ||
      (!this.conflictsActive(hold) && !this.waiting.some((w) => overlaps(w, hold)));
    if (!free) {
      this.waiting.push({ ...hold, grant });
      return;
    }
    this.grantNow(hold);
    grant(hold);
  }

  release(hold: RangeHold): void {
    if (!this.active.delete(hold)) return;
    if (hold.exclusive) this.exclusiveActive--;
    if (this.waiting.length > 0) this.wake();
  }

  private grantNow(hold: RangeHold): void {
    this.active.add(hold);
    if (hold.exclusive) this.exclusiveActive++;
  }

  private conflictsActive(hold: RangeHold): boolean {
    for (const a of this.active) if (overlaps(a, hold)) return true;
    return false;
  }

  private wake(): void {
    const granted: Array<[Waiter, RangeHold]> = [];
    const still: Waiter[] = [];
    for (const w of this.waiting) {
      // FIFO among overlapping requests: a waiter never passes an earlier one it overlaps.
      let blocked = this.conflictsActive(w);
      for (let i = 0; !blocked && i < still.length; i++) blocked = overlaps(still[i], w);
      if (blocked) {
        still.push(w);
      } else {
        const hold: RangeHold = { start: w.start, end: w.end, exclusive: w.exclusive };
        this.grantNow(hold);
        granted.push([w, hold]);
      }
    }
    this.waiting.length = 0;
    this.waiting.push(...still);
    for (const [w, hold] of granted) w.grant(hold);
  }
}
