/**
 * One logical unit: a backstore with SCSI state around it — identity, unit
 * attentions per I_T nexus, SPC-2 and persistent reservations, mode
 * parameters (shared and per I_T nexus, see mode.ts), medium state — and
 * the dispatcher that runs a command through the checks SAM-5 orders (unit
 * attention, reservation conflict, medium, write protection, then the
 * command's own) before its handler.
 */
import type { Backstore } from '../../backstore/types';
import { AdditionalSense, SenseKey } from '../../iscsi/sense';
import { BufferPool, defaultBufferPool } from './buffer-pool';
import { deriveIdentity, type LuIdentity } from './identity';
import {
  DEFAULT_NEXUS_MODE_PARAMETERS,
  DEFAULT_SHARED_MODE_PARAMETERS,
  type ModeParameters,
  type NexusModeParameters,
  type SharedModeParameters,
} from './mode';
import { lookupCommand, type CommandDescriptor } from './opcodes';
import { RangeLock } from './range-lock';
import {
  SenseError,
  checkCondition,
  fromSenseError,
  invalidCdb,
  lbaOutOfRange,
  reservationConflict,
  taskAborted,
} from './response';
import { TaskAttr, type ItNexus, type LogicalUnitOptions, type ScsiCallback, type ScsiCommand, type SupportedTmfs } from './types';
import { prConflicts, type PrState } from './pr';
import type { CopyResult } from './xcopy';

/** Per-I_T-nexus state of a logical unit. */
export interface NexusState {
  readonly nexus: ItNexus;
  /** Pending unit attentions (`asc << 8 | ascq`), oldest first. */
  ua: number[];
  /** PREVENT ALLOW MEDIUM REMOVAL with PREVENT = 1 from this nexus. */
  prevent: boolean;
  /** This nexus's copy of the per-I_T-nexus mode pages (the Control page: SWP). */
  readonly mode: NexusModeParameters;
}

export interface BlockLimits {
  maxTransferBlocks: number;
  optimalTransferBlocks: number;
  optimalGranularityBlocks: number;
  maxCompareAndWriteBlocks: number;
  maxUnmapBlocks: number;
  maxUnmapDescriptors: number;
  maxWriteSameBlocks: number;
  maxAtomicBlocks: number;
}

const MAX_TRANSFER_BYTES = 16 << 20;
const OPTIMAL_TRANSFER_BYTES = 1 << 20;
const MAX_WRITE_SAME_BYTES = 64 << 20;
/**
 * MAXIMUM WRITE SAME LENGTH stays below 65536 blocks: libiscsi's
 * WriteSame16.Unmap writes 65536 blocks with one WRITE(16) when it may
 * (more than MAXIMUM TRANSFER LENGTH allows with 512-byte blocks).
 */
const MAX_WRITE_SAME_BLOCKS = 0xffff;

/** Unit attentions that replace whatever is pending (SAM-5 §5.14: a reset supersedes the rest). */
const RESET_UAS = new Set<number>([
  AdditionalSense.POWER_ON_RESET_OR_BUS_DEVICE_RESET,
  AdditionalSense.POWER_ON_OCCURRED,
  AdditionalSense.BUS_DEVICE_RESET_FUNCTION_OCCURRED,
  AdditionalSense.I_T_NEXUS_LOSS_OCCURRED,
]);

type Queued = [ScsiCommand, ScsiCallback];

/** What a connection layer per RFC 7143 is expected to carry out. */
export const DEFAULT_SUPPORTED_TMFS: Readonly<SupportedTmfs> = Object.freeze({
  abortTask: true,
  abortTaskSet: true,
  clearAca: false,
  clearTaskSet: true,
  logicalUnitReset: true,
  queryTask: false,
  targetReset: true,
  wakeup: false,
  queryUnitAttention: false,
  queryTaskSet: false,
  itNexusReset: false,
});

