#!/usr/bin/env node
// Regenerates every PNG under resources/ (app icon, icon set, tray images).
// Pure Node: shapes are signed distance fields (anti-aliased by coverage),
// composited in premultiplied float RGBA and written as PNG with zlib.
// The output is deterministic, so re-running it leaves the committed files
// unchanged unless the drawing below changes.
//
//   node build/scripts/make-icons.mjs
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const res = join(root, 'resources');

// ---- PNG writer -------------------------------------------------------------

const crcTable = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}
function paeth(a, b, c) {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}
/** RGBA8 (straight alpha) → PNG bytes; each row gets the filter with the smallest sum. */
function encodePng(width, height, rgba) {
  const stride = width * 4;
  const raw = Buffer.alloc((stride + 1) * height);
  const cand = Array.from({ length: 5 }, () => Buffer.alloc(stride));
  for (let y = 0; y < height; y++) {
    const row = rgba.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? rgba.subarray((y - 1) * stride, y * stride) : Buffer.alloc(stride);
    let best = 0, bestScore = Infinity;
    for (let f = 0; f < 5; f++) {
      const out = cand[f];
      let score = 0;
      for (let i = 0; i < stride; i++) {
        const a = i >= 4 ? row[i - 4] : 0, b = prev[i], c = i >= 4 ? prev[i - 4] : 0;
        const pred = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : paeth(a, b, c);
        const v = (row[i] - pred) & 0xff;
        out[i] = v;
        score += v < 128 ? v : 256 - v;
      }
      if (score < bestScore) { bestScore = score; best = f; }
    }
    raw[y * (stride + 1)] = best;
    cand[best].copy(raw, y * (stride + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// ---- signed distance fields (unit square, y down) -------------------------

const len = (x, y) => Math.hypot(x, y);
const circle = (cx, cy, r) => (x, y) => len(x - cx, y - cy) - r;
const ring = (cx, cy, r, w) => (x, y) => Math.abs(len(x - cx, y - cy) - r) - w / 2;
const roundRect = (cx, cy, hw, hh, r) => (x, y) => {
  const qx = Math.abs(x - cx) - hw + r, qy = Math.abs(y - cy) - hh + r;
  return len(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0) - r;
};
const segment = (ax, ay, bx, by, r) => (x, y) => {
  const px = x - ax, py = y - ay, dx = bx - ax, dy = by - ay;
  const h = Math.min(1, Math.max(0, (px * dx + py * dy) / (dx * dx + dy * dy)));
  return len(px - dx * h, py - dy * h) - r;
};
const union = (...fs) => (x, y) => Math.min(...fs.map((f) => f(x, y)));
const minus = (a, b) => (x, y) => Math.max(a(x, y), -b(x, y));

// ---- colours ---------------------------------------------------------------

const hex = (h, a = 1) => [parseInt(h.slice(1, 3), 16) / 255, parseInt(h.slice(3, 5), 16) / 255, parseInt(h.slice(5, 7), 16) / 255, a];
const mix = (c1, c2, t) => c1.map((v, i) => v + (c2[i] - v) * Math.min(1, Math.max(0, t)));
/** Linear gradient from (x1,y1) to (x2,y2). */
const linear = (x1, y1, c1, x2, y2, c2) => {
  const dx = x2 - x1, dy = y2 - y1, l2 = dx * dx + dy * dy;
  return (x, y) => mix(c1, c2, ((x - x1) * dx + (y - y1) * dy) / l2);
};

/**
 * A layer: `sdf` gives the shape, `fill` a colour or (x,y) → colour, `blur`
 * widens the edge (in unit space) for soft shadows.
 */
function render(size, layers) {
  const px = new Float64Array(size * size * 4); // premultiplied
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < size; i++) {
      const x = (i + 0.5) / size, y = (j + 0.5) / size;
      const o = (j * size + i) * 4;
      for (const l of layers) {
        const d = l.sdf(x, y);
        const edge = Math.max(1 / size, l.blur ?? 0);
        const cov = Math.min(1, Math.max(0, 0.5 - d / edge));
        if (cov <= 0) continue;
        const c = typeof l.fill === 'function' ? l.fill(x, y) : l.fill;
        const a = c[3] * cov;
        for (let k = 0; k < 3; k++) px[o + k] = c[k] * a + px[o + k] * (1 - a);
        px[o + 3] = a + px[o + 3] * (1 - a);
      }
    }
  }
  const out = Buffer.alloc(size * size * 4);
  for (let p = 0; p < size * size; p++) {
    const a = px[p * 4 + 3];
    for (let k = 0; k < 3; k++) out[p * 4 + k] = a > 0 ? Math.round(Math.min(1, px[p * 4 + k] / a) * 255) : 0;
    out[p * 4 + 3] = Math.round(a * 255);
  }
  return out;
}

// ---- the app icon: a disk platter on its spindle, with a read arm ---------

function appIcon() {
  const navy = hex('#16306b');
  const armFill = linear(0.6, 0.4, hex('#ffc15a'), 0.85, 0.8, hex('#e58a1f'));
  const armEdge = hex('#9a5508', 0.55);
  const arm = union(segment(0.79, 0.77, 0.6, 0.43, 0.026), circle(0.6, 0.43, 0.036), circle(0.79, 0.77, 0.07));
  return [
    // soft shadow, then the rounded-square tile
    { sdf: roundRect(0.5, 0.515, 0.43, 0.43, 0.2), fill: hex('#000000', 0.35), blur: 0.035 },
    { sdf: roundRect(0.5, 0.5, 0.44, 0.44, 0.2), fill: linear(0.5, 0.06, hex('#3a7bf0'), 0.5, 0.94, navy) },
    // platter: silver disc, rim, tracks
    { sdf: circle(0.5, 0.5, 0.325), fill: hex('#0a1a40', 0.35), blur: 0.03 },
    { sdf: circle(0.49, 0.49, 0.31), fill: linear(0.25, 0.22, hex('#fbfcff'), 0.75, 0.78, hex('#aebbd0')) },
    { sdf: ring(0.49, 0.49, 0.305, 0.012), fill: hex('#20365f', 0.35) },
    { sdf: ring(0.49, 0.49, 0.245, 0.007), fill: hex('#33507f', 0.2) },
    { sdf: ring(0.49, 0.49, 0.185, 0.007), fill: hex('#33507f', 0.2) },
    // sheen across the disc
    { sdf: minus(circle(0.49, 0.49, 0.29), circle(0.55, 0.55, 0.3)), fill: hex('#ffffff', 0.35) },
    // hub and spindle
    { sdf: circle(0.49, 0.49, 0.085), fill: linear(0.42, 0.42, hex('#c4cedd'), 0.56, 0.56, hex('#71809a')) },
    { sdf: ring(0.49, 0.49, 0.085, 0.008), fill: hex('#2a3a58', 0.5) },
    { sdf: circle(0.49, 0.49, 0.03), fill: navy },
    // read arm over the disc
    { sdf: arm, fill: hex('#0a1a40', 0.35), blur: 0.02 },
    { sdf: arm, fill: armFill },
    { sdf: ring(0.79, 0.77, 0.07, 0.01), fill: armEdge },
    { sdf: circle(0.79, 0.77, 0.025), fill: hex('#7a4306') },
  ];
}

// ---- tray glyph: a small platter with a status badge ----------------------

const badge = { cx: 0.74, cy: 0.74, r: 0.21, gap: 0.075 };
const platterC = { cx: 0.43, cy: 0.43, r: 0.37 };
const dotColour = { idle: '#9aa0a6', serving: '#2f7cf6', active: '#22b356', error: '#e5484d' };

function crossSdf(cx, cy, h, w) {
  return union(segment(cx - h, cy - h, cx + h, cy + h, w / 2), segment(cx - h, cy + h, cx + h, cy - h, w / 2));
}

/** Coloured tray image: light platter with a dark outline and a coloured dot. */
function trayColour(state, size) {
  const { cx, cy, r } = platterC;
  const cut = circle(badge.cx, badge.cy, badge.r + badge.gap);
  const ink = hex('#374151');
  const layers = [
    { sdf: minus(circle(cx, cy, r), cut), fill: linear(cx - r, cy - r, hex('#f3f5f8'), cx + r, cy + r, hex('#c3ccd8')) },
    { sdf: minus(ring(cx, cy, r - 0.045, 0.09), cut), fill: ink },
    { sdf: circle(cx, cy, 0.105), fill: ink },
    { sdf: circle(badge.cx, badge.cy, badge.r), fill: hex(dotColour[state]) },
  ];
  if (state === 'error' && size >= 32) layers.push({ sdf: crossSdf(badge.cx, badge.cy, 0.08, 0.055), fill: hex('#ffffff') });
  return layers;
}

/** macOS template image: black + alpha only; the badge's shape tells the state. */
function trayTemplate(state) {
  const { cx, cy, r } = platterC;
  const black = hex('#000000');
  const cut = circle(badge.cx, badge.cy, badge.r + badge.gap);
  const platter = union(ring(cx, cy, r - 0.05, 0.1), circle(cx, cy, 0.11));
  if (state === 'idle') return [{ sdf: platter, fill: black }];
  const mark = {
    serving: ring(badge.cx, badge.cy, badge.r - 0.045, 0.09),
    active: circle(badge.cx, badge.cy, badge.r),
    error: crossSdf(badge.cx, badge.cy, 0.14, 0.09),
  }[state];
  return [
    // a faint platter face keeps the glyph readable as a disc
    { sdf: minus(circle(cx, cy, r), cut), fill: hex('#000000', 0.18) },
    { sdf: minus(platter, cut), fill: black },
    { sdf: mark, fill: black },
  ];
}

// ---- write everything -----------------------------------------------------

const written = [];
function write(rel, size, layers) {
  const file = join(res, rel);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, encodePng(size, size, render(size, layers)));
  written.push(relative(root, file));
}

write('icon.png', 512, appIcon());
for (const s of [16, 32, 256, 512]) write(`icons/${s}.png`, s, appIcon());
for (const state of Object.keys(dotColour)) {
  for (const s of [16, 32, 256]) write(`tray/${state}-${s}.png`, s, trayColour(state, s));
  write(`tray/${state}Template.png`, 16, trayTemplate(state));
  write(`tray/${state}Template@2x.png`, 32, trayTemplate(state));
}
console.log(`make-icons: wrote ${written.length} PNGs under ${relative(process.cwd(), res) || '.'}/`);
