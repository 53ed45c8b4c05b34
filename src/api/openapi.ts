/**
 * The OpenAPI 3.1 document of the HTTP API, generated from the route contract: every
 * declared route (bar the monitor's files) with its parameters, body, reply, the access it
 * needs (`x-drover-access`, `x-drover-owner`, the security requirement) and the error
 * replies that access implies.
 */
import { createDocument, type ZodOpenApiOperationObject } from 'zod-openapi';
import { API, fullPath, type RouteDef } from './contract.js';
import { errorReply } from './replies.js';
import { routes } from './routes.js';

const accessText: Record<RouteDef['access'], string> = {
  public: 'Public: no token needed.',
  read: 'Needs an admin, user or read-only token.',
  user: 'Needs an admin or user token.',
  worker: 'Needs an admin or worker token.',
  admin: 'Needs an admin token.',
};
const ownerText = {
  job: ' A user token acts only on jobs it submitted.',
  worker: ' A worker token acts only as the workers its pattern names.',
};

const contentType = {
  json: 'application/json',
  'event-stream': 'text/event-stream',
  image: 'image/*',
  video: 'video/*',
  html: 'text/html',
  text: 'text/plain',
} as const;

function errorResponse(description: string) {
  return { description, content: { 'application/json': { schema: errorReply } } };
}

function operation(def: RouteDef): ZodOpenApiOperationObject {
  const kind = def.replyKind ?? 'json';
  const responses: ZodOpenApiOperationObject['responses'] = {
    [String(def.status ?? 200)]: {
      description: def.summary,
      content: { [contentType[kind]]: { schema: def.reply } },
    },
    '400': errorResponse('invalid input: the error names the field'),
    '507': errorResponse("the store's disk is full; nothing was changed"),
    '503': errorResponse('the store is unreachable; nothing was changed'),
  };
  if (def.access !== 'public') {
    responses['401'] = errorResponse('no token, or an unknown or revoked one');
    responses['403'] = errorResponse('the token may not call this route');
  }
  if (def.params) responses['404'] = errorResponse('not found');
  return {
    operationId: def.name,
    summary: def.summary,
    description: accessText[def.access] + (def.owner ? ownerText[def.owner] : ''),
    ...(def.access === 'public'
      ? { security: [] }
      : {
          security: def.tokenInQuery ? [{ bearer: [] }, { queryToken: [] }] : [{ bearer: [] }],
        }),
    'x-drover-access': def.access,
    ...(def.owner ? { 'x-drover-owner': def.owner } : {}),
    requestParams: {
      ...(def.params ? { path: def.params as never } : {}),
      ...(def.query ? { query: def.query as never } : {}),
      ...(def.headers ? { header: def.headers } : {}),
    },
    ...(def.body
      ? {
          requestBody: {
            required: !def.body.safeParse(undefined).success,
            content: { 'application/json': { schema: def.body } },
          },
        }
      : {}),
    responses,
  };
}

/** `/jobs/:id` → `/api/v1/jobs/{id}`. */
function openApiPath(def: RouteDef): string {
  return fullPath(def).replace(/:([A-Za-z_]+)/g, '{$1}');
}

/** Builds the document (once per manager; it does not change while it runs). */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, ZodOpenApiOperationObject>> = {};
  for (const def of Object.values(routes) as RouteDef[]) {
    // The monitor's files are not API; `/metrics` (also at the root) is.
    if (def.name === 'monitor') continue;
    const path = openApiPath(def);
    paths[path] ??= {};
    paths[path][def.method.toLowerCase()] = operation(def);
  }
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Drover manager API',
      version,
      description:
        'The HTTP API of a Drover render farm manager. Errors are `{"error": {"code", "message", "field"?}}`. ' +
        'Every route states the access it needs (`x-drover-access`); anything else is refused.',
    },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'a Drover access token (drv_…)' },
        queryToken: {
          type: 'apiKey',
          in: 'query',
          name: 'token',
          description: 'for the event stream and images only (a browser cannot set headers there)',
        },
      },
    },
    tags: [{ name: 'drover', description: `All routes are under ${API}, but /metrics.` }],
    paths,
  }) as unknown as Record<string, unknown>;
}
