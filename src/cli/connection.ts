import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DroverClient } from '../client/index.js';

export const DEFAULT_URL = 'http://127.0.0.1:8642';

/** Global options every command that talks to the manager takes. */
export interface ConnectionOptions {
  /** One or more manager addresses, comma-separated. */
  url?: string;
  token?: string;
}

/**
 * The token: --token, DROVER_TOKEN, or — on the machine running `drover dev` or a manager
 * with the default data folder — the admin token the manager wrote to
 * `./.drover/admin-token` (DROVER_TOKEN_FILE names another file).
 */
export function resolveToken(explicit?: string): string | undefined {
  const token = explicit ?? process.env.DROVER_TOKEN;
  if (token) return token;
  const file = process.env.DROVER_TOKEN_FILE ?? join('.drover', 'admin-token');
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export function connect(options: ConnectionOptions): DroverClient {
  const url = options.url ?? process.env.DROVER_URL ?? DEFAULT_URL;
  const token = resolveToken(options.token);
  return new DroverClient({
    url: url
      .split(',')
      .map((u) => u.trim())
      .filter(Boolean),
    ...(token ? { token } : {}),
  });
}
