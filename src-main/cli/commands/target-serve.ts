// `spindle target serve`: a foreground iSCSI target with an ephemeral
// configuration (no database), for scripts, tests and quick shares.
//
// Thread pool: when UV_THREADPOOL_SIZE is not set, this command re-executes
// itself once with it set, sized for its LUNs (../thread-pool.ts, shared with
// `spindle serve`). Set UV_THREADPOOL_SIZE yourself to choose the size and
// skip the re-exec.
//
// CHAP secrets never reach the re-executed child's command line (which any
// local user can read in /proc or ps): the parent drops --chap/--mutual-chap
// from the child's arguments and hands the credentials over in an
// environment variable (readable by the same user only), which the child
// removes from its environment as soon as it has read it. To keep a secret
// out of this process's own command line as well, use USER:@FILE.
import { readFileSync, statSync } from 'node:fs';
import { openBackstore, parseBackstoreSpec, type Backstore } from '../../backstore/index';
import { checkChapConfig } from '../../iscsi/chap';
import { validateIscsiName } from '../../iscsi/names';
import { TargetEngine, type LunConfig, type ChapSecret } from '../../target/target-engine';
import { parseCommandArgs, parseHostPort, formatHostPort, type HostPort } from '../args';
import { CliError, usageError } from '../errors';
import type { Command } from '../command';
import { reexecWithThreadPool, stopRequested, threadPoolSize, wantsThreadPoolReexec } from '../thread-pool';

const DEFAULT_PORTAL = '0.0.0.0:3260';
const DEFAULT_QUEUE_DEPTH = 128;

const help = `usage: spindle target serve --target IQN --lun N=SPEC [--lun N=SPEC]... [OPTIONS]

Serves one iSCSI target in the foreground until Ctrl-C (SIGINT) or SIGTERM.
Prints "listening on HOST:PORT" when ready. Nothing is saved.

  --target IQN             the target's name, e.g. iqn.2026-11.net.example:disk1
  --lun N=SPEC             LUN N (0..16383) stored on SPEC:
                             file:PATH        an existing image file
                             file:PATH:SIZE   an image file, created sparse if missing (e.g. 20GiB)
                             memory:SIZE      a memory disk (e.g. 1GiB)
                             block:DEV        a whole block device (e.g. /dev/sdb)
  --read-only N            export LUN N read-only (repeatable)
  --removable N            LUN N reports removable medium (eject/load, PREVENT ALLOW MEDIUM REMOVAL)
  --physical-block-exponent N=E  LUN N has 2^E logical blocks per physical block (e.g. 3 for 4 KiB)
  --portal HOST:PORT       where to listen (default ${DEFAULT_PORTAL}; repeatable; port 0 picks one)
  --allow IQN              only this initiator may log in (repeatable);
                           without --allow any initiator may log in
  --chap USER:SECRET       require CHAP: the initiator logs in as USER with SECRET (12+ bytes)
  --chap USER:@FILE        the same, with the secret read from FILE (one line; a trailing
                           newline is dropped) so it stays out of the process list
  --mutual-chap USER:SECRET  the target proves itself with USER/SECRET when asked (needs --chap)
  --mutual-chap USER:@FILE   the same, with the secret read from FILE
  --alias NAME             TargetAlias shown by initiators
  --queue-depth N          commands in flight per session (default ${DEFAULT_QUEUE_DEPTH})
  --verbose                log logins, refusals and protocol errors to stderr
  -h, --help               show this help`;

/** Where the parent hands CHAP credentials to its re-executed child (see the top of this file). */
const CREDENTIALS_ENV = 'SPINDLE_TARGET_SERVE_CHAP';
/** A secret file bigger than this is surely the wrong file. */
const MAX_SECRET_FILE_BYTES = 4096;

interface ServeCredentials {
  chap?: ChapSecret;
  mutualChap?: ChapSecret;
}

/** USER:SECRET or USER:@FILE. Errors never quote the value (it holds a secret). */
function parseCredentials(flag: string, value: string): ChapSecret {
  const colon = value.indexOf(':');
  if (colon <= 0 || colon === value.length - 1) {
    throw usageError(`${flag} expects USER:SECRET or USER:@FILE, e.g. ${flag} alice:averylongsecret or ${flag} alice:@/etc/spindle/chap-secret`);
  }
  const user = value.slice(0, colon);
  const rest = value.slice(colon + 1);
  if (!rest.startsWith('@')) return { user, secret: rest };
  const path = rest.slice(1);
  if (path === '') throw usageError(`${flag} ${user}:@FILE: give the path of the file that holds the secret`);
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw usageError(`${flag} ${user}:@${path}: not a regular file; put the secret alone in a file`);
    if (st.size > MAX_SECRET_FILE_BYTES) throw usageError(`${flag} ${user}:@${path}: the file is ${st.size} bytes; it should hold only the secret`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof CliError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? 'cannot read it');
    throw usageError(`${flag} ${user}:@${path}: cannot read the secret file (${why})`);
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '') throw usageError(`${flag} ${user}:@${path}: the secret file is empty`);
  if (/[\r\n]/.test(secret)) throw usageError(`${flag} ${user}:@${path}: the secret file holds more than one line; put only the secret in it`);
  return { user, secret };
}

