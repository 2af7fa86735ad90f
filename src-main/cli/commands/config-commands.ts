// The service's configuration commands: targets, luns, acls, requests and
// config. Each works through a running `spindle serve` on the data dir, or
// directly on its DB when none runs (see service-client.ts).
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { AccessRequestView, SpindleApi, TargetView } from '../../service/api/schema';
import { parseCommandArgs } from '../args';
import type { Command } from '../command';
import { parseChapFlags, parseLunArg, printJson, requirePositional, table, targetRefArg } from '../config-args';
import { CliError, usageError } from '../errors';
import { dataDirFrom } from '../paths';
import { connectService } from '../service-client';

const DATA_HELP = `  --data DIR   the data dir (default: $SPINDLE_DATA or ~/.local/share/spindle)
  -h, --help   show this help

Works through \`spindle serve\` when it runs on that data dir (changes apply at once);
otherwise changes the configuration the next \`spindle serve\` starts with.`;

async function withApi<T>(data: string | undefined, fn: (api: SpindleApi) => Promise<T>): Promise<T> {
  const conn = await connectService(dataDirFrom(data));
  try {
    return await fn(conn.api);
  } finally {
    await conn.close();
  }
}

function describeTarget(t: TargetView): string {
  const lines = [`${t.iqn}${t.alias !== null ? ` (${t.alias})` : ''}  ${t.state}${t.reason !== null ? ` — ${t.reason}` : ''}`];
  for (const l of t.luns) {
    const b = l.backstore;
    const where = b.kind === 'memory' ? `memory ${b.sizeBytes ?? 0} bytes` : `${b.kind} ${b.path ?? ''}`;
    lines.push(`  LUN ${l.lun}: ${where}${l.readOnly ? ' (read-only)' : ''}`);
  }
  if (t.acls.length === 0) lines.push('  allowed: nobody yet (initiators that try show up in `spindle requests list`)');
  for (const a of t.acls) lines.push(`  allowed: ${a.initiatorIqn}${a.chapUser !== null ? ` (CHAP user ${a.chapUser}${a.mutualUser !== null ? `, mutual ${a.mutualUser}` : ''})` : ''}`);
  if (t.state === 'serving') lines.push(`  portals: ${t.portals.join(', ')}; ${t.sessions} session(s)`);
  return lines.join('\n');
}

// ---- targets -----------------------------------------------------------------

const targetsAdd: Command = {
  name: 'targets add',
  summary: 'create a target with its LUNs and allowed initiators',
  help: `usage: spindle targets add IQN --lun N=SPEC [--lun N=SPEC]... [--allow INITIATOR_IQN]... [--chap USER:SECRET] [--mutual-chap USER:SECRET] [--alias TEXT] [--read-only N]... [--disabled]

  --lun N=SPEC            LUN N on file:PATH[:SIZE] (created, sparse, when it does not exist and
                          a size is given), memory:SIZE or block:DEV; sizes take KiB/MiB/GiB/TiB
  --allow INITIATOR_IQN   an initiator that may log in (repeat for more). Without any, nobody may
                          until you allow one: initiators that try are listed by \`spindle requests list\`
  --chap USER:SECRET      CHAP for every --allow initiator (secret 12-16 bytes; USER:@FILE reads it from a file)
  --mutual-chap USER:SECRET  the target proves itself with these when the initiator asks
  --alias TEXT            a friendly name
  --read-only N           export LUN N read-only
  --disabled              store it without serving it yet
  --json                  print the created target as JSON
${DATA_HELP}`,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(
      'targets add',
      argv,
      {
        data: { type: 'string' },
        lun: { type: 'string', multiple: true },
        allow: { type: 'string', multiple: true },
        chap: { type: 'string' },
        'mutual-chap': { type: 'string' },
        alias: { type: 'string' },
        'read-only': { type: 'string', multiple: true },
        disabled: { type: 'boolean' },
        json: { type: 'boolean' },
      },
      true,
    );
    const [iqn] = requirePositional('targets add', positionals, 'the target IQN, e.g. iqn.2026-11.lan.home:disk1');
    const luns = (values.lun ?? []).map((a) => parseLunArg('--lun', a));
    const seen = new Set<number>();
    for (const l of luns) {
      if (seen.has(l.lun)) throw usageError(`--lun: LUN ${l.lun} is given twice`);
      seen.add(l.lun);
    }
    const readOnly = new Set<number>();
    for (const r of values['read-only'] ?? []) {
      if (!/^\d+$/.test(r) || !seen.has(Number(r))) throw usageError(`--read-only ${r}: there is no --lun ${r}=...`);
      readOnly.add(Number(r));
    }
    const { chap, mutualChap } = parseChapFlags(values.chap, values['mutual-chap']);
    if (chap !== undefined && (values.allow ?? []).length === 0) {
      throw usageError('--chap applies to the allowed initiators: give at least one --allow INITIATOR_IQN');
    }
    const t = await withApi(values.data, (api) =>
      api.call('targets.create', {
        iqn: iqn!,
        ...(values.alias !== undefined ? { alias: values.alias } : {}),
        enabled: values.disabled !== true,
        luns: luns.map((l) => ({ ...l, ...(readOnly.has(l.lun) ? { readOnly: true } : {}) })),
        acls: (values.allow ?? []).map((initiatorIqn) => ({
          initiatorIqn,
          ...(chap !== undefined ? { chap } : {}),
          ...(mutualChap !== undefined ? { mutualChap } : {}),
        })),
      }),
    );
    if (values.json) printJson(t);
    else process.stdout.write(`created ${describeTarget(t)}\n`);
    return 0;
  },
};

