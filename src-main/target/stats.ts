/**
 * I/O counters of the target engine, per LUN and per session: operations
 * and bytes read and written, and a latency histogram. Updated on the hot
 * path with a handful of additions (no allocation); read by the service
 * whenever it wants (snapshot() copies).
 *
 * Latency buckets are powers of two in microseconds: bucket i counts
 * commands that took < 2^i µs (the last bucket is everything slower).
 */

export const LATENCY_BUCKETS = 24; // up to 2^23 µs ≈ 8.4 s, then the overflow bucket

export interface IoStatsSnapshot {
  readOps: number;
  writeOps: number;
  otherOps: number;
  readBytes: number;
  writeBytes: number;
  errors: number;
  /** Commands currently running. */
  inFlight: number;
  /** Counts per bucket; bucket i = latency < 2^i µs. */
  latencyUs: number[];
}

export type OpKind = 0 | 1 | 2; // read, write, other
export const OP_READ: OpKind = 0;
export const OP_WRITE: OpKind = 1;
export const OP_OTHER: OpKind = 2;

export class IoStats {
  readOps = 0;
  writeOps = 0;
  otherOps = 0;
  readBytes = 0;
  writeBytes = 0;
  errors = 0;
  inFlight = 0;
  readonly latency = new Float64Array(LATENCY_BUCKETS + 1);

  /** Record one finished command. `micros` is its latency. */
  record(kind: OpKind, bytes: number, micros: number, failed: boolean): void {
    if (kind === OP_READ) {
      this.readOps++;
      this.readBytes += bytes;
    } else if (kind === OP_WRITE) {
      this.writeOps++;
      this.writeBytes += bytes;
    } else {
      this.otherOps++;
    }
    if (failed) this.errors++;
    let b = micros < 1 ? 0 : 32 - Math.clz32(micros);
    if (b > LATENCY_BUCKETS) b = LATENCY_BUCKETS;
    this.latency[b]++;
  }

  snapshot(): IoStatsSnapshot {
    return {
      readOps: this.readOps,
      writeOps: this.writeOps,
      otherOps: this.otherOps,
      readBytes: this.readBytes,
      writeBytes: this.writeBytes,
      errors: this.errors,
      inFlight: this.inFlight,
      latencyUs: Array.from(this.latency),
    };
  }
}

/** Which statistics class a CDB falls into (READ/WRITE families by opcode). */
export function opKindOf(cdbOpcode: number): OpKind {
  switch (cdbOpcode) {
    case 0x08: // READ(6)
    case 0x28: // READ(10)
    case 0xa8: // READ(12)
    case 0x88: // READ(16)
      return OP_READ;
    case 0x0a: // WRITE(6)
    case 0x2a: // WRITE(10)
    case 0xaa: // WRITE(12)
    case 0x8a: // WRITE(16)
    case 0x2e: // WRITE AND VERIFY(10)
    case 0xae: // WRITE AND VERIFY(12)
    case 0x8e: // WRITE AND VERIFY(16)
    case 0x89: // COMPARE AND WRITE
      return OP_WRITE;
    default:
      return OP_OTHER;
  }
}
