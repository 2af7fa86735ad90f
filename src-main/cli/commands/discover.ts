// `spindle discover HOST[:PORT]`: SendTargets discovery from the command line,
// straight on the initiator engine (no service, no database).
import { DISCOVERY_TIMEOUT_MS, ISCSI_PORT, discoverTargets } from '../../initiator/discovery';
import { InitiatorError } from '../../initiator/errors';
import { defaultInitiatorName } from '../../initiator/identity';
import { parsePortalInput } from '../../iscsi/portal-address';
import { formatHostPort, parseCommandArgs } from '../args';
import type { Command } from '../command';
import { initiatorChapArgs, initiatorNameArg, requirePositional, table } from '../config-args';
import { CliError, usageError } from '../errors';

export const discover: Command = {
  name: 'discover',
  summary: 'list the targets an iSCSI portal offers this computer (SendTargets)',
  help: `usage: spindle discover HOST[:PORT] [--initiator IQN] [--chap USER:SECRET [--mutual-chap USER:SECRET]] [--timeout SECONDS] [--json]

Logs in to the portal for discovery, asks for every target it offers this
initiator (SendTargets=All), and logs out. A target that limits access lists
only what the initiator name may use. PORT defaults to ${ISCSI_PORT}; an
iscsi:// URL works too (iscsi://USER%SECRET@HOST gives CHAP like --chap).

  --initiator IQN          the initiator name to present (default: ${defaultInitiatorName()})
  --chap USER:SECRET       CHAP for the discovery session (USER:@FILE reads the secret from a file)
  --mutual-chap USER:SECRET  and require the portal to prove this user and secret
  --timeout SECONDS        wait at most this long for each answer (default ${DISCOVERY_TIMEOUT_MS / 1000})
  --json                   print {"portal","initiator","targets":[{"iqn","portals":[...]}]} as one line
  -h, --help               show this help`,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(
      'discover',
      argv,
      {
        initiator: { type: 'string' },
        chap: { type: 'string' },
        'mutual-chap': { type: 'string' },
        timeout: { type: 'string' },
        json: { type: 'boolean' },
      },
      true,
    );
    const [where] = requirePositional('discover', positionals, 'the portal, e.g. spindle discover 192.168.1.10');
    const portal = parsePortalInput(where);
    if (!portal.ok) throw usageError(`discover: ${portal.message}`);
    const initiatorName = initiatorNameArg(values.initiator, defaultInitiatorName());
    let timeoutMs = DISCOVERY_TIMEOUT_MS;
    if (values.timeout !== undefined) {
      const s = Number(values.timeout);
      if (!Number.isFinite(s) || s <= 0 || s > 300) throw usageError('--timeout takes seconds, more than 0 and at most 300');
      timeoutMs = Math.round(s * 1000);
    }
    const chap = initiatorChapArgs(values.chap, values['mutual-chap'], portal.credentials);
    const port = portal.port ?? ISCSI_PORT;
    let targets;
    try {
      targets = await discoverTargets({
        host: portal.host,
        port,
        initiatorName,
        timeoutMs,
        ...chap,
      });
    } catch (err) {
      if (err instanceof InitiatorError) throw new CliError(`discover: ${err.message}`);
      throw err;
    }
    const asked = formatHostPort({ host: portal.host, port });
    if (values.json) {
      const out = {
        portal: asked,
        initiator: initiatorName,
        targets: targets.map((t) => ({ iqn: t.name, portals: t.portals.map((p) => ({ host: p.host, port: p.port, portalGroupTag: p.portalGroupTag ?? null })) })),
      };
      process.stdout.write(`${JSON.stringify(out)}\n`);
      return 0;
    }
    if (targets.length === 0) {
      process.stdout.write(`${asked} offers no targets to ${initiatorName}\n(a target that limits access must allow this name first)\n`);
      return 0;
    }
    process.stdout.write(`${asked} offers ${targets.length === 1 ? 'one target' : `${targets.length} targets`} to ${initiatorName}:\n`);
    process.stdout.write(
      table([
        ['TARGET', 'PORTALS'],
        ...targets.map((t) => [t.name, t.portals.map((p) => `${formatHostPort(p)}${p.portalGroupTag !== undefined ? `,${p.portalGroupTag}` : ''}`).join(' ')]),
      ]),
    );
    return 0;
  },
};
