// A loopback "target" that logs any session in and then follows a script:
// for initiator tests of what real targets do only sometimes (continued
// answers, pings, gaps, silence). Records what the initiator sent.
import net from 'node:net';
import { readOpcode } from '../../src-main/iscsi/bhs';
import { PduFramer, type RawPdu } from '../../src-main/iscsi/framer';
import { encodeLoginResponse, parseLoginRequest } from '../../src-main/iscsi/login';
import { encodeLogoutResponse } from '../../src-main/iscsi/logout';
import { parseNopOut } from '../../src-main/iscsi/nop';
import { parseTextRequest } from '../../src-main/iscsi/text';
import { encodeTextKeys } from '../../src-main/iscsi/text-keys';

export interface Script {
  /** Called for each Text Request (after login); answer with `send`. */
  onText?(req: ReturnType<typeof parseTextRequest>, send: (bhs: Buffer, data?: Buffer) => void, n: number): void;
  /** Sent right after the login completes, before anything else. */
  afterLogin?: (send: (bhs: Buffer, data?: Buffer) => void) => void;
  /** Called for each SCSI Command (and its Data-Out PDUs); answer with `send`, or drop the connection with `socket`. */
  onCommand?: (pdu: RawPdu, send: (bhs: Buffer, data?: Buffer) => void, socket: net.Socket) => void;
}

export interface Seen {
  loginItts: number[];
  nopOutTtts: number[];
  textTtts: number[];
}

/** A loopback "target" that logs any discovery session in and then follows `script`; records what the initiator sent. */
export async function scriptedTarget(script: Script, servers: net.Server[]): Promise<{ port: number; seen: Seen }> {
  const seen: Seen = { loginItts: [], nopOutTtts: [], textTtts: [] };
  const server = net.createServer((socket) => {
    let statSN = 100;
    let texts = 0;
    const send = (bhs: Buffer, data: Buffer = Buffer.alloc(0)) => {
      const pad = Buffer.alloc((4 - (data.length % 4)) % 4);
      socket.write(Buffer.concat([bhs, data, pad]));
    };
    const framer = new PduFramer({
      maxRecvDataSegmentLength: 1 << 20,
      onError: () => socket.destroy(),
      onPdu: (pdu: RawPdu) => {
        const op = readOpcode(pdu.bhs);
        if (op === 0x03) {
          const req = parseLoginRequest(pdu.bhs, pdu.data);
          seen.loginItts.push(req.itt);
          const toFfp = req.csg === 1;
          const data = encodeTextKeys(toFfp ? [['HeaderDigest', 'None'], ['DataDigest', 'None']] : [['AuthMethod', 'None'], ['TargetPortalGroupTag', '1']]);
          send(
            encodeLoginResponse({
              transit: true, continue: false, csg: req.csg, nsg: toFfp ? 3 : 1, versionMax: 0, versionActive: 0, isid: req.isid,
              tsih: toFfp ? 7 : 0, itt: req.itt, statSN: statSN++, expCmdSN: req.cmdSN, maxCmdSN: req.cmdSN + 8, statusClass: 0, statusDetail: 0, data,
            }),
            data,
          );
          if (toFfp) script.afterLogin?.(send);
        } else if (op === 0x04) {
          const req = parseTextRequest(pdu.bhs, pdu.data);
          seen.textTtts.push(req.ttt);
          script.onText?.(req, send, texts++);
        } else if (op === 0x01 || op === 0x05) {
          script.onCommand?.(pdu, send, socket);
        } else if (op === 0x00) {
          seen.nopOutTtts.push(parseNopOut(pdu.bhs, pdu.data).ttt);
        } else if (op === 0x06) {
          const itt = pdu.bhs.readUInt32BE(16);
          send(encodeLogoutResponse({ response: 0, itt, statSN: statSN++, expCmdSN: 1, maxCmdSN: 9, time2Wait: 0, time2Retain: 0 }));
        }
      },
    });
    socket.on('data', (c: Buffer) => framer.push(c));
    socket.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, seen };
}

