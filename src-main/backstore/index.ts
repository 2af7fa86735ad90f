// Backstores: what a LUN is stored on. One entry point for the service and
// the CLI: parse a spec string (or build a spec), then openBackstore().
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Backstore } from './types';
import { BackstoreError, describeOpenError, formatBytes } from './errors';
import { createImage, openFileBackstore } from './file';
import { openBlockBackstore } from './block';
import { createMemoryBackstore } from './memory';
import type { BackstoreSpec } from './spec';

export type { Backstore, BackstoreCapabilities, AllocationExtent, IoCallback } from './types';
export { BackstoreError, isBackstoreError, formatBytes, type BackstoreErrorCode } from './errors';
export { parseBackstoreSpec, parseSize, type BackstoreSpec, type BackstoreKind } from './spec';
export { createImage, openFileBackstore, type CreateImageOptions, type CreatedImage, type OpenFileOptions } from './file';
export { openBlockBackstore, type OpenBlockOptions } from './block';
export { createMemoryBackstore, type MemoryOptions } from './memory';
export { nativeStatus, type NativeStatus } from './native';

export interface OpenBackstoreOptions {
  /** Logical block size: 512 (default; a block device's own by default) or 4096. */
  blockSize?: number;
  /** Told about things worth a log line, e.g. a thin image larger than the free space. */
  onWarning?: (message: string) => void;
}

/**
 * Opens the backstore a spec describes. A file spec with `create` (and a
 * size) creates a thin image when the file does not exist yet, and opens it
 * as it is when it exists with that very size.
 */
export async function openBackstore(spec: BackstoreSpec, options: OpenBackstoreOptions = {}): Promise<Backstore> {
  const readOnly = spec.readOnly ?? false;
  switch (spec.kind) {
    case 'memory': {
      if (spec.sizeBytes === undefined) {
        throw new BackstoreError('BACKSTORE_BAD_SIZE', 'A memory LUN needs a size, e.g. memory:1GiB.');
      }
      return createMemoryBackstore(spec.sizeBytes, { blockSize: options.blockSize ?? 512, readOnly });
    }
    case 'block': {
      if (!spec.path) throw new BackstoreError('BACKSTORE_BAD_SPEC', 'A block LUN needs a device path, e.g. block:/dev/sdb.');
      return openBlockBackstore(spec.path, { readOnly, blockSize: options.blockSize });
    }
    case 'file': {
      if (!spec.path) throw new BackstoreError('BACKSTORE_BAD_SPEC', 'A file LUN needs an image path, e.g. file:/srv/spindle/disk1.img:20GiB.');
      const path = resolve(spec.path);
      if (spec.create) {
        if (spec.sizeBytes === undefined) {
          throw new BackstoreError('BACKSTORE_BAD_SIZE', `To create ${path}, give its size, e.g. file:${path}:20GiB.`, { path });
        }
        const existing = await stat(path).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return null;
          throw describeOpenError(err, path, 'image file');
        });
        if (existing === null) {
          if (readOnly) {
            throw new BackstoreError('BACKSTORE_READ_ONLY', `${path} does not exist, and a new image cannot be created for a read-only LUN — create it read-write first.`, {
              path,
            });
          }
          const created = await createImage(path, spec.sizeBytes, { thin: true, blockSize: options.blockSize });
          if (created.warning !== null) options.onWarning?.(created.warning);
        } else if (existing.isFile() && existing.size !== spec.sizeBytes) {
          throw new BackstoreError(
            'BACKSTORE_EXISTS',
            `${path} already exists with a size of ${formatBytes(existing.size)} (${existing.size} bytes), not ${formatBytes(spec.sizeBytes)} — ` +
              `drop the size (file:${path}) to use it as it is, or choose another name. The file was not changed.`,
            { path },
          );
        }
      }
      return openFileBackstore(path, { readOnly, blockSize: options.blockSize });
    }
    default: {
      const kind: never = spec.kind;
      throw new BackstoreError('BACKSTORE_BAD_SPEC', `Unknown backstore kind "${String(kind)}" — use file, block or memory.`);
    }
  }
}