export class LogicalUnit {
  readonly backstore: Backstore;
  readonly blockSize: number;
  readonly identity: LuIdentity;
  readonly vendor: string;
  readonly product: string;
  readonly revision: string;
  readonly removable: boolean;
  readonly physicalBlockExponent: number;
  readonly limits: BlockLimits;
  readonly lock = new RangeLock();
  readonly pool: BufferPool;
  /** Hands a pooled buffer back (bound, for response `release`). */
  readonly giveBuffer: (buf: Buffer) => void;

  /** State of every I_T nexus that has sent this LU a command. */
  readonly nexuses = new Map<string, NexusState>();
  /** SPC-2 RESERVE(6)/(10) holder, by nexus key. */
  spc2Holder: string | null = null;
  readonly pr: PrState = { generation: 0, registrations: new Map(), reservation: null };
  /** The shared mode pages (the Caching page: WCE); the Control page is per nexus (NexusState.mode). */
  readonly mode: SharedModeParameters = { ...DEFAULT_SHARED_MODE_PARAMETERS };
  mediumLoaded = true;
  /** Held EXTENDED COPY results, per nexus key then list identifier. */
  readonly copyResults = new Map<string, Map<number, CopyResult>>();

  /**
   * Finds the logical unit an EXTENDED COPY target descriptor names (by its
   * NAA designator). A ScsiTarget points this at its whole LUN map; alone,
   * a logical unit only finds itself.
   */
  resolveCopyTarget: (naa: Buffer) => LogicalUnit | undefined = (naa) => (naa.equals(this.identity.naa) ? this : undefined);
  /**
   * LUNs for REPORT LUNS from a nexus (the call also clears that nexus's
   * REPORTED LUNS DATA HAS CHANGED); a ScsiTarget replaces this with its map.
   */
  reportLuns: (nexusKey: string) => number[] = (nexusKey) => {
    this.clearUnitAttention(nexusKey, AdditionalSense.REPORTED_LUNS_DATA_HAS_CHANGED);
    return [0];
  };
  /** Task management functions the connection layer carries out (a ScsiTarget sets its own). */
  supportedTmfs: SupportedTmfs = { ...DEFAULT_SUPPORTED_TMFS };

  private readonly forcedReadOnly: boolean;
  private inflight = 0;
  private orderedRunning = false;
  private readonly queue: Queued[] = [];

  constructor(options: LogicalUnitOptions, pool: BufferPool = defaultBufferPool) {
    const bs = options.backstore;
    this.backstore = bs;
    this.blockSize = bs.blockSize;
    this.identity = deriveIdentity(options.seed, options.ieeeCompanyId);
    this.vendor = options.vendor ?? 'SPINDLE';
    this.product = options.product ?? 'Spindle disk';
    this.revision = options.revision ?? '0001';
    this.removable = options.removable ?? false;
    this.forcedReadOnly = options.readOnly ?? false;
    this.physicalBlockExponent = options.physicalBlockExponent ?? 0;
    if (!Number.isInteger(this.physicalBlockExponent) || this.physicalBlockExponent < 0 || this.physicalBlockExponent > 15) {
      throw new RangeError(`physicalBlockExponent ${this.physicalBlockExponent} is outside 0..15`);
    }
    this.pool = pool;
    this.giveBuffer = (buf) => pool.release(buf);
    const blocks = (bytes: number): number => Math.max(1, Math.floor(bytes / this.blockSize));
    const maxTransferBlocks = blocks(MAX_TRANSFER_BYTES);
    // Whole physical blocks, and at least a 4 KiB page (a file's holes are punched in filesystem blocks);
    // LOWEST ALIGNED LBA is 0, so LBA 0 starts a physical block and these multiples stay aligned.
    const optimalGranularityBlocks = Math.max(1 << this.physicalBlockExponent, blocks(4096));
    this.limits = {
      maxTransferBlocks,
      // OPTIMAL TRANSFER LENGTH: 1 MiB, in whole granules (more only with physical blocks above 1 MiB).
      optimalTransferBlocks: Math.max(1, Math.floor(blocks(OPTIMAL_TRANSFER_BYTES) / optimalGranularityBlocks)) * optimalGranularityBlocks,
      optimalGranularityBlocks,
      maxCompareAndWriteBlocks: 255,
      maxUnmapBlocks: 0x100000,
      maxUnmapDescriptors: 256,
      maxWriteSameBlocks: Math.min(blocks(MAX_WRITE_SAME_BYTES), MAX_WRITE_SAME_BLOCKS),
      maxAtomicBlocks: maxTransferBlocks,
    };
  }

