/**
 * PDU writer: gathers one PDU's header, AHS, HeaderDigest, data segment,
 * padding and DataDigest into a single write (RFC 7143 §11.1–§11.2).
 *
 * The data segment is never copied. The header (48 bytes, plus AHS and
 * digest) IS copied into a small pooled buffer, so the caller may encode
 * every PDU into one reused per-connection BHS scratch buffer and hand it to
 * writePdu() again right away, even while earlier writes are still queued.
 *
 * With a net.Socket, writePdu() corks the socket, writes the 1-3 pieces and
 * uncorks: Node flushes them with one writev() — one syscall per PDU. To send
 * several PDUs in one syscall (Data-In burst + SCSI Response), cork the
 * socket around the writePdu() calls yourself; corking nests.
 */
import { BHS_LENGTH, DIGEST_LENGTH } from './constants';
import { PADDING, padLength, readAhsByteLength, readDataSegmentLength, EMPTY_BUFFER } from './bhs';
import { dataDigest, headerDigest } from './digest';

/** What writePdu needs from a socket (net.Socket and tls.TLSSocket fit). */
export interface PduSink {
  cork(): void;
  uncork(): void;
  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean;
}

/** Called once the whole PDU has been handed to the kernel (or the write failed). */
export type WrittenCallback = (error?: Error | null) => void;

export interface DigestSettings {
  /** Append a CRC32C HeaderDigest after BHS+AHS. */
  headerDigest: boolean;
  /** Append a CRC32C DataDigest after each non-empty, padded data segment. */
  dataDigest: boolean;
}

export const NO_DIGESTS: DigestSettings = Object.freeze({ headerDigest: false, dataDigest: false });

/**
 * The wire pieces of one PDU, in order, for writev-style APIs:
 * [header (+AHS +HeaderDigest), data?, padding/DataDigest?].
 * `bhs` must already carry the right TotalAHSLength and DataSegmentLength
 * (the encoders set them); a mismatch throws RangeError — a bug, not input.
 */
export function framePdu(
  bhs: Buffer,
  data: Buffer = EMPTY_BUFFER,
  ahs: Buffer = EMPTY_BUFFER,
  digests: DigestSettings = NO_DIGESTS,
): Buffer[] {
  if (bhs.length < BHS_LENGTH) throw new RangeError(`BHS must be ${BHS_LENGTH} bytes, got ${bhs.length}`);
  if (readDataSegmentLength(bhs) !== data.length) {
    throw new RangeError(`BHS DataSegmentLength ${readDataSegmentLength(bhs)} but ${data.length} data bytes given`);
  }
  if (readAhsByteLength(bhs) !== ahs.length) {
    throw new RangeError(`BHS TotalAHSLength says ${readAhsByteLength(bhs)} bytes but ${ahs.length} AHS bytes given`);
  }

  const headerLength = BHS_LENGTH + ahs.length;
  const head = Buffer.allocUnsafe(headerLength + (digests.headerDigest ? DIGEST_LENGTH : 0));
  bhs.copy(head, 0, 0, BHS_LENGTH);
  if (ahs.length !== 0) ahs.copy(head, BHS_LENGTH);
  if (digests.headerDigest) head.writeUInt32LE(headerDigest(head.subarray(0, headerLength)), headerLength);
  if (data.length === 0) return [head];

  const pad = padLength(data.length);
  if (!digests.dataDigest) return pad === 0 ? [head, data] : [head, data, PADDING[pad]];
  // Padding (zeros) then the digest, which covers data and padding; little-endian (see digest.ts).
  const tail = Buffer.alloc(pad + DIGEST_LENGTH);
  tail.writeUInt32LE(dataDigest(data), pad);
  return [head, data, tail];
}

/**
 * Write one PDU to `sink` as a single corked write. Returns what the last
 * sink.write() returned: false means the socket's buffer is full — wait for
 * 'drain' before writing more (backpressure). `data` is referenced, not
 * copied, until written: recycle it (e.g. into a buffer pool) only from
 * `onWritten`.
 */
export function writePdu(
  sink: PduSink,
  bhs: Buffer,
  data: Buffer = EMPTY_BUFFER,
  ahs: Buffer = EMPTY_BUFFER,
  digests: DigestSettings = NO_DIGESTS,
  onWritten?: WrittenCallback,
): boolean {
  const pieces = framePdu(bhs, data, ahs, digests);
  const last = pieces.length - 1;
  if (last === 0) return sink.write(pieces[0], onWritten);
  sink.cork();
  for (let i = 0; i < last; i++) sink.write(pieces[i]);
  const ok = sink.write(pieces[last], onWritten);
  sink.uncork();
  return ok;
}

/**
 * A connection's writer: remembers the sink and the digest settings (switch
 * them on when the Full Feature Phase starts, like PduFramer).
 */
export class PduWriter implements DigestSettings {
  headerDigest = false;
  dataDigest = false;

  constructor(private readonly sink: PduSink) {}

  setDigests(headerDigest: boolean, dataDigest: boolean): void {
    this.headerDigest = headerDigest;
    this.dataDigest = dataDigest;
  }

  /** Write one PDU (see writePdu). `bhs` may be a reused scratch buffer. */
  write(bhs: Buffer, data: Buffer = EMPTY_BUFFER, ahs: Buffer = EMPTY_BUFFER, onWritten?: WrittenCallback): boolean {
    return writePdu(this.sink, bhs, data, ahs, this, onWritten);
  }

  /** Send everything written inside `fn` with one syscall (nested cork). */
  batch(fn: () => void): void {
    this.sink.cork();
    try {
      fn();
    } finally {
      this.sink.uncork();
    }
  }
}
