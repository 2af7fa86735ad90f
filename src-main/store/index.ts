// Public surface of the store. Only the service imports this.
export { openStore, DB_FILE_NAME, LOCK_FILE_NAME } from './store';
export type { Store, SettingsRepo, EventLogRepo, EventRecord, EventLevel, OpenStoreOptions } from './store';
export { LATEST_SCHEMA_VERSION, SPINDLE_APPLICATION_ID, migrations, assertMigrationsValid } from './migrations';
export type { Migration } from './migrations';
export { resolveDataDir, ensureDataDir } from './data-dir';
export type { DataDirInputs } from './data-dir';
export { StoreError, isStoreError } from './errors';
export type { StoreErrorCode } from './errors';