  /** Number of logical blocks (READ CAPACITY's last LBA + 1). */
  get numBlocks(): number {
    return Math.floor(this.backstore.sizeBytes / this.blockSize);
  }

  /** Writes are refused from every nexus: read-only backstore or export. */
  get writeProtected(): boolean {
    return this.forcedReadOnly || this.backstore.readOnly;
  }

  /** Writes from this nexus are refused: the LU is read-only, or the nexus set SWP in its Control page. */
  writeProtectedFor(nexus: ItNexus): boolean {
    return this.writeProtected || this.nexusState(nexus).mode.swp;
  }

  /** The mode parameters as this nexus sees them: the shared pages and its own Control page. */
  modeFor(nexus: ItNexus): ModeParameters {
    return { ...this.mode, ...this.nexusState(nexus).mode };
  }

  /** Thin provisioned (LBPME): the backstore can deallocate. */
  get thinProvisioned(): boolean {
    return this.backstore.capabilities.canUnmap && !this.backstore.readOnly && !this.forcedReadOnly;
  }

  /** Deallocated blocks read back as zeros (LBPRZ). */
  get lbprz(): boolean {
    return this.thinProvisioned && this.backstore.capabilities.unmapZeroes;
  }

  // -------------------------------------------------------------------------
  // Command entry
  // -------------------------------------------------------------------------

  /**
   * Runs one command; `cb` is called exactly once, possibly before
   * `execute` returns (commands that need no I/O complete synchronously).
   */
  execute(cmd: ScsiCommand, cb: ScsiCallback): void {
    const attr = cmd.taskAttribute;
    if (attr !== TaskAttr.HEAD_OF_QUEUE && (this.orderedRunning || this.queue.length > 0)) {
      this.queue.push([cmd, cb]);
      return;
    }
    if (attr === TaskAttr.ORDERED && this.inflight > 0) {
      this.queue.push([cmd, cb]);
      return;
    }
    this.start(cmd, cb);
  }

  private start(cmd: ScsiCommand, cb: ScsiCallback): void {
    const ordered = cmd.taskAttribute === TaskAttr.ORDERED;
    if (ordered) this.orderedRunning = true;
    this.inflight++;
    let done = false;
    this.dispatch(cmd, (resp) => {
      if (done) return;
      done = true;
      this.inflight--;
      if (ordered) this.orderedRunning = false;
      cb(resp);
      if (this.queue.length > 0) this.drain();
    });
  }

  private drain(): void {
    while (this.queue.length > 0 && !this.orderedRunning) {
      const [cmd, cb] = this.queue[0];
      if (cmd.aborted) {
        this.queue.shift();
        cb(taskAborted());
        continue;
      }
      if (cmd.taskAttribute === TaskAttr.ORDERED && this.inflight > 0) return;
      this.queue.shift();
      this.start(cmd, cb);
    }
  }

  /**
   * Completes commands still queued behind an ORDERED task with TASK
   * ABORTED, without running them (resets, nexus loss). Commands already
   * running finish normally.
   */
  abortQueued(which: (cmd: ScsiCommand) => boolean): void {
    const keep: Queued[] = [];
    const gone: Queued[] = [];
    for (const q of this.queue) (which(q[0]) ? gone : keep).push(q);
    if (gone.length === 0) return;
    this.queue.length = 0;
    this.queue.push(...keep);
    for (const [, cb] of gone) cb(taskAborted());
  }

  /** State for a nexus; the first command from it gets a POWER ON unit attention. */
  nexusState(nexus: ItNexus): NexusState {
    let st = this.nexuses.get(nexus.key);
    if (st === undefined) {
      st = { nexus, ua: [AdditionalSense.POWER_ON_RESET_OR_BUS_DEVICE_RESET], prevent: false, mode: { ...DEFAULT_NEXUS_MODE_PARAMETERS } };
      this.nexuses.set(nexus.key, st);
    }
    return st;
  }

