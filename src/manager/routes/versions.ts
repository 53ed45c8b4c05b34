import type { versionRoutes } from '../../api/version-routes.js';
import type { Farm } from '../farm.js';
import type { HandlersOf } from '../http/serve.js';

/** The versions' routes (`src/api/version-routes.ts`). */
export function versionHandlers(_farm: Farm): HandlersOf<typeof versionRoutes> {
  return {};
}
