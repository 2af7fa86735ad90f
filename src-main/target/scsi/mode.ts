/**
 * Mode pages (SPC-4 §7.5, SBC-3 §6.4): Caching (08h), Control (0Ah) and
 * Informational Exceptions Control (1Ch). Each page is built for a page
 * control (current / changeable / default); MODE SELECT checks a page
 * byte-for-byte against the current one under the changeable mask.
 *
 * Changeable: WCE (caching) and SWP (control). Saving is not supported.
 */

export const ModePage = {
  CACHING: 0x08,
  CONTROL: 0x0a,
  INFORMATIONAL_EXCEPTIONS: 0x1c,
  ALL: 0x3f,
} as const;

export const PageControl = { CURRENT: 0, CHANGEABLE: 1, DEFAULT: 2, SAVED: 3 } as const;

/** The mode parameters a logical unit keeps. */
export interface ModeParameters {
  /** Write cache enable: writes may complete before they are durable. */
  wce: boolean;
  /** Software write protect. */
  swp: boolean;
}

export const DEFAULT_MODE_PARAMETERS: Readonly<ModeParameters> = Object.freeze({ wce: true, swp: false });

/** Page codes in the order MODE SENSE returns them for 3Fh. */
export const SUPPORTED_PAGES = [ModePage.CACHING, ModePage.CONTROL, ModePage.INFORMATIONAL_EXCEPTIONS] as const;

/** Total length of each page including its 2-byte header. */
const PAGE_LENGTH: Record<number, number> = {
  [ModePage.CACHING]: 20,
  [ModePage.CONTROL]: 12,
  [ModePage.INFORMATIONAL_EXCEPTIONS]: 12,
};

export function pageLength(page: number): number | undefined {
  return PAGE_LENGTH[page];
}

/** One mode page as MODE SENSE reports it (PS is 0: pages cannot be saved). */
export function buildPage(page: number, pc: number, current: ModeParameters): Buffer {
  const len = PAGE_LENGTH[page];
  const b = Buffer.alloc(len);
  b[0] = page;
  b[1] = len - 2;
  const changeable = pc === PageControl.CHANGEABLE;
  const values = pc === PageControl.CURRENT ? current : DEFAULT_MODE_PARAMETERS;
  switch (page) {
    case ModePage.CACHING:
      // WCE (bit 2); RCD = 0: reads are served from the page cache.
      if (changeable) b[2] = 0x04;
      else if (values.wce) b[2] = 0x04;
      break;
    case ModePage.CONTROL:
      if (changeable) {
        b[4] = 0x08; // SWP
      } else {
        b[2] = 0x02; // GLTSD: no log parameters to save
        b[3] = 0x10; // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering of SIMPLE tasks
        if (values.swp) b[4] = 0x08;
        b.writeUInt16BE(0xffff, 8); // BUSY TIMEOUT PERIOD: unlimited
      }
      break;
    case ModePage.INFORMATIONAL_EXCEPTIONS:
      if (!changeable) b[2] = 0x08; // DEXCPT: no informational exception reporting
      break;
  }
  return b;
}

/** Mask of the bits MODE SELECT may change, per page byte. */
export function changeableMask(page: number): Buffer {
  return buildPage(page, PageControl.CHANGEABLE, DEFAULT_MODE_PARAMETERS);
}

/** Applies an already validated page to the parameters. */
export function applyPage(page: number, data: Buffer, into: ModeParameters): void {
  if (page === ModePage.CACHING) into.wce = (data[2] & 0x04) !== 0;
  else if (page === ModePage.CONTROL) into.swp = (data[4] & 0x08) !== 0;
}