  private dispatch(cmd: ScsiCommand, done: ScsiCallback): void {
    const cdb = cmd.cdb;
    if (cdb.length === 0) return done(checkCondition(SenseKey.ILLEGAL_REQUEST, AdditionalSense.INVALID_COMMAND_OPERATION_CODE));
    const st = this.nexusState(cmd.nexus);
    const desc = lookupCommand(this, cdb);
    if (st.ua.length > 0 && (typeof desc === 'string' || desc.reportsUa)) {
      const code = st.ua.shift() as number;
      return done(checkCondition(SenseKey.UNIT_ATTENTION, code));
    }
    if (desc === 'invalid-service-action') return done(fromSenseError(invalidCdb(1, 4)));
    if (desc === 'invalid-opcode') {
      return done(checkCondition(SenseKey.ILLEGAL_REQUEST, AdditionalSense.INVALID_COMMAND_OPERATION_CODE, { inCdb: true, byte: 0, bit: 7 }));
    }
    let reply = done;
    try {
      checkCdbFields(desc, cdb);
      if (desc.dataOutLength !== undefined) {
        const need = desc.dataOutLength(this, cdb);
        reply = (resp) => {
          resp.dataOutLength = need;
          done(resp);
        };
      }
      if (this.reservationConflict(desc, cmd, st)) return reply(reservationConflict());
      if (desc.needsMedium && !this.mediumLoaded) return reply(checkCondition(SenseKey.NOT_READY, AdditionalSense.MEDIUM_NOT_PRESENT));
      if (desc.writesMedium) this.checkWritable(cmd.nexus);
      desc.handler(this, cmd, reply);
    } catch (e) {
      // A handler that threw after completing (or half-way through its I/O setup) must not answer twice:
      // the completion wrapper in start() ignores a second call.
      if (e instanceof SenseError) return reply(fromSenseError(e));
      return reply(checkCondition(SenseKey.HARDWARE_ERROR, AdditionalSense.INTERNAL_TARGET_FAILURE));
    }
  }

  private reservationConflict(desc: CommandDescriptor, cmd: ScsiCommand, st: NexusState): boolean {
    const holder = this.spc2Holder;
    if (holder !== null && holder !== st.nexus.key && !desc.spc2Allowed) return true;
    if (this.pr.reservation !== null) {
      const cls = desc.prClassOf ? desc.prClassOf(cmd.cdb) : desc.prClass;
      if (prConflicts(this.pr, cls, st.nexus.key)) return true;
    }
    return false;
  }

  // -------------------------------------------------------------------------
  // Helpers for handlers
  // -------------------------------------------------------------------------

  /** Throws LBA OUT OF RANGE unless [lba, lba + blocks) lies on the medium. */
  checkRange(lba: number, blocks: number): void {
    if (lba + blocks > this.numBlocks) throw lbaOutOfRange();
  }

  /**
   * Throws DATA PROTECT / WRITE PROTECTED when writes are refused — from
   * `nexus` (its SWP counts too), or from every nexus when none is given.
   * The dispatcher runs it with the nexus before every command that writes
   * the medium (CommandDescriptor.writesMedium).
   */
  checkWritable(nexus?: ItNexus): void {
    if (nexus ? this.writeProtectedFor(nexus) : this.writeProtected) throw new SenseError(SenseKey.DATA_PROTECT, AdditionalSense.WRITE_PROTECTED);
  }

  /**
   * Writes `length` bytes of `buf` at `offset` (bytes), durable before `cb`
   * when `fua` or when the write cache is disabled.
   */
  writeBlocks(buf: Buffer, bufOffset: number, length: number, offset: number, fua: boolean, cb: (err: NodeJS.ErrnoException | null) => void): void {
    const durable = fua || !this.mode.wce;
    const bs = this.backstore;
    if (!durable || bs.capabilities.canFua) {
      bs.write(buf, bufOffset, length, offset, durable, cb);
      return;
    }
    bs.write(buf, bufOffset, length, offset, false, (err) => (err ? cb(err) : bs.flush(cb)));
  }

