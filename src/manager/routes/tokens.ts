import { DroverError } from '../../core/errors.js';
import type { Authenticator } from '../auth.js';
import type { Handlers } from '../http/serve.js';

type TokenHandlers = Pick<Handlers, 'createToken' | 'listTokens' | 'revokeToken'>;

/** Access tokens (admin only: the contract says so). The secret is in the creation reply only. */
export function tokenHandlers(auth: Authenticator | undefined): TokenHandlers {
  const need = () => {
    if (!auth) throw new DroverError('unavailable', 'this manager runs without authentication');
    return auth;
  };
  return {
    createToken: async ({ body }) => {
      const { secret, info } = await need().createToken(body.name, body.role, body.workers);
      return { token: secret, info };
    },
    listTokens: async () => ({ tokens: await need().list() }),
    revokeToken: async ({ params: { id } }) => ({ token: await need().revoke(id) }),
  };
}
