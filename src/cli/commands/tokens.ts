import { invalid } from '../../core/errors.js';
import { roles, type Role } from '../../core/auth.js';
import { connect, type ConnectionOptions } from '../connection.js';
import { formatTime, printJson, printTable, terminalSafe } from '../output.js';

export interface TokenOptions extends ConnectionOptions {
  json?: boolean;
}

/** `drover token create --role user --name alice`: prints the secret, which is shown once. */
export async function tokenCreate(
  o: TokenOptions & { role: string; name: string; workers?: string },
): Promise<void> {
  if (!(roles as readonly string[]).includes(o.role)) {
    throw invalid('--role', `"${o.role}" is not a role (${roles.join(', ')})`);
  }
  if (o.workers !== undefined && o.role !== 'worker') {
    throw invalid('--workers', 'only worker tokens name the workers they act as');
  }
  const reply = await connect(o).createToken(o.name, o.role as Role, o.workers);
  if (o.json) return printJson(reply);
  process.stdout.write(`${reply.token}\n`);
  process.stderr.write(
    `token ${reply.info.id} for ${terminalSafe(reply.info.name)} (${reply.info.role}${
      reply.info.role === 'worker' ? `, as workers ${terminalSafe(reply.info.workers)}` : ''
    }); the secret above is not shown again\n`,
  );
}

export async function tokenList(o: TokenOptions): Promise<void> {
  const tokens = await connect(o).listTokens();
  if (o.json) return printJson(tokens);
  printTable(
    ['ID', 'NAME', 'ROLE', 'WORKERS', 'CREATED', 'REVOKED'],
    tokens.map((t) => [
      t.id,
      t.name,
      t.role,
      t.role === 'worker' ? t.workers : '',
      formatTime(t.createdAt),
      formatTime(t.revokedAt),
    ]),
  );
}

export async function tokenRevoke(id: string, o: TokenOptions): Promise<void> {
  const t = await connect(o).revokeToken(id);
  if (o.json) return printJson(t);
  process.stdout.write(`revoked ${t.id} (${terminalSafe(t.name)}, ${t.role})\n`);
}
