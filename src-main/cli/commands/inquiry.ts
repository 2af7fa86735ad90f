// `spindle inquiry URL`: what a remote LUN is (INQUIRY, READ CAPACITY), through
// Spindle's own initiator — a normal session, a few commands, logout.
import { InitiatorError } from '../../initiator/errors';
import { defaultInitiatorName } from '../../initiator/identity';
import { ISCSI_PORT } from '../../initiator/discovery';
import { InitiatorSession } from '../../initiator/session';
import { cdbInquiry, cdbReadCapacity10, cdbReadCapacity16, cdbTestUnitReady } from '../../iscsi/cdb';
import { parseIscsiUrl } from '../../iscsi/portal-address';
import { describeSense, parseSense } from '../../iscsi/sense';
import { formatHostPort, parseCommandArgs } from '../args';
import type { Command } from '../command';
import { initiatorChapArgs, initiatorNameArg, requirePositional } from '../config-args';
import { CliError, usageError } from '../errors';

const DEVICE_TYPES: Record<number, string> = { 0x00: 'disk (direct access)', 0x05: 'CD/DVD', 0x01: 'tape', 0x0c: 'storage array controller', 0x0d: 'enclosure', 0x1f: 'no device' };

export const inquiry: Command = {
  name: 'inquiry',
  summary: 'show what a remote LUN is: vendor, product, size (INQUIRY, READ CAPACITY)',
  help: `usage: spindle inquiry iscsi://[USER%SECRET@]HOST[:PORT]/TARGET-IQN/LUN [--initiator IQN] [--chap USER:SECRET [--mutual-chap USER:SECRET]] [--json]

Logs in to the target through Spindle's own initiator, asks the LUN what it
is (standard INQUIRY and READ CAPACITY(16)) and logs out.

  --initiator IQN          the initiator name to present (default: ${defaultInitiatorName()})
  --chap USER:SECRET       CHAP for the session (or USER%SECRET@ in the URL; USER:@FILE reads the secret from a file)
  --mutual-chap USER:SECRET  and require the target to prove this user and secret
  --json                   print {"vendor","product","revision","deviceType","blocks","blockSize","bytes"} as one line
  -h, --help               show this help`,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(
      'inquiry',
      argv,
      { initiator: { type: 'string' }, chap: { type: 'string' }, 'mutual-chap': { type: 'string' }, json: { type: 'boolean' } },
      true,
    );
    const [text] = requirePositional('inquiry', positionals, 'the LUN as iscsi://HOST[:PORT]/TARGET-IQN/LUN');
    const url = parseIscsiUrl(text);
    if (!url.ok) throw usageError(`inquiry: ${url.message}`);
    const initiatorName = initiatorNameArg(values.initiator, defaultInitiatorName());
    const chap = initiatorChapArgs(values.chap, values['mutual-chap'], url.credentials);
    const port = url.port ?? ISCSI_PORT;
    let session: InitiatorSession;
    try {
      session = await InitiatorSession.open({
        host: url.host,
        port,
        targetName: url.targetName,
        initiatorName,
        ...chap,
      });
    } catch (err) {
      if (err instanceof InitiatorError) throw new CliError(`inquiry: ${err.message}`);
      throw err;
    }
    const where = `${url.targetName} LUN ${url.lun} at ${formatHostPort({ host: url.host, port })}`;
    try {
      const inq = await session.command({ lun: url.lun, cdb: cdbInquiry(96), dataIn: 96 });
      if (inq.status !== 0) throw new CliError(`inquiry: ${where}: INQUIRY failed (${statusText(inq.status, inq.sense)})`);
      const d = inq.data;
      if (d.length < 36) throw new CliError(`inquiry: ${where}: the INQUIRY answer is ${d.length} bytes, too short to read`);
      const qualifier = d[0] >> 5;
      if (qualifier === 3) throw new CliError(`inquiry: ${where}: there is no LUN ${url.lun} on this target`);
      const deviceType = d[0] & 0x1f;
      const ascii = (a: number, b: number) => d.toString('latin1', a, b).replace(/[^\x20-\x7e]/g, '').trim();
      const info = { vendor: ascii(8, 16), product: ascii(16, 32), revision: ascii(32, 36), deviceType: DEVICE_TYPES[deviceType] ?? `type 0x${deviceType.toString(16)}`, removable: (d[1] & 0x80) !== 0 };
      // A new I_T nexus first hears a unit attention (POWER ON / RESET): TEST UNIT READY takes it.
      for (let i = 0; i < 4; i++) {
        const tur = await session.command({ lun: url.lun, cdb: cdbTestUnitReady() });
        if (tur.status === 0 || parseSense(tur.sense)?.key !== 6) break;
      }
      let capacity: { blocks: number; blockSize: number; bytes: number } | null = null;
      let capacityProblem: string | null = null;
      if (deviceType === 0) {
        const cap = await session.command({ lun: url.lun, cdb: cdbReadCapacity16(32), dataIn: 32 });
        if (cap.status === 0 && cap.data.length >= 12) {
          const blocks = Number(cap.data.readBigUInt64BE(0)) + 1;
          const blockSize = cap.data.readUInt32BE(8);
          capacity = { blocks, blockSize, bytes: blocks * blockSize };
        } else {
          // Older devices know only READ CAPACITY(10) (up to 2 TiB with 512-byte blocks).
          const cap10 = await session.command({ lun: url.lun, cdb: cdbReadCapacity10(), dataIn: 8 });
          if (cap10.status === 0 && cap10.data.length >= 8) {
            const blocks = cap10.data.readUInt32BE(0) + 1;
            const blockSize = cap10.data.readUInt32BE(4);
            capacity = { blocks, blockSize, bytes: blocks * blockSize };
          } else {
            capacityProblem = `READ CAPACITY failed (${statusText(cap10.status, cap10.sense)})`;
          }
        }
      }
      if (values.json) {
        process.stdout.write(
          `${JSON.stringify({ target: url.targetName, lun: url.lun, ...info, ...(capacity ?? { blocks: null, blockSize: null, bytes: null }), ...(capacityProblem ? { capacityProblem } : {}) })}\n`,
        );
      } else {
        const lines = [
          `${where}`,
          `  vendor    ${info.vendor}`,
          `  product   ${info.product}`,
          `  revision  ${info.revision}`,
          `  type      ${info.deviceType}${info.removable ? ', removable' : ''}`,
          ...(capacity ? [`  size      ${formatSize(capacity.bytes)} (${capacity.blocks} blocks of ${capacity.blockSize} bytes)`] : []),
          ...(capacityProblem ? [`  size      unknown: ${capacityProblem}`] : []),
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      return 0;
    } catch (err) {
      if (err instanceof InitiatorError) throw new CliError(`inquiry: ${where}: ${err.message}`);
      throw err;
    } finally {
      await session.close();
    }
  },
};

function statusText(status: number, sense: Buffer | null): string {
  const s = parseSense(sense);
  return s ? describeSense(s.key, s.code) : `SCSI status 0x${status.toString(16)}`;
}

function formatSize(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} bytes` : `${v.toFixed(v >= 100 || Number.isInteger(v) ? 0 : 1)} ${units[u]}`;
}
