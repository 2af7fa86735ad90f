// Small pure conversions between what the store keeps and what the engine
// and backstores take: backstore rows → open specs, portals ↔ HOST:PORT.
import { resolve } from 'node:path';
import type { BackstoreSpec } from '../../backstore';
import type { Backstore as StoredBackstore } from '../../store';
import { ApiError } from '../api/schema';

/** How to open a stored backstore: never creating anything (restore must not make a vanished image reappear empty). */
export function backstoreSpecOf(b: StoredBackstore): BackstoreSpec {
  switch (b.kind) {
    case 'memory':
      return { kind: 'memory', sizeBytes: b.sizeBytes ?? 0, readOnly: b.readOnly };
    case 'file':
    case 'block':
      return { kind: b.kind, path: b.path ?? '', readOnly: b.readOnly };
  }
}

export function formatPortal(p: { host: string; port: number }): string {
  return p.host.includes(':') ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`;
}

/** "HOST:PORT" or "[V6]:PORT" → portal; ApiError naming `field` otherwise. */
export function parsePortal(text: string, field = 'portal'): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new ApiError('INVALID_PARAMS', `"${text}" is not a portal — expected HOST:PORT, e.g. 0.0.0.0:3260`, { [field]: 'expected HOST:PORT' });
  }
  return { host: m[1] ?? m[2]!, port };
}

export function samePath(a: string, b: string): boolean {
  return resolve(a) === resolve(b);
}
