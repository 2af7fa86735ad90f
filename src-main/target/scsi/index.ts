/**
 * SCSI device emulation for the target (SPC-4 / SBC-3). The connection
 * layer uses ScsiTarget (one per iSCSI target) and the types; the rest is
 * exported for tests and tools.
 */
export type { ItNexus, ScsiCommand, ScsiResponse, ScsiCallback, LogicalUnitOptions, SupportedTmfs } from './types';
export { TaskAttr } from './types';
export { ScsiTarget, type ScsiTargetOptions } from './target';
export { LogicalUnit, DEFAULT_SUPPORTED_TMFS, type NexusState, type BlockLimits } from './logical-unit';
export { residualOf, type Residual } from './residual';
export { BufferPool, defaultBufferPool, type BufferPoolOptions } from './buffer-pool';
export { deriveIdentity, naaHex, DEFAULT_IEEE_COMPANY_ID, type LuIdentity } from './identity';
export { ALL_COMMANDS, type CommandDescriptor } from './opcodes';