/**
 * Credentials handed over by the parent (re-executed child only), removed
 * from the environment at once so nothing this process starts inherits them.
 */
function inheritedCredentials(): ServeCredentials | null {
  const raw = process.env[CREDENTIALS_ENV];
  if (raw === undefined) return null;
  delete process.env[CREDENTIALS_ENV];
  // Only our own re-exec sets it, and that child has an IPC channel.
  if (process.send === undefined) return null;
  const isSecret = (c: unknown): c is ChapSecret =>
    typeof c === 'object' && c !== null && typeof (c as ChapSecret).user === 'string' && typeof (c as ChapSecret).secret === 'string';
  try {
    const parsed = JSON.parse(raw) as { chap?: unknown; mutualChap?: unknown };
    return {
      ...(isSecret(parsed.chap) ? { chap: parsed.chap } : {}),
      ...(isSecret(parsed.mutualChap) ? { mutualChap: parsed.mutualChap } : {}),
    };
  } catch {
    throw new CliError('the CHAP credentials from the parent process could not be read');
  }
}

/** argv without --chap/--mutual-chap and their values (for the re-executed child). */
function withoutCredentialArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (a === '--chap' || a === '--mutual-chap') {
      i++; // and its value (parseArgs' strict mode refused an option-like value)
      continue;
    }
    if (a.startsWith('--chap=') || a.startsWith('--mutual-chap=')) continue;
    out.push(a);
  }
  return out;
}

