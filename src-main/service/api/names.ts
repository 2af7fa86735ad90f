// The API's method and event names as plain data, with no dependencies, so
// the sandboxed preload can allow-list them without bundling the schema's
// validators. schema.ts checks at compile time that these match its types.
export const METHOD_NAMES = [
  'app.info',
  'disks.list',
  'settings.get',
  'settings.set',
  'targets.list',
  'targets.get',
  'targets.create',
  'targets.update',
  'targets.delete',
  'targets.enable',
  'targets.disable',
  'luns.add',
  'luns.remove',
  'acls.add',
  'acls.remove',
  'requests.list',
  'requests.allow',
  'requests.deny',
  'sessions.list',
  'sessions.kick',
  'images.create',
  'remotes.list',
  'remotes.save',
  'remotes.remove',
  'remotes.discover',
  'config.exportLio',
  'config.importLio',
] as const;
export const EVENT_NAMES = [
  'disks.changed',
  'stats',
  'targets.changed',
  'sessions.opened',
  'sessions.closed',
  'requests.new',
  'requests.decided',
  'remotes.changed',
  'service.error',
] as const;

/** Electron IPC channels (both ends import these). */
export const IPC_CALL_CHANNEL = 'spindle:call';
export const IPC_EVENT_CHANNEL = 'spindle:event';
