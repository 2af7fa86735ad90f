// Electron main process: one instance, one service, one window (reopened from
// the tray), IPC as the service's transport. Everything that is not Electron
// lives in the service; this file only wires it to windows and the tray.
import { app, BrowserWindow, dialog, safeStorage, session, shell, type WebContents } from 'electron';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createService, type Service } from '../service/service';
import { wireIpc, type IpcBridge } from './ipc';
import { createTray, trayStatusFrom, type SpindleTray } from './tray';

// out/main/index.js → the app root is two levels up (also inside app.asar).
const here = dirname(fileURLToPath(import.meta.url));
const appRoot = resolve(here, '..', '..');
const preloadPath = join(here, '..', 'preload', 'index.cjs');
const rendererIndex = join(here, '..', 'renderer', 'index.html');
const rendererIndexUrl = pathToFileURL(rendererIndex).href;
// electron-vite's dev server (`electron-vite dev`) sets this; never honoured when packaged.
const devUrl = !app.isPackaged && process.env.ELECTRON_RENDERER_URL ? new URL(process.env.ELECTRON_RENDERER_URL) : null;

/**
 * Sent as a header on every response; the renderer's index.html carries the
 * same policy in a meta tag (which is what applies to file:// loads). The
 * header is at least as strict: IPC needs no ws:/wss:, and frame-ancestors
 * only works as a header.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Our own renderer page: the built index.html (any #route), or the dev server. */
function isAppUrl(raw: string): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  if (devUrl) return url.origin === devUrl.origin;
  url.hash = '';
  url.search = '';
  return url.href === rendererIndexUrl;
}

/** An Electron-ABI better-sqlite3 binary, when not the one in node_modules. */
function sqliteBinding(): string | undefined {
  const fromEnv = process.env.SPINDLE_SQLITE_BINDING;
  if (fromEnv) {
    if (existsSync(fromEnv)) return fromEnv;
    console.warn(`spindle: SPINDLE_SQLITE_BINDING=${fromEnv} does not exist; ignoring it`);
  }
  // Packaged builds carry a better-sqlite3 that electron-builder rebuilt for Electron.
  if (app.isPackaged) return undefined;
  const built = join(appRoot, 'out', 'native', `electron-${process.versions.electron}`, 'better_sqlite3.node');
  return existsSync(built) ? built : undefined;
}

function trayIconDir(): string {
  const candidates = [join(appRoot, 'resources', 'tray')];
  // electron-builder copies resources/tray next to app.asar (extraResources).
  if (app.isPackaged) candidates.unshift(join(process.resourcesPath, 'tray'));
  return candidates.find((d) => existsSync(d)) ?? candidates[0]!;
}

function openExternally(raw: string): void {
  try {
    const { protocol } = new URL(raw);
    if (protocol === 'https:' || protocol === 'http:') void shell.openExternal(raw);
  } catch {
    // not a URL: ignore
  }
}

