// What a person types as a portal — `192.168.1.10`, `nas.local:3261`,
// `[fd00::5]:3260`, a bare IPv6 address, or an iscsi:// URL copied from
// somewhere — split into host and port, or a sentence saying what is wrong.
// Pure (no Node imports): the Connect view's form and `spindle discover` share it.
import { checkWireIscsiName } from './names';

export type PortalInput =
  | {
      ok: true;
      host: string;
      port: number | undefined;
      /** CHAP user and secret from an iscsi://USER%SECRET@HOST URL (libiscsi's form). */
      credentials?: { user: string; secret: string };
    }
  | { ok: false; message: string };

export function parsePortalInput(text: string): PortalInput {
  let s = text.trim();
  if (s === '') return { ok: false, message: 'Type the address of the computer that shares the disk, e.g. 192.168.1.10.' };
  // iscsi://[user[%secret]@]host[:port][/target/lun]: host, port and the CHAP credentials if both are there.
  let credentials: { user: string; secret: string } | undefined;
  const url = /^iscsi:\/\/(?:([^@/]*)@)?([^/]+)/i.exec(s);
  if (url) {
    s = url[2];
    const auth = url[1];
    if (auth !== undefined) {
      const cut = auth.indexOf('%');
      if (cut <= 0 || cut === auth.length - 1) return { ok: false, message: 'The address names a CHAP user without a secret: write iscsi://USER%SECRET@HOST, or give CHAP apart.' };
      credentials = { user: auth.slice(0, cut), secret: auth.slice(cut + 1) };
    }
  }
  if (/\s/.test(s)) return { ok: false, message: 'An address has no spaces.' };
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(s);
  if (bracketed) {
    host = bracketed[1];
    portText = bracketed[2];
  } else if ((s.match(/:/g) ?? []).length > 1) {
    host = s; // a bare IPv6 address: no port
  } else {
    const i = s.indexOf(':');
    host = i < 0 ? s : s.slice(0, i);
    portText = i < 0 ? undefined : s.slice(i + 1);
  }
  if (host === '') return { ok: false, message: 'The address is missing before the port.' };
  if (host.length > 253) return { ok: false, message: 'That address is too long for a host name.' };
  if (!/^[A-Za-z0-9.\-_:%]+$/.test(host)) return { ok: false, message: `"${host}" is not a host name or IP address.` };
  const extra = credentials !== undefined ? { credentials } : {};
  if (portText === undefined) return { ok: true, host, port: undefined, ...extra };
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    return { ok: false, message: 'The port after ":" must be a number from 1 to 65535 (iSCSI uses 3260).' };
  }
  return { ok: true, host, port: Number(portText), ...extra };
}

export type IscsiUrl =
  | {
      ok: true;
      host: string;
      port: number | undefined;
      targetName: string;
      lun: number;
      credentials?: { user: string; secret: string };
    }
  | { ok: false; message: string };

/** libiscsi's URL form, `iscsi://[USER%SECRET@]HOST[:PORT]/TARGET-IQN/LUN` (SPEC §3). */
export function parseIscsiUrl(text: string): IscsiUrl {
  const s = text.trim();
  const m = /^iscsi:\/\/([^/]+)\/([^/]+)\/([^/?#]+)\/?$/i.exec(s);
  if (!m) return { ok: false, message: `"${s}" is not an iSCSI URL: write iscsi://HOST[:PORT]/TARGET-IQN/LUN, e.g. iscsi://192.168.1.10/iqn.2026-11.lan.home:disk1/0` };
  const portal = parsePortalInput(`iscsi://${m[1]}`);
  if (!portal.ok) return portal;
  let targetName: string;
  try {
    targetName = decodeURIComponent(m[2]);
  } catch {
    return { ok: false, message: 'The target name in the URL has a broken %-escape.' };
  }
  const named = checkWireIscsiName(targetName);
  if (!named.ok) return { ok: false, message: `The target name in the URL is not usable: ${named.reason}` };
  if (!/^\d{1,5}$/.test(m[3]) || Number(m[3]) > 16383) return { ok: false, message: `The LUN at the end of the URL must be a number from 0 to 16383, not "${m[3]}".` };
  return { ...portal, targetName, lun: Number(m[3]) };
}
