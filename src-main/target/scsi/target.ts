/**
 * A target's LUN map: routes commands to logical units, answers for LUNs
 * that have none (SPC-4 §6.6.2: peripheral qualifier 011b / LOGICAL
 * UNIT NOT SUPPORTED), and carries target-wide events — LUNs added or
 * removed at runtime, resets, I_T nexus loss — to every logical unit.
 */
import { MAX_FLAT_LUN, ScsiOp } from '../../iscsi/cdb';
import { AdditionalSense, SenseKey, buildFixedSense } from '../../iscsi/sense';
import { DEFAULT_SUPPORTED_TMFS, LogicalUnit } from './logical-unit';
import { SenseError, allocated, checkCondition, fromSenseError, good } from './response';
import { reportLunsData } from './spc';
import type { ItNexus, LogicalUnitOptions, ScsiCallback, ScsiCommand, SupportedTmfs } from './types';
import { absentLunInquiry } from './vpd';

export interface ScsiTargetOptions {
  /** Task management functions the connection layer implements (REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS). */
  supportedTmfs?: Partial<SupportedTmfs>;
}

export class ScsiTarget {
  readonly supportedTmfs: SupportedTmfs;
  private readonly map = new Map<number, LogicalUnit>();
  private readonly known = new Map<string, ItNexus>();

  constructor(options: ScsiTargetOptions = {}) {
    this.supportedTmfs = { ...DEFAULT_SUPPORTED_TMFS, ...options.supportedTmfs };
  }

  /** LUN numbers in use, ascending. */
  get lunNumbers(): number[] {
    return [...this.map.keys()].sort((a, b) => a - b);
  }

  getLun(lun: number): LogicalUnit | undefined {
    return this.map.get(lun);
  }

  has(lun: number): boolean {
    return this.map.has(lun);
  }

  /** LUN numbers in use, ascending (same as lunNumbers). */
  luns(): number[] {
    return this.lunNumbers;
  }

  /** Creates a logical unit from `options` and maps it at `lun`. */
  add(lun: number, options: LogicalUnitOptions): LogicalUnit {
    const lu = new LogicalUnit(options);
    this.addLun(lun, lu);
    return lu;
  }

  /** Unmaps a LUN (same as removeLun). */
  remove(lun: number): void {
    this.removeLun(lun);
  }

  /** I_T nexuses that have sent this target a command and not gone away. */
  get nexuses(): ItNexus[] {
    return [...this.known.values()];
  }

  /**
   * Maps `lu` at `lun`. Every nexus already talking to this target gets
   * REPORTED LUNS DATA HAS CHANGED on the logical units it uses.
   */
  addLun(lun: number, lu: LogicalUnit): void {
    if (!Number.isInteger(lun) || lun < 0 || lun > MAX_FLAT_LUN) throw new RangeError(`LUN ${lun} is outside 0..${MAX_FLAT_LUN}`);
    if (this.map.has(lun)) throw new Error(`LUN ${lun} is already mapped`);
    for (const other of this.map.values()) {
      if (other === lu) throw new Error(`this logical unit is already mapped at another LUN`);
    }
    lu.resolveCopyTarget = (naa) => this.findByNaa(naa);
    lu.reportLuns = (nexusKey) => this.reportLunsFor(nexusKey);
    lu.supportedTmfs = this.supportedTmfs;
    this.lunsChanged();
    this.map.set(lun, lu);
  }

  /** Unmaps a LUN (the caller closes its backstore). Other nexuses get REPORTED LUNS DATA HAS CHANGED. */
  removeLun(lun: number): LogicalUnit | undefined {
    const lu = this.map.get(lun);
    if (lu === undefined) return undefined;
    this.map.delete(lun);
    lu.resolveCopyTarget = (naa) => (naa.equals(lu.identity.naa) ? lu : undefined);
    this.lunsChanged();
    return lu;
  }

  private lunsChanged(): void {
    for (const lu of this.map.values()) lu.establishUnitAttention(AdditionalSense.REPORTED_LUNS_DATA_HAS_CHANGED);
  }

  private findByNaa(naa: Buffer): LogicalUnit | undefined {
    for (const lu of this.map.values()) if (lu.identity.naa.equals(naa)) return lu;
    return undefined;
  }

  private reportLunsFor(nexusKey: string): number[] {
    for (const lu of this.map.values()) lu.clearUnitAttention(nexusKey, AdditionalSense.REPORTED_LUNS_DATA_HAS_CHANGED);
    return this.lunNumbers;
  }

  /**
   * Runs one command. `cb` is called exactly once, possibly before this
   * returns.
   */
  execute(cmd: ScsiCommand, cb: ScsiCallback): void {
    const key = cmd.nexus.key;
    if (!this.known.has(key)) this.known.set(key, cmd.nexus);
    const lu = this.map.get(cmd.lun);
    if (lu !== undefined) return lu.execute(cmd, cb);
    try {
      this.absent(cmd, cb);
    } catch (e) {
      if (e instanceof SenseError) return cb(fromSenseError(e));
      cb(checkCondition(SenseKey.HARDWARE_ERROR, AdditionalSense.INTERNAL_TARGET_FAILURE));
    }
  }

  /** A command to a LUN with no logical unit. */
  private absent(cmd: ScsiCommand, cb: ScsiCallback): void {
    const cdb = cmd.cdb;
    switch (cdb[0]) {
      case ScsiOp.INQUIRY:
        if (cdb.length >= 6 && (cdb[1] & 0x01) === 0) return cb(good(allocated(absentLunInquiry(), cdb.readUInt16BE(3))));
        break;
      case ScsiOp.REPORT_LUNS:
        if (cdb.length >= 12) return cb(good(allocated(reportLunsData(cdb, this.reportLunsFor(cmd.nexus.key)), cdb.readUInt32BE(6))));
        break;
      case ScsiOp.REQUEST_SENSE:
        if (cdb.length >= 6) {
          const sense = buildFixedSense({ key: SenseKey.ILLEGAL_REQUEST, code: AdditionalSense.LOGICAL_UNIT_NOT_SUPPORTED });
          return cb(good(allocated(sense, cdb[4])));
        }
        break;
      default:
        break;
    }
    cb(checkCondition(SenseKey.ILLEGAL_REQUEST, AdditionalSense.LOGICAL_UNIT_NOT_SUPPORTED));
  }

  /**
   * LOGICAL UNIT RESET from a task management request. Returns false when
   * there is no such LUN (TMF response: LUN DOES NOT EXIST). The caller
   * aborts the LUN's tasks itself.
   */
  lunReset(lun: number, _nexus?: ItNexus): boolean {
    const lu = this.map.get(lun);
    if (lu === undefined) return false;
    lu.reset('lun');
    return true;
  }

  /** TARGET WARM RESET / TARGET COLD RESET: every logical unit is reset. */
  targetReset(_kind: 'warm' | 'cold' = 'warm'): void {
    for (const lu of this.map.values()) lu.reset('target');
  }

  /**
   * The I_T nexus ended (logout, session closed, connection dropped with
   * nothing left to recover, I_T NEXUS RESET): releases what SPC ties to the
   * nexus on every logical unit.
   */
  nexusGone(nexus: ItNexus): void {
    this.known.delete(nexus.key);
    for (const lu of this.map.values()) lu.nexusGone(nexus);
  }
}