const targetsList: Command = {
  name: 'targets list',
  summary: 'list targets, their LUNs, allowed initiators and state',
  help: `usage: spindle targets list [--json]

  --json       print the list as JSON (no secrets)
${DATA_HELP}`,
  async run(argv) {
    const { values } = parseCommandArgs('targets list', argv, { data: { type: 'string' }, json: { type: 'boolean' } });
    const list = await withApi(values.data, (api) => api.call('targets.list'));
    if (values.json) printJson(list);
    else if (list.length === 0) process.stdout.write('no targets yet — create one with `spindle targets add IQN --lun 0=file:PATH:SIZE`\n');
    else process.stdout.write(`${list.map(describeTarget).join('\n')}\n`);
    return 0;
  },
};

function simpleTargetCommand(verb: 'remove' | 'enable' | 'disable', summary: string): Command {
  const name = `targets ${verb}`;
  return {
    name,
    summary,
    help: `usage: spindle ${name} IQN|ID${verb === 'remove' ? ' [--keep-images]' : ''}
${verb === 'remove' ? '\n  --keep-images  keep the backstore records (image files are never deleted)\n' : ''}
${DATA_HELP}`,
    async run(argv) {
      const { values, positionals } = parseCommandArgs(
        name,
        argv,
        { data: { type: 'string' }, ...(verb === 'remove' ? { 'keep-images': { type: 'boolean' as const } } : {}) },
        true,
      );
      const [ref] = requirePositional(name, positionals, 'the target IQN or id');
      const target = targetRefArg(ref!);
      await withApi(values.data, async (api) => {
        if (verb === 'remove') {
          const r = await api.call('targets.delete', { target, ...((values as { 'keep-images'?: boolean })['keep-images'] ? { keepBackstores: true } : {}) });
          process.stdout.write(`removed ${r.deleted}\n`);
        } else {
          const t = await api.call(verb === 'enable' ? 'targets.enable' : 'targets.disable', { target });
          process.stdout.write(`${describeTarget(t)}\n`);
        }
      });
      return 0;
    },
  };
}

// ---- luns ----------------------------------------------------------------------

const lunsAdd: Command = {
  name: 'luns add',
  summary: 'add a LUN to a target',
  help: `usage: spindle luns add IQN|ID N=SPEC [--read-only]

  N=SPEC       file:PATH[:SIZE] (created when missing and a size is given), memory:SIZE or block:DEV
  --read-only  export it read-only
${DATA_HELP}`,
  async run(argv) {
    const { values, positionals } = parseCommandArgs('luns add', argv, { data: { type: 'string' }, 'read-only': { type: 'boolean' } }, true);
    const [ref, spec] = requirePositional('luns add', positionals, 'the target and N=SPEC, e.g. luns add iqn.2026-11.lan.home:disk1 1=file:/srv/b.img:10GiB', 2);
    const l = parseLunArg('luns add', spec!);
    const t = await withApi(values.data, (api) =>
      api.call('luns.add', { target: targetRefArg(ref!), lun: l.lun, backstore: l.backstore, ...(values['read-only'] ? { readOnly: true } : {}) }),
    );
    process.stdout.write(`${describeTarget(t)}\n`);
    return 0;
  },
};

