// The `spindle` command: a thin front end of the service and the engines.
// Every failure ends as one line on stderr and a non-zero exit code.
import { disks } from './commands/disks';
import { discover } from './commands/discover';
import { inquiry } from './commands/inquiry';
import { serve } from './commands/serve';
import { targetServe } from './commands/target-serve';
import { configCommands } from './commands/config-commands';
import type { Command } from './command';
import { CliError } from './errors';
import { packageVersion } from '../service/service';

const commands: Command[] = [serve, disks, targetServe, discover, inquiry, ...configCommands];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `usage: spindle COMMAND [OPTIONS]

Spindle shares drives and disk images over iSCSI and connects to iSCSI targets.

commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run "spindle COMMAND --help" for a command's options.`;
}

/** Finds the longest command name that prefixes argv ("target serve" before "target"). */
function findCommand(argv: string[]): { command: Command; rest: string[] } | null {
  let best: { command: Command; rest: string[] } | null = null;
  for (const command of commands) {
    const words = command.name.split(' ');
    if (words.every((w, i) => argv[i] === w) && (!best || words.length > best.command.name.split(' ').length)) {
      best = { command, rest: argv.slice(words.length) };
    }
  }
  return best;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    const topic = argv[0] === 'help' ? findCommand(argv.slice(1)) : null;
    process.stdout.write(`${topic ? topic.command.help : usage()}\n`);
    return 0;
  }
  if (argv[0] === '--version' || argv[0] === '-v') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const found = findCommand(argv);
  if (!found) {
    // "spindle targets": the group's sub-commands.
    const group = commands.filter((c) => c.name.startsWith(`${argv[0]} `));
    if (group.length > 0 && (argv.length === 1 || argv[1]?.startsWith('-'))) {
      const width = Math.max(...group.map((c) => c.name.length));
      process.stdout.write(`usage: spindle ${argv[0]} COMMAND ...\n\n${group.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}\n`);
      return argv.length === 1 ? 2 : 0;
    }
    if (group.length > 0) throw new CliError(`unknown command "${argv[0]} ${argv[1]}" (see: spindle ${argv[0]} --help)`, 2);
    throw new CliError(`unknown command "${argv[0]}" (see: spindle --help)`, 2);
  }
  if (found.rest.includes('--help') || found.rest.includes('-h')) {
    process.stdout.write(`${found.command.help}\n`);
    return 0;
  }
  return found.command.run(found.rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as { message?: string; code?: string; exitCode?: number };
    // Known failures (CliError, StoreError, ApiError, DiskError) carry a message meant for people.
    const line = (e?.message ?? String(err)).split('\n')[0];
    process.stderr.write(`spindle: ${line}\n`);
    if (process.env.SPINDLE_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exitCode = err instanceof CliError ? err.exitCode : 1;
  },
);
