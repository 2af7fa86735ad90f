import type { Settings } from '../../../src-main/service/api/schema';

type Theme = Settings['theme'];
const KEY = 'spindle.theme';

/** Apply a theme now and remember it, so the next start doesn't flash. */
export function applyTheme(theme: Theme): void {
  document.documentElement.dataset.theme = theme;
  try {
    localStorage.setItem(KEY, theme);
  } catch {
    /* storage disabled */
  }
}

/** The last theme used, applied before the first paint. */
export function restoreTheme(): void {
  try {
    const t = localStorage.getItem(KEY);
    if (t === 'light' || t === 'dark' || t === 'system') document.documentElement.dataset.theme = t;
  } catch {
    /* storage disabled */
  }
}
