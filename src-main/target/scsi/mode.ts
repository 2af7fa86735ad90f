/**
 * Mode pages (SPC-4 §7.5, SBC-3 §6.4): Caching (08h), Control (0Ah) and
 * Informational Exceptions Control (1Ch). Each page is built for a page
 * control (current / changeable / default); MODE SELECT checks a page
 * byte-for-byte against the current one under the changeable mask.
 *
 * Changeable: WCE (caching) and SWP (control). Saving is not supported.
 *
 * Mode page policy (SPC-4 §7.5.2, reported in the Mode Page Policy VPD page
 * 87h): the Caching and Informational Exceptions pages are shared — one copy
 * for the logical unit, and changing WCE gives every other I_T nexus MODE
 * PARAMETERS CHANGED. The Control page is per I_T nexus, a policy SPC-4
 * §7.5.8 allows for it ("shall be shared, or per I_T nexus"): each nexus has
 * its own copy, so its SWP write-protects the medium for that nexus only and
 * changing it concerns no other nexus (SPC-4 §6.11: the unit attention is
 * for "parameters applying to other I_T nexuses"). Its TST field, which
 * SPC-4 keeps shared whatever the policy, is not changeable (000b).
 */

export const ModePage = {
  CACHING: 0x08,
  CONTROL: 0x0a,
  INFORMATIONAL_EXCEPTIONS: 0x1c,
  ALL: 0x3f,
} as const;

export const PageControl = { CURRENT: 0, CHANGEABLE: 1, DEFAULT: 2, SAVED: 3 } as const;

/** MODE PAGE POLICY values (SPC-4 §7.8.9; 10b is obsolete). */
export const PagePolicy = { SHARED: 0b00, PER_TARGET_PORT: 0b01, PER_I_T_NEXUS: 0b11 } as const;

/** The policy of each supported page (VPD 87h lists them in this order). */
export const PAGE_POLICY: ReadonlyMap<number, number> = new Map([
  [ModePage.CACHING, PagePolicy.SHARED],
  [ModePage.CONTROL, PagePolicy.PER_I_T_NEXUS],
  [ModePage.INFORMATIONAL_EXCEPTIONS, PagePolicy.SHARED],
]);

/** Parameters of the shared pages: one copy per logical unit. */
export interface SharedModeParameters {
  /** Write cache enable (Caching page): writes may complete before they are durable. */
  wce: boolean;
}

/** Parameters of the per-I_T-nexus pages: one copy per I_T nexus. */
export interface NexusModeParameters {
  /** Software write protect (Control page): this nexus may not write the medium. */
  swp: boolean;
}

/** The mode parameters as one I_T nexus sees them. */
export type ModeParameters = SharedModeParameters & NexusModeParameters;

export const DEFAULT_SHARED_MODE_PARAMETERS: Readonly<SharedModeParameters> = Object.freeze({ wce: true });
export const DEFAULT_NEXUS_MODE_PARAMETERS: Readonly<NexusModeParameters> = Object.freeze({ swp: false });
export const DEFAULT_MODE_PARAMETERS: Readonly<ModeParameters> = Object.freeze({ ...DEFAULT_SHARED_MODE_PARAMETERS, ...DEFAULT_NEXUS_MODE_PARAMETERS });

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

/** The shared part of a nexus's view of the mode parameters. */
export function sharedPart(p: ModeParameters): SharedModeParameters {
  return { wce: p.wce };
}

/** The per-I_T-nexus part of a nexus's view of the mode parameters. */
export function nexusPart(p: ModeParameters): NexusModeParameters {
  return { swp: p.swp };
}