export const targetServe: Command = {
  name: 'target serve',
  summary: 'serve an iSCSI target in the foreground (ephemeral config)',
  help,
  async run(argv) {
    const { values } = parseCommandArgs('target serve', argv, {
      target: { type: 'string' },
      lun: { type: 'string', multiple: true },
      'read-only': { type: 'string', multiple: true },
      removable: { type: 'string', multiple: true },
      'physical-block-exponent': { type: 'string', multiple: true },
      portal: { type: 'string', multiple: true },
      allow: { type: 'string', multiple: true },
      chap: { type: 'string' },
      'mutual-chap': { type: 'string' },
      alias: { type: 'string' },
      'queue-depth': { type: 'string' },
      verbose: { type: 'boolean' },
    });

    // --- validate everything before touching a file ---------------------------------
    if (values.target === undefined) throw usageError('target serve: --target IQN is required, e.g. --target iqn.2026-11.net.example:disk1');
    const name = validateIscsiName(values.target);
    if (!name.ok) throw usageError(`--target ${values.target}: ${name.reason}`);
    const lunArgs = values.lun ?? [];
    if (lunArgs.length === 0) throw usageError('target serve: give at least one --lun N=SPEC, e.g. --lun 0=memory:1GiB');
    const specs = new Map<number, ReturnType<typeof parseBackstoreSpec>>();
    for (const arg of lunArgs) {
      const m = /^(\d{1,5})=(.+)$/.exec(arg);
      if (!m) throw usageError(`--lun ${arg}: expected N=SPEC, e.g. --lun 0=file:/srv/disk.img:20GiB`);
      const n = Number(m[1]);
      if (n > 0x3fff) throw usageError(`--lun ${arg}: LUN ${n} is outside 0..16383`);
      if (specs.has(n)) throw usageError(`--lun ${arg}: LUN ${n} is given twice`);
      try {
        specs.set(n, parseBackstoreSpec(m[2]));
      } catch (err) {
        throw usageError(`--lun ${arg}: ${(err as Error).message}`);
      }
    }
    const readOnly = new Set<number>();
    for (const r of values['read-only'] ?? []) {
      const n = /^\d{1,5}$/.test(r) ? Number(r) : NaN;
      if (!specs.has(n)) throw usageError(`--read-only ${r}: there is no --lun ${r}=...`);
      readOnly.add(n);
      specs.get(n)!.readOnly = true;
    }
    const removable = new Set<number>();
    for (const r of values.removable ?? []) {
      const n = /^\d{1,5}$/.test(r) ? Number(r) : NaN;
      if (!specs.has(n)) throw usageError(`--removable ${r}: there is no --lun ${r}=...`);
      removable.add(n);
    }
    const exponents = new Map<number, number>();
    for (const r of values['physical-block-exponent'] ?? []) {
      const m = /^(\d{1,5})=(\d{1,2})$/.exec(r);
      if (!m || !specs.has(Number(m[1])) || Number(m[2]) > 15) {
        throw usageError(`--physical-block-exponent ${r}: expected N=E for a given --lun N and E from 0 to 15, e.g. 1=3`);
      }
      exponents.set(Number(m[1]), Number(m[2]));
    }
    const portals: HostPort[] = (values.portal ?? [DEFAULT_PORTAL]).map((p) => parseHostPort('--portal', p, '0.0.0.0'));
    const allow: string[] = [];
    for (const a of values.allow ?? []) {
      const v = validateIscsiName(a);
      if (!v.ok) throw usageError(`--allow ${a}: ${v.reason}`);
      allow.push(v.name);
    }
    const inherited = inheritedCredentials();
    const chap = values.chap !== undefined ? parseCredentials('--chap', values.chap) : inherited?.chap;
    const mutualChap = values['mutual-chap'] !== undefined ? parseCredentials('--mutual-chap', values['mutual-chap']) : inherited?.mutualChap;
    if (mutualChap !== undefined && chap === undefined) throw usageError('--mutual-chap needs --chap as well');
    const chapProblem = checkChapConfig(
      chap && { name: chap.user, secret: chap.secret },
      mutualChap && { name: mutualChap.user, secret: mutualChap.secret },
    );
    if (chapProblem) throw usageError(`--chap/--mutual-chap: ${chapProblem.message}`);
    let queueDepth = DEFAULT_QUEUE_DEPTH;
    if (values['queue-depth'] !== undefined) {
      queueDepth = Number(values['queue-depth']);
      if (!Number.isInteger(queueDepth) || queueDepth < 1 || queueDepth > 4096) throw usageError(`--queue-depth ${values['queue-depth']}: expected 1..4096`);
    }

    // --- thread pool (see the top of this file) -----------------------------------------
    if (wantsThreadPoolReexec()) {
      const credentials: ServeCredentials = { ...(chap !== undefined ? { chap } : {}), ...(mutualChap !== undefined ? { mutualChap } : {}) };
      const code = await reexecWithThreadPool({
        size: threadPoolSize(specs.size, queueDepth),
        argv: withoutCredentialArgs(process.argv.slice(1)),
        ...(chap !== undefined || mutualChap !== undefined ? { env: { [CREDENTIALS_ENV]: JSON.stringify(credentials) } } : {}),
      });
      if (code >= 0) return code;
    }
    // Stop on SIGINT/SIGTERM — or, in the re-executed child, when the parent goes away. Listening
    // from here on means a stop that arrives while backstores open is not lost.
    // A second SIGINT (a terminal's Ctrl-C reaches the re-executed engine twice) is absorbed.
    const stopped = stopRequested();

    // --- open backstores, start the engine --------------------------------------------
    const engine = new TargetEngine({ portals, queueDepth });
    if (values.verbose) engine.on('log', ({ level, message }) => process.stderr.write(`${level}: ${message}\n`));
    else engine.on('log', ({ level, message }) => (level === 'error' ? process.stderr.write(`error: ${message}\n`) : undefined));

    const opened: Backstore[] = [];
    const closeAll = () => Promise.all(opened.map((b) => new Promise<void>((r) => b.close(() => r()))));
    try {
      const luns: LunConfig[] = [];
      for (const [lun, spec] of [...specs].sort((a, b) => a[0] - b[0])) {
        const bs = await openBackstore(spec, { onWarning: (m) => process.stderr.write(`warning: ${m}\n`) });
        opened.push(bs);
        luns.push({
          lun,
          backstore: bs,
          readOnly: readOnly.has(lun),
          ...(removable.has(lun) ? { removable: true } : {}),
          ...(exponents.has(lun) ? { physicalBlockExponent: exponents.get(lun) } : {}),
        });
      }
      engine.addTarget({
        iqn: name.name,
        ...(values.alias !== undefined ? { alias: values.alias } : {}),
        luns,
        acl: { allow: allow.length > 0 ? allow : 'any' },
        ...(chap !== undefined ? { chap } : {}),
        ...(mutualChap !== undefined ? { mutualChap } : {}),
      });
      const bound = await engine.listen();
      for (const b of bound) process.stdout.write(`listening on ${formatHostPort(b)}\n`);
    } catch (err) {
      await engine.close(0).catch(() => undefined);
      await closeAll();
      throw new CliError((err as Error).message);
    }
    if (allow.length === 0 && !values.verbose) {
      process.stderr.write('note: no --allow given, so any initiator that can reach this port may log in\n');
    }

    await stopped;
    await engine.close(1000);
    await closeAll();
    return 0;
  },
};
