// What a person types as a portal — `192.168.1.10`, `nas.local:3261`,
// `[fd00::5]:3260`, a bare IPv6 address, or an iscsi:// URL copied from
// somewhere — split into host and port, or a sentence saying what is wrong.
// Pure (no Node imports): the Connect view's form and `spindle discover` share it.

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