const lunsRemove: Command = {
  name: 'luns remove',
  summary: 'remove a LUN from a target (the image file stays)',
  help: `usage: spindle luns remove IQN|ID N
${DATA_HELP}`,
  async run(argv) {
    const { values, positionals } = parseCommandArgs('luns remove', argv, { data: { type: 'string' } }, true);
    const [ref, n] = requirePositional('luns remove', positionals, 'the target and the LUN number', 2);
    if (!/^\d{1,5}$/.test(n!) || Number(n) > 16383) throw usageError(`luns remove: "${n}" is not a LUN number (0..16383)`);
    const t = await withApi(values.data, (api) => api.call('luns.remove', { target: targetRefArg(ref!), lun: Number(n) }));
    process.stdout.write(`${describeTarget(t)}\n`);
    return 0;
  },
};

// ---- acls ----------------------------------------------------------------------

const aclsAdd: Command = {
  name: 'acls add',
  summary: 'allow an initiator to log in to a target',
  help: `usage: spindle acls add IQN|ID INITIATOR_IQN [--chap USER:SECRET] [--mutual-chap USER:SECRET]

  --chap USER:SECRET         the initiator must log in with these (secret 12-16 bytes; USER:@FILE reads a file)
  --mutual-chap USER:SECRET  the target proves itself with these when asked
${DATA_HELP}`,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(
      'acls add',
      argv,
      { data: { type: 'string' }, chap: { type: 'string' }, 'mutual-chap': { type: 'string' } },
      true,
    );
    const [ref, initiator] = requirePositional('acls add', positionals, 'the target and the initiator name', 2);
    const { chap, mutualChap } = parseChapFlags(values.chap, values['mutual-chap']);
    const t = await withApi(values.data, (api) =>
      api.call('acls.add', {
        target: targetRefArg(ref!),
        initiatorIqn: initiator!,
        ...(chap !== undefined ? { chap } : {}),
        ...(mutualChap !== undefined ? { mutualChap } : {}),
      }),
    );
    process.stdout.write(`${describeTarget(t)}\n`);
    return 0;
  },
};

const aclsRemove: Command = {
  name: 'acls remove',
  summary: "take an initiator's access away (its sessions end)",
  help: `usage: spindle acls remove IQN|ID INITIATOR_IQN
${DATA_HELP}`,
  async run(argv) {
    const { values, positionals } = parseCommandArgs('acls remove', argv, { data: { type: 'string' } }, true);
    const [ref, initiator] = requirePositional('acls remove', positionals, 'the target and the initiator name', 2);
    const t = await withApi(values.data, (api) => api.call('acls.remove', { target: targetRefArg(ref!), initiatorIqn: initiator! }));
    process.stdout.write(`${describeTarget(t)}\n`);
    return 0;
  },
};

// ---- requests ------------------------------------------------------------------

function requestRows(list: AccessRequestView[]): string {
  return table([
    ['ID', 'INITIATOR', 'ADDRESS', 'TARGET', 'TRIES', 'LAST SEEN', 'DECISION'],
    ...list.map((r) => [String(r.id), r.initiatorIqn, r.address, r.targetIqn, String(r.count), r.lastSeen, r.decision ?? 'pending']),
  ]);
}

const requestsList: Command = {
  name: 'requests list',
  summary: 'initiators that were refused for lack of an ACL',
  help: `usage: spindle requests list [--pending] [--json]

  --pending    only those without a decision
  --json       print them as JSON
${DATA_HELP}`,
  async run(argv) {
    const { values } = parseCommandArgs('requests list', argv, { data: { type: 'string' }, pending: { type: 'boolean' }, json: { type: 'boolean' } });
    const list = await withApi(values.data, (api) => api.call('requests.list', values.pending ? { pending: true } : {}));
    if (values.json) printJson(list);
    else if (list.length === 0) process.stdout.write('no access requests\n');
    else process.stdout.write(requestRows(list));
    return 0;
  },
};

