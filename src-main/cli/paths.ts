import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { resolveDataDir } from '../store';

/** The checkout (or installed package) root: two levels above src-main/cli. */
export const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

export function rendererDir(): string | null {
  const dir = fileURLToPath(new URL('../../out/renderer/', import.meta.url));
  return existsSync(`${dir}index.html`) ? dir : null;
}

export function dataDirFrom(flag: string | undefined): string {
  return resolveDataDir({ flag, env: process.env, home: homedir(), platform: process.platform });
}
