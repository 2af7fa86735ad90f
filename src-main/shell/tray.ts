// The tray icon: at a glance, is anything serving or connected?
// States: idle (grey), serving (blue: a target is listening), active (green:
// an initiator is connected to us, or we to a target), error (red).
// It is driven by the service's `stats` event; the figures it reads are
// optional so that engine counters plug in as they land in StatsTick.
import { Menu, Tray, nativeImage, type NativeImage } from 'electron';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StatsTick } from '../service/api/schema';

export type TrayState = 'idle' | 'serving' | 'active' | 'error';

export interface TrayStatus {
  state: TrayState;
  /** Targets with a listening portal. */
  targetsServing: number;
  /** Sessions in either direction: initiators logged in to us plus our own connections. */
  connected: number;
  /** Shown in the tooltip when state is 'error'. */
  error?: string;
}

/**
 * Figures a stats tick may carry once the engines report them. Every field is
 * optional: a tick without them means idle.
 */
export interface TrayFigures {
  targetsServing?: number;
  /** Initiator sessions logged in to our targets. */
  targetSessions?: number;
  /** Our initiator's sessions to remote targets. */
  initiatorSessions?: number;
  /** A problem that needs the user (a portal that failed to listen, a lost connection). */
  error?: string | null;
}

const count = (n: unknown): number => (typeof n === 'number' && Number.isFinite(n) && n > 0 ? Math.floor(n) : 0);

/** The tray status a stats tick implies. */
export function trayStatusFrom(tick: StatsTick & TrayFigures): TrayStatus {
  const targetsServing = count(tick.targetsServing);
  const connected = count(tick.targetSessions) + count(tick.initiatorSessions);
  const error = typeof tick.error === 'string' && tick.error ? tick.error : undefined;
  const state: TrayState = error ? 'error' : connected > 0 ? 'active' : targetsServing > 0 ? 'serving' : 'idle';
  return error ? { state, targetsServing, connected, error } : { state, targetsServing, connected };
}

export function tooltipFor(s: TrayStatus): string {
  const targets = `${s.targetsServing} ${s.targetsServing === 1 ? 'target' : 'targets'} serving`;
  const line = `Spindle — ${targets}, ${s.connected} connected`;
  return s.error ? `${line}\n${s.error}` : line;
}

export interface SpindleTray {
  update(status: TrayStatus): void;
  dispose(): void;
}

export interface TrayOptions {
  /** Folder holding the tray PNGs (resources/tray). */
  iconDir: string;
  onOpen(): void;
  onQuit(): void;
}

function loadIcon(dir: string, state: TrayState): NativeImage {
  if (process.platform === 'darwin') {
    // Template images: black + alpha, tinted by macOS; `@2x` is picked up by name.
    const img = nativeImage.createFromPath(join(dir, `${state}Template.png`));
    img.setTemplateImage(true);
    return img;
  }
  if (process.platform === 'win32') {
    const img = nativeImage.createEmpty();
    for (const [size, scaleFactor] of [[16, 1], [32, 2]] as const) {
      const file = join(dir, `${state}-${size}.png`);
      if (existsSync(file)) img.addRepresentation({ scaleFactor, width: size, height: size, buffer: readFileSync(file) });
    }
    return img;
  }
  // Linux status notifier hosts scale the image to the panel; 32 px stays crisp at 22–24.
  return nativeImage.createFromPath(join(dir, `${state}-32.png`));
}

/** Creates the tray icon, or returns null where the desktop has no tray. */
export function createTray(opts: TrayOptions): SpindleTray | null {
  const icons = new Map<TrayState, NativeImage>();
  const icon = (state: TrayState) => {
    let img = icons.get(state);
    if (!img) icons.set(state, (img = loadIcon(opts.iconDir, state)));
    return img;
  };

  let tray: Tray;
  try {
    tray = new Tray(icon('idle'));
  } catch (err) {
    console.error(`spindle: no tray icon (${(err as Error).message})`);
    return null;
  }
  tray.setContextMenu(
    Menu.buildFromTemplate([
      { label: 'Open Spindle', click: () => opts.onOpen() },
      { type: 'separator' },
      { label: 'Quit', click: () => opts.onQuit() },
    ]),
  );
  // Windows and most Linux hosts: a left click opens the window.
  tray.on('click', () => opts.onOpen());

  let last = '';
  const update = (status: TrayStatus) => {
    if (tray.isDestroyed()) return;
    const tip = tooltipFor(status);
    const key = `${status.state}\n${tip}`;
    if (key === last) return;
    last = key;
    tray.setImage(icon(status.state));
    tray.setToolTip(tip);
  };
  update({ state: 'idle', targetsServing: 0, connected: 0 });

  return {
    update,
    dispose() {
      if (!tray.isDestroyed()) tray.destroy();
    },
  };
}
