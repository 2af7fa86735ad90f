// Settings = defaults overlaid with what the store holds. A stored value that
// no longer validates (hand-edited DB, older format) falls back to its default
// rather than breaking start-up.
import { defaultSettings, settingsSchema, type Settings } from './api/schema';

export function mergeSettings(stored: Record<string, unknown>): Settings {
  const out: Record<string, unknown> = { ...defaultSettings };
  const shape = settingsSchema.shape as Record<string, { safeParse(v: unknown): { success: boolean } }>;
  for (const [key, value] of Object.entries(stored)) {
    const field = shape[key];
    if (field && field.safeParse(value).success) out[key] = value;
  }
  return out as Settings;
}
