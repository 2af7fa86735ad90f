// A small parser for Apple's XML property lists (what `diskutil -plist`
// prints): dict, array, key, string, integer, real, true, false; date and
// data are kept as their text.

export type PlistValue = string | number | boolean | PlistValue[] | PlistDict;
export interface PlistDict {
  [key: string]: PlistValue;
}

class PlistSyntaxError extends Error {
  constructor(message: string, at: number) {
    super(`${message} at offset ${at}`);
    this.name = 'PlistSyntaxError';
  }
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (whole, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? whole;
  });
}

// Sticky (/y): they match exactly at lastIndex, so the reader never copies the source.
const MISC = /\s+|<\?[\s\S]*?\?>|<!--[\s\S]*?-->|<!DOCTYPE[^>]*>/y;
const TAG = /<(\/?)([A-Za-z]+)(?:\s[^>]*?)?(\/?)>/y;

interface Tag {
  name: string;
  closing: boolean;
  selfClosing: boolean;
}

class Reader {
  private pos = 0;
  constructor(private readonly src: string) {}

  /** Skip white space, the XML declaration, DOCTYPE and comments. */
  skipMisc(): void {
    for (;;) {
      MISC.lastIndex = this.pos;
      const m = MISC.exec(this.src);
      if (!m || m[0].length === 0) return;
      this.pos += m[0].length;
    }
  }

  atEnd(): boolean {
    this.skipMisc();
    return this.pos >= this.src.length;
  }

  tag(): Tag {
    this.skipMisc();
    TAG.lastIndex = this.pos;
    const m = TAG.exec(this.src);
    if (!m) throw new PlistSyntaxError('expected a tag', this.pos);
    this.pos += m[0].length;
    return { name: m[2], closing: m[1] === '/', selfClosing: m[3] === '/' };
  }

  peekClose(name: string): boolean {
    this.skipMisc();
    return this.src.startsWith(`</${name}>`, this.pos);
  }

  expectClose(name: string): void {
    const t = this.tag();
    if (!t.closing || t.name !== name) throw new PlistSyntaxError(`expected </${name}>`, this.pos);
  }

  /** Text up to `</name>`, consuming the closing tag. */
  textUntil(name: string): string {
    const end = this.src.indexOf(`</${name}>`, this.pos);
    if (end < 0) throw new PlistSyntaxError(`unterminated <${name}>`, this.pos);
    const raw = this.src.slice(this.pos, end);
    this.pos = end + name.length + 3;
    return decodeEntities(raw);
  }

  get offset(): number {
    return this.pos;
  }
}

function readValue(r: Reader, open: Tag = r.tag()): PlistValue {
  if (open.closing) throw new PlistSyntaxError(`unexpected </${open.name}>`, r.offset);
  switch (open.name) {
    case 'dict':
      return open.selfClosing ? {} : readDict(r);
    case 'array':
      return open.selfClosing ? [] : readArray(r);
    case 'true':
    case 'false':
      if (!open.selfClosing) r.expectClose(open.name);
      return open.name === 'true';
    case 'string':
    case 'date':
    case 'data':
      return open.selfClosing ? '' : open.name === 'data' ? r.textUntil(open.name).replace(/\s+/g, '') : r.textUntil(open.name);
    case 'integer':
    case 'real': {
      const t = open.selfClosing ? '' : r.textUntil(open.name).trim();
      const n = Number(t);
      if (t === '' || !Number.isFinite(n)) throw new PlistSyntaxError(`bad <${open.name}> "${t}"`, r.offset);
      return n;
    }
    default:
      throw new PlistSyntaxError(`unknown element <${open.name}>`, r.offset);
  }
}

function readDict(r: Reader): PlistDict {
  const dict: PlistDict = {};
  while (!r.peekClose('dict')) {
    const key = r.tag();
    if (key.name !== 'key' || key.closing) throw new PlistSyntaxError('expected <key>', r.offset);
    const name = key.selfClosing ? '' : r.textUntil('key');
    dict[name] = readValue(r);
  }
  r.expectClose('dict');
  return dict;
}

function readArray(r: Reader): PlistValue[] {
  const items: PlistValue[] = [];
  while (!r.peekClose('array')) items.push(readValue(r));
  r.expectClose('array');
  return items;
}

/** Parse a plist XML document. Throws an Error naming the offset of the first problem. */
export function parsePlist(xml: string): PlistValue {
  const r = new Reader(xml.replace(/^\uFEFF/, ''));
  const first = r.tag();
  if (first.name !== 'plist') return readValue(r, first);
  const value = readValue(r);
  r.expectClose('plist');
  if (!r.atEnd()) throw new PlistSyntaxError('content after </plist>', r.offset);
  return value;
}

export function isDict(v: PlistValue | undefined): v is PlistDict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