/** No popups, no navigation away, no webviews, no permissions but the clipboard. */
function lockDown(contents: WebContents): void {
  contents.setWindowOpenHandler(({ url }) => {
    openExternally(url);
    return { action: 'deny' };
  });
  contents.on('will-navigate', (event, url) => {
    if (isAppUrl(url)) return;
    event.preventDefault();
    openExternally(url);
  });
  contents.on('will-redirect', (event, url) => {
    if (!isAppUrl(url)) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
}

function hardenSession(): void {
  const ses = session.defaultSession;
  ses.webRequest.onHeadersReceived((details, callback) => {
    const headers = { ...details.responseHeaders };
    for (const key of Object.keys(headers)) if (key.toLowerCase() === 'content-security-policy') delete headers[key];
    headers['Content-Security-Policy'] = [CONTENT_SECURITY_POLICY];
    callback({ responseHeaders: headers });
  });
  // Copy buttons (connection instructions) need clipboard writes; nothing else is granted.
  const allowed = (permission: string, origin: string) => permission === 'clipboard-sanitized-write' && isAppUrl(origin);
  ses.setPermissionRequestHandler((wc, permission, callback) => callback(allowed(permission, wc.getURL())));
  ses.setPermissionCheckHandler((wc, permission) => allowed(permission, wc?.getURL() ?? ''));
}

// ---- lifecycle ----------------------------------------------------------------

let service: Service | null = null;
let ipc: IpcBridge | null = null;
let tray: SpindleTray | null = null;
let win: BrowserWindow | null = null;

function createWindow(): BrowserWindow {
  const w = new BrowserWindow({
    width: 1280,
    height: 800,
    minWidth: 900,
    minHeight: 600,
    show: false,
    title: 'Spindle',
    ...(process.platform === 'linux' ? { icon: join(appRoot, 'resources', 'icons', '512.png') } : {}),
    webPreferences: {
      preload: preloadPath,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      webviewTag: false,
      spellcheck: false,
    },
  });
  ipc?.attach(w);
  w.once('ready-to-show', () => w.show());
  w.on('closed', () => {
    if (win === w) win = null;
  });
  if (devUrl) void w.loadURL(devUrl.href);
  else void w.loadFile(rendererIndex);
  return w;
}

function showWindow(): void {
  if (!app.isReady() || !service) return;
  if (!win || win.isDestroyed()) win = createWindow();
  else {
    if (win.isMinimized()) win.restore();
    win.show();
    win.focus();
  }
}

let shutdown: Promise<void> | null = null;
let shutDown = false;

async function closeEverything(): Promise<void> {
  tray?.dispose();
  tray = null;
  ipc?.dispose();
  ipc = null;
  const s = service;
  service = null;
  if (!s) return;
  // Never let a stuck close keep the app from quitting.
  await Promise.race([
    s.close().catch((err: unknown) => console.error(`spindle: closing the service failed: ${(err as Error).message}`)),
    new Promise<void>((r) => setTimeout(r, 10_000).unref()),
  ]);
}

/** CHAP secrets at rest: the OS keychain through safeStorage where it is available, else a 0600 file (the store's default). */
function secretCipher(): { secretCipher?: { encrypt(plain: Buffer): Buffer; decrypt(cipher: Buffer): Buffer } } {
  if (!safeStorage.isEncryptionAvailable()) return {};
  // Linux without a keyring falls back to a hard-coded key: no better than the 0600 file, and not portable.
  if (process.platform === 'linux' && safeStorage.getSelectedStorageBackend() === 'basic_text') return {};
  return {
    secretCipher: {
      encrypt: (plain) => safeStorage.encryptString(plain.toString('utf8')),
      decrypt: (cipher) => Buffer.from(safeStorage.decryptString(cipher), 'utf8'),
    },
  };
}

async function start(): Promise<void> {
  await app.whenReady();
  hardenSession();
  const nativeBinding = sqliteBinding();
  try {
    service = await createService({
      dataDir: app.getPath('userData'),
      transport: 'electron',
      version: app.getVersion(),
      ...(nativeBinding ? { nativeBinding } : {}),
      ...secretCipher(),
    });
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    const hint = /NODE_MODULE_VERSION|was compiled against/.test(message)
      ? '\n\nbetter-sqlite3 is built for Node, not Electron. Start Spindle with `npm start`, which builds an Electron copy.'
      : '';
    dialog.showErrorBox('Spindle could not start', `${message}${hint}`);
    app.exit(1);
    return;
  }
  ipc = wireIpc(service, { isAppUrl });
  tray = createTray({ iconDir: trayIconDir(), onOpen: showWindow, onQuit: () => app.quit() });
  service.on('stats', (tick) => tray?.update(trayStatusFrom(tick)));
  win = createWindow();
}

if (!app.requestSingleInstanceLock()) {
  // Another Spindle is running: it shows its window (second-instance) and we leave.
  app.quit();
} else {
  app.enableSandbox();
  if (process.platform === 'win32') app.setAppUserModelId('net.spindle.app');
  app.on('second-instance', showWindow);
  app.on('activate', showWindow); // macOS dock click
  app.on('web-contents-created', (_event, contents) => lockDown(contents));
  // Sharing and connections keep running in the tray; without a tray, closing the window quits.
  app.on('window-all-closed', () => {
    if (!tray) app.quit();
  });
  app.on('before-quit', (event) => {
    if (shutDown) return;
    event.preventDefault();
    shutdown ??= closeEverything().finally(() => {
      shutDown = true;
      app.quit();
    });
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => app.quit());

  start().catch((err: unknown) => {
    console.error(`spindle: ${(err as Error).stack ?? String(err)}`);
    app.exit(1);
  });
}