  // -------------------------------------------------------------------------
  // Unit attentions and events
  // -------------------------------------------------------------------------

  /**
   * Queues a unit attention for the given nexuses (default: every nexus
   * this LU knows), except `except`.
   */
  establishUnitAttention(code: number, options: { except?: string; only?: Iterable<string> } = {}): void {
    const targets = options.only ? Array.from(options.only, (k) => this.nexuses.get(k)).filter((s): s is NexusState => s !== undefined) : this.nexuses.values();
    for (const st of targets) {
      if (st.nexus.key === options.except) continue;
      if (RESET_UAS.has(code)) st.ua = [code];
      else if (!st.ua.includes(code)) st.ua.push(code);
    }
  }

  /** Drops a pending unit attention (REPORT LUNS clears REPORTED LUNS DATA HAS CHANGED). */
  clearUnitAttention(nexusKey: string, code: number): void {
    const st = this.nexuses.get(nexusKey);
    if (st) st.ua = st.ua.filter((c) => c !== code);
  }

  /** Medium removal is prevented by some nexus. */
  get removalPrevented(): boolean {
    for (const st of this.nexuses.values()) if (st.prevent) return true;
    return false;
  }

  /**
   * LOGICAL UNIT RESET (SAM-5 §7.7), or this LU's share of a target reset:
   * SPC-2 reservation, PREVENT state, held copy results and mode
   * parameters (shared and every nexus's) go; persistent reservations
   * stay. Every nexus gets BUS DEVICE RESET FUNCTION OCCURRED, the
   * requester's too: SAM-5's logical unit reset "shall ... establish a unit
   * attention condition" and names no exception (LIO does the same).
   * Aborting the tasks themselves is the connection layer's.
   */
  reset(kind: 'lun' | 'target' = 'lun'): void {
    this.abortQueued(() => true);
    this.spc2Holder = null;
    for (const st of this.nexuses.values()) {
      st.prevent = false;
      Object.assign(st.mode, DEFAULT_NEXUS_MODE_PARAMETERS);
    }
    this.copyResults.clear();
    Object.assign(this.mode, DEFAULT_SHARED_MODE_PARAMETERS);
    this.establishUnitAttention(
      kind === 'lun' ? AdditionalSense.BUS_DEVICE_RESET_FUNCTION_OCCURRED : AdditionalSense.POWER_ON_RESET_OR_BUS_DEVICE_RESET,
    );
  }

  /**
   * The I_T nexus is gone (session closed, or dropped and not recovered):
   * its SPC-2 reservation, PREVENT, held copy results and its copy of the
   * per-nexus mode pages are released. PR
   * registrations and reservations persist (SPC-4 §5.9.1). If it comes back
   * it is a new nexus to this LU and gets a POWER ON unit attention.
   */
  nexusGone(nexus: ItNexus): void {
    this.abortQueued((cmd) => cmd.nexus.key === nexus.key);
    if (this.spc2Holder === nexus.key) this.spc2Holder = null;
    this.nexuses.delete(nexus.key);
    this.copyResults.delete(nexus.key);
  }

  /** The backstore's size changed: CAPACITY DATA HAS CHANGED to every nexus. */
  capacityChanged(): void {
    this.establishUnitAttention(AdditionalSense.CAPACITY_DATA_HAS_CHANGED);
  }
}

/**
 * Rejects CDBs shorter than the command and bits the command does not use
 * (reserved fields, RDPROTECT/WRPROTECT without protection information,
 * NACA/LINK in the control byte) with INVALID FIELD IN CDB, pointing at the
 * highest offending bit.
 */
function checkCdbFields(desc: CommandDescriptor, cdb: Buffer): void {
  const usage = desc.usage;
  const n = usage.length;
  if (cdb.length < n) throw invalidCdb(cdb.length);
  for (let i = 1; i < n; i++) {
    const bad = cdb[i] & ~usage[i];
    if (bad !== 0) throw invalidCdb(i, 31 - Math.clz32(bad));
  }
}