function decideCommand(verb: 'allow' | 'deny'): Command {
  const name = `requests ${verb}`;
  return {
    name,
    summary: verb === 'allow' ? 'let a refused initiator in (adds its ACL; no restart)' : 'mark an access request denied',
    help: `usage: spindle ${name} INITIATOR_IQN|ID [--target IQN]

  INITIATOR_IQN  every pending request of that initiator (or the one for --target)
  ID             one request, by the ID \`spindle requests list\` shows
${DATA_HELP}`,
    async run(argv) {
      const { values, positionals } = parseCommandArgs(name, argv, { data: { type: 'string' }, target: { type: 'string' } }, true);
      const [who] = requirePositional(name, positionals, 'the initiator name or the request id');
      const byId = /^\d+$/.test(who!);
      if (byId && values.target !== undefined) throw usageError(`${name}: --target goes with an initiator name, not a request id`);
      const params = byId
        ? { id: Number(who) }
        : { initiatorIqn: who!, ...(values.target !== undefined ? { target: targetRefArg(values.target) } : {}) };
      const done = await withApi(values.data, (api) => api.call(verb === 'allow' ? 'requests.allow' : 'requests.deny', params));
      for (const r of done) process.stdout.write(`${verb === 'allow' ? 'allowed' : 'denied'} ${r.initiatorIqn} on ${r.targetIqn}\n`);
      return 0;
    },
  };
}

// ---- config --------------------------------------------------------------------

const configExport: Command = {
  name: 'config export',
  summary: "write the configuration as targetcli's saveconfig.json",
  help: `usage: spindle config export FILE

Writes LIO's saveconfig.json format (\`targetcli restoreconfig FILE\` reads it). Like
LIO's own file it holds the CHAP secrets, so it is written with mode 0600.
FILE "-" prints it.
${DATA_HELP}`,
  async run(argv) {
    const { values, positionals } = parseCommandArgs('config export', argv, { data: { type: 'string' } }, true);
    const [file] = requirePositional('config export', positionals, 'the file to write (or -)');
    const { json } = await withApi(values.data, (api) => api.call('config.exportLio'));
    if (file === '-') process.stdout.write(json);
    else {
      try {
        // It holds CHAP secrets: written 0600 beside the target and moved over it, so an existing 0644 file does not keep its mode.
        const tmp = `${file}.${process.pid}.tmp`;
        writeFileSync(tmp, json, { mode: 0o600 });
        chmodSync(tmp, 0o600);
        renameSync(tmp, file!);
      } catch (err) {
        throw new CliError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      process.stdout.write(`wrote ${file}\n`);
    }
    return 0;
  },
};

const configImport: Command = {
  name: 'config import',
  summary: "read targets from targetcli's saveconfig.json",
  help: `usage: spindle config import FILE [--replace] [--json]

Maps storage objects (block, fileio, ramdisk), targets, LUNs, ACLs with CHAP and
portals into Spindle, in one transaction, and reports everything it could not map.
Targets that already exist are left as they are.

  --replace    remove every existing target first
  --json       print the report as JSON
${DATA_HELP}`,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(
      'config import',
      argv,
      { data: { type: 'string' }, replace: { type: 'boolean' }, json: { type: 'boolean' } },
      true,
    );
    const [file] = requirePositional('config import', positionals, 'the saveconfig.json to read');
    let json: string;
    try {
      json = readFileSync(file!, 'utf8');
    } catch (err) {
      throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const report = await withApi(values.data, (api) => api.call('config.importLio', { json, ...(values.replace ? { replace: true } : {}) }));
    if (values.json) printJson(report);
    else {
      const out = [`created ${report.created.length} target(s)${report.created.length > 0 ? `: ${report.created.join(', ')}` : ''}`];
      for (const s of report.skipped) out.push(`skipped ${s.path}: ${s.reason}`);
      for (const u of report.unmapped) out.push(`not mapped ${u.path}: ${u.reason}`);
      process.stdout.write(`${out.join('\n')}\n`);
    }
    return 0;
  },
};

export const configCommands: Command[] = [
  targetsAdd,
  targetsList,
  simpleTargetCommand('remove', 'remove a target (its image files stay)'),
  simpleTargetCommand('enable', 'serve a disabled target again'),
  simpleTargetCommand('disable', 'stop serving a target (it stays configured)'),
  lunsAdd,
  lunsRemove,
  aclsAdd,
  aclsRemove,
  requestsList,
  decideCommand('allow'),
  decideCommand('deny'),
  configExport,
  configImport,
];
