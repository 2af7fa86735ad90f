// Argument parsing shared by every command: node's strict parseArgs, with its
// errors rewritten into one line that says what to do.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { usageError } from './errors';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export function parseCommandArgs<O extends OptionSpec>(command: string, argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals });
  } catch (err) {
    const e = err as { code?: string; message: string };
    const unknown = /Unknown option '([^']+)'/.exec(e.message);
    if (unknown) throw usageError(`${command}: unknown option ${unknown[1]} (see: spindle ${command} --help)`);
    if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      throw usageError(`${command}: unexpected argument ${/'([^']*)'/.exec(e.message)?.[1] ?? ''} (see: spindle ${command} --help)`);
    }
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      throw usageError(`${command}: ${e.message.replace(/^Option '([^']+)'.*argument missing.*$/s, 'option $1 needs a value')} (see: spindle ${command} --help)`);
    }
    throw usageError(`${command}: ${e.message}`);
  }
}

export interface HostPort {
  host: string;
  port: number;
}

/** "HOST:PORT", "[v6]:PORT" or ":PORT" (host defaults). Port 0 asks the OS for a free one. */
export function parseHostPort(flag: string, value: string, defaultHost: string): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw usageError(`${flag} expects HOST:PORT (e.g. 127.0.0.1:7373), got "${value}"`);
  }
  return { host: m[1] ?? (m[2] || defaultHost), port };
}

export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
