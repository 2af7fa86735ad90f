// Small formatting helpers shared by the views.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** Binary units: 274877906944 → "256 GiB", 1610612736 → "1.5 GiB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes == null || !Number.isFinite(bytes)) return '—';
  if (bytes < 1024) return `${bytes} B`;
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  const text = v.toFixed(digits).replace(/\.0+$|(\.\d*[1-9])0+$/, '$1');
  return `${text} ${UNITS[i]}`;
}

export function formatPercent(p: number | null | undefined, digits = 1): string {
  if (p == null || !Number.isFinite(p)) return '—';
  return `${p.toFixed(digits)} %`;
}

/** 3725 → "1 h 2 min", 42 → "42 s". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds)) return '—';
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${m % 60} min`;
  const d = Math.floor(h / 24);
  return `${d} d ${h % 24} h`;
}

/** A time of day, e.g. "14:03:12". */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** Messages written to follow a name ("holds / — your system disk") start a sentence when shown alone. */
export function sentence(msg: string): string {
  return msg.charAt(0).toUpperCase() + msg.slice(1);
}

/** "2 can share · 1 can't share": only the verdicts that occur, safest first. */
export function verdictSummary(disks: { share: 'read-write' | 'read-only' | 'no' }[]): string {
  const n = { 'read-write': 0, 'read-only': 0, no: 0 };
  for (const d of disks) n[d.share]++;
  const parts: string[] = [];
  if (n['read-write']) parts.push(`${n['read-write']} can share`);
  if (n['read-only']) parts.push(`${n['read-only']} read-only only`);
  if (n.no) parts.push(`${n.no} can't share`);
  return parts.join(' · ');
}

/** A transfer rate: 0 → "0 B/s", 1572864 → "1.5 MiB/s". */
export function formatRate(bytesPerSecond: number | null | undefined): string {
  if (bytesPerSecond == null || !Number.isFinite(bytesPerSecond)) return '—';
  return `${formatBytes(Math.max(0, Math.round(bytesPerSecond)))}/s`;
}

/** How long ago, for "last seen": "just now", "42 s ago", "3 min ago", "2 h ago", else the date. */
export function formatAgo(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return '—';
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return '—';
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ago`;
  return new Date(t).toLocaleString();
}

/** "1 LUN", "2 LUNs": a count with its noun. */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}

/** The host part of "HOST:PORT" / "[v6]:PORT" (an initiator's source port says nothing to a person). */
export function hostOf(address: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (v6) return v6[1]!;
  const m = /^([^:]+):\d+$/.exec(address);
  return m ? m[1]! : address;
}
