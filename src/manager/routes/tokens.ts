import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { roles, WORKER_PATTERN, type TokenInfo } from '../../core/auth.js';
import { DroverError } from '../../core/errors.js';
import { parseInput } from '../../core/validate.js';
import type { Authenticator } from '../auth.js';

const createBody = z
  .object({
    name: z
      .string()
      .trim()
      .min(1)
      .max(128)
      .regex(/^[^\s,]+$/, 'must not contain spaces or commas'),
    role: z.enum(roles),
    workers: z
      .string()
      .regex(WORKER_PATTERN, 'a worker name or pattern (* for any run of characters)')
      .optional(),
  })
  .strict()
  .refine((b) => b.workers === undefined || b.role === 'worker', {
    path: ['workers'],
    message: 'only worker tokens name the workers they act as',
  });
const idParams = z.object({ id: z.string().min(1).max(64) });

/** Access tokens (admin only, see `auth.ts`). The secret is in the creation reply only. */
export function tokenRoutes(app: FastifyInstance, auth: Authenticator | undefined): void {
  const need = () => {
    if (!auth) throw new DroverError('unavailable', 'this manager runs without authentication');
    return auth;
  };
  app.post('/tokens', async (req, reply): Promise<{ token: string; info: TokenInfo }> => {
    const { name, role, workers } = parseInput(createBody, req.body);
    const { secret, info } = await need().createToken(name, role, workers);
    reply.status(201);
    return { token: secret, info };
  });
  app.get('/tokens', async (): Promise<{ tokens: TokenInfo[] }> => {
    return { tokens: await need().list() };
  });
  app.delete('/tokens/:id', async (req): Promise<{ token: TokenInfo }> => {
    const { id } = parseInput(idParams, req.params, 'params');
    return { token: await need().revoke(id) };
  });
}
