import { createHmac } from 'node:crypto';
import type { ConfigEntry, ConfigValues } from '../../../core/plugin-config.js';
import type { FarmEvent } from '../../../core/types.js';
import type { EventPlugin, PluginContext } from '../../plugin.js';

/**
 * webhook: the generic bridge to review trackers (ShotGrid, ftrack, Kitsu) and chat: POSTs
 * each event of the configured types as JSON to the configured URLs.
 *
 * Delivery is at least once: the host runs `onEvent` again for an event whose delivery was
 * interrupted by a restart, so a receiver dedupes on `X-Drover-Delivery` (the event's
 * sequence number, also `seq` in the body). Each POST has a timeout; a network error, a
 * timeout, 408, 429 or 5xx is retried with doubling back-off, other answers are final. A
 * URL that failed its last deliveries gets one attempt per event until it answers again, so
 * a dead receiver costs one timeout per event instead of the whole retry budget. Failures
 * never reach the farm: they are logged (warn) and kept in the job's plugin data (the last
 * few per job) when the event names a job, each naming the receiver by its origin only.
 * The URLs are configured like a password (never shown back): Slack, Teams and Discord
 * webhook URLs carry their key in the path.
 *
 * Body: `{ seq, type, at (ISO 8601), jobId, taskIndex, worker, data }`. Keys of `data` that
 * look like secrets (token, secret, password, key, auth, environment, credentials) are
 * dropped at any depth, and a body over `maxBodyBytes` goes out with `data` replaced by
 * `{ "truncated": true }`. With a `secret` set, `X-Drover-Signature: sha256=<hex HMAC of
 * the body>` lets the receiver check the sender; the secret itself is never sent.
 */

/** The default event types: published versions and the end of jobs. */
export const DEFAULT_EVENT_TYPES = 'version.*, job.finished, job.failed';
/** After this many events in a row failed at a URL, it gets one attempt per event. */
export const DOWN_AFTER_FAILURES = 3;
/** At most this many delivery failures are kept per job. */
const KEPT_FAILURES = 10;
/** Longest back-off between two attempts. */
const MAX_BACKOFF_MS = 30_000;

const config: ConfigEntry[] = [
  {
    key: 'urls',
    // Kept like a password (never shown back): a webhook URL is often its own secret
    // (Slack, Teams and Discord put the key in the path).
    type: 'password',
    label: 'URLs',
    category: 'Delivery',
    default: '',
    maxLength: 8192,
    description:
      'http:// or https:// URLs to POST to, separated by spaces or commas. Kept like a password: never shown back.',
  },
  {
    key: 'events',
    type: 'string',
    label: 'Event Types',
    category: 'Delivery',
    default: DEFAULT_EVENT_TYPES,
    maxLength: 2048,
    description:
      'Comma-separated event types to send; `version.*` matches every version event, `*` every event.',
  },
  {
    key: 'timeoutSeconds',
    type: 'integer',
    label: 'Timeout (seconds)',
    category: 'Delivery',
    default: 5,
    min: 1,
    max: 60,
    description: 'How long one POST may take before it counts as failed.',
  },
  {
    key: 'retries',
    type: 'integer',
    label: 'Retries',
    category: 'Delivery',
    default: 3,
    min: 0,
    max: 10,
    description: 'Further attempts after a failed POST (network error, timeout, 408, 429, 5xx).',
  },
  {
    key: 'retryDelayMs',
    type: 'integer',
    label: 'First Retry Delay (ms)',
    category: 'Delivery',
    default: 1000,
    min: 0,
    max: 60_000,
    description: 'Wait before the first retry; doubled for each further one (at most 30 s).',
  },
  {
    key: 'maxBodyBytes',
    type: 'integer',
    label: 'Largest Body (bytes)',
    category: 'Delivery',
    default: 65_536,
    min: 1024,
    max: 1_048_576,
    description: "A body larger than this is sent with the event's data left out.",
  },
  {
    key: 'secret',
    type: 'password',
    label: 'Signing Secret',
    category: 'Delivery',
    default: '',
    maxLength: 1024,
    description: 'If set, each POST carries X-Drover-Signature: sha256=<HMAC of the body>.',
  },
];

export interface WebhookSettings {
  urls: URL[];
  /** Patterns: exact types, `prefix.*`, or `*`. */
  events: string[];
  timeoutMs: number;
  retries: number;
  retryDelayMs: number;
  maxBodyBytes: number;
  secret: string;
}

/** Reads the configuration; URLs that are not http(s) are left out and returned as `bad`. */
export function webhookSettings(c: ConfigValues): { settings: WebhookSettings; bad: string[] } {
  const urls: URL[] = [];
  const bad: string[] = [];
  for (const text of String(c.urls ?? '')
    .split(/[\s,]+/)
    .filter(Boolean)) {
    let url: URL | undefined;
    try {
      url = new URL(text);
    } catch {
      url = undefined;
    }
    if (url && (url.protocol === 'http:' || url.protocol === 'https:')) urls.push(url);
    else bad.push(text.slice(0, 200));
  }
  const events = String(c.events ?? DEFAULT_EVENT_TYPES)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return {
    settings: {
      urls,
      events,
      timeoutMs: Number(c.timeoutSeconds ?? 5) * 1000,
      retries: Number(c.retries ?? 3),
      retryDelayMs: Number(c.retryDelayMs ?? 1000),
      maxBodyBytes: Number(c.maxBodyBytes ?? 65_536),
      secret: String(c.secret ?? ''),
    },
    bad,
  };
}

/** Whether `type` is one of `patterns` (`version.*` is every `version.` type; `*` is all). */
export function matchesEventType(type: string, patterns: readonly string[]): boolean {
  return patterns.some((p) =>
    p === '*' ? true : p.endsWith('.*') ? type.startsWith(p.slice(0, -1)) : p === type,
  );
}

const SECRET_KEY =
  /token|secret|password|passwd|credential|auth|api[-_]?key|private|environment|^env$/i;

/** `value` without keys that look like secrets, at any depth (at most 20 deep). */
export function withoutSecrets(value: unknown, depth = 0): unknown {
  if (depth > 20) return null;
  if (Array.isArray(value)) return value.map((v) => withoutSecrets(v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (!SECRET_KEY.test(k)) out[k] = withoutSecrets(v, depth + 1);
    }
    return out;
  }
  return value;
}

/** The JSON body for an event, at most `maxBodyBytes` (else its data is left out). */
export function webhookBody(event: FarmEvent, maxBodyBytes: number): string {
  const body = {
    seq: event.seq,
    type: event.type,
    at: new Date(event.at).toISOString(),
    jobId: event.jobId,
    taskIndex: event.taskIndex,
    worker: event.worker,
    data: withoutSecrets(event.data),
  };
  const text = JSON.stringify(body);
  if (Buffer.byteLength(text) <= maxBodyBytes) return text;
  return JSON.stringify({ ...body, data: { truncated: true } });
}

/**
 * A URL as it may be logged or kept on a job: its origin only. User, password, query and
 * even the path stay out, since webhook services put their key in the path.
 */
export function safeUrl(url: URL): string {
  return `${url.protocol}//${url.host}`;
}

export interface DeliveryOutcome {
  url: string;
  ok: boolean;
  attempts: number;
  /** The last HTTP status, if an answer came. */
  status?: number;
  error?: string;
}

function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export interface DeliverOptions {
  /** Waits between attempts (injectable so tests need not wait for real back-off). */
  sleep?: (ms: number) => Promise<void>;
  /** Attempts at most this many times (a URL that is down gets 1). */
  maxAttempts?: number;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** POSTs `body` to `url` with the settings' timeout and retries; never throws. */
export async function deliver(
  url: URL,
  event: Pick<FarmEvent, 'seq' | 'type'>,
  body: string,
  settings: WebhookSettings,
  options: DeliverOptions = {},
): Promise<DeliveryOutcome> {
  const sleep = options.sleep ?? realSleep;
  const attempts = Math.min(options.maxAttempts ?? Infinity, settings.retries + 1);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'drover-webhook',
    'x-drover-event': event.type,
    'x-drover-delivery': String(event.seq),
  };
  if (settings.secret) {
    headers['x-drover-signature'] =
      `sha256=${createHmac('sha256', settings.secret).update(body).digest('hex')}`;
  }
  const outcome: DeliveryOutcome = { url: safeUrl(url), ok: false, attempts: 0 };
  for (let attempt = 1; attempt <= attempts; attempt++) {
    outcome.attempts = attempt;
    let again = true;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers,
        body,
        // A redirect could lead anywhere: the configured URL is the one that answers.
        redirect: 'manual',
        signal: AbortSignal.timeout(settings.timeoutMs),
      });
      // Read (and drop) the answer so the connection is released; bounded by the timeout.
      await res.arrayBuffer().catch(() => undefined);
      outcome.status = res.status;
      if (res.status >= 200 && res.status < 300) {
        outcome.ok = true;
        delete outcome.error;
        return outcome;
      }
      outcome.error = `HTTP ${res.status}`;
      again = retryable(res.status);
    } catch (err) {
      const e = err as Error;
      outcome.error =
        e.name === 'TimeoutError'
          ? `no answer within ${settings.timeoutMs / 1000} s`
          : `${e.message}${e.cause instanceof Error ? `: ${e.cause.message}` : ''}`.slice(0, 300);
    }
    if (!again || attempt === attempts) break;
    await sleep(Math.min(MAX_BACKOFF_MS, settings.retryDelayMs * 2 ** (attempt - 1)));
  }
  return outcome;
}

/** Per URL, the events in a row whose delivery failed (this manager's memory only). */
const failuresInARow = new Map<string, number>();

/** What a job's plugin data holds: its last delivery failures. */
export interface WebhookJobData {
  failures: Array<DeliveryOutcome & { seq: number; type: string; at: string }>;
}

async function onEvent(event: FarmEvent, ctx: PluginContext): Promise<void> {
  const { settings, bad } = webhookSettings(ctx.config);
  if (bad.length > 0)
    ctx.log.warn({ skipped: bad.length }, 'webhook: URLs that are not http(s) are skipped');
  if (settings.urls.length === 0 || !matchesEventType(event.type, settings.events)) return;
  const body = webhookBody(event, settings.maxBodyBytes);
  const outcomes = await Promise.all(
    settings.urls.map(async (url) => {
      const key = url.href;
      const down = (failuresInARow.get(key) ?? 0) >= DOWN_AFTER_FAILURES;
      const outcome = await deliver(url, event, body, settings, down ? { maxAttempts: 1 } : {});
      if (outcome.ok) failuresInARow.delete(key);
      else failuresInARow.set(key, (failuresInARow.get(key) ?? 0) + 1);
      return outcome;
    }),
  );
  const failed = outcomes.filter((o) => !o.ok);
  if (failed.length === 0) return;
  for (const f of failed) {
    ctx.log.warn(
      { url: f.url, event: event.type, seq: event.seq, attempts: f.attempts, error: f.error },
      'webhook: delivery failed',
    );
  }
  if (!event.jobId) return;
  const job = await ctx.farm.fetchJob(event.jobId);
  if (!job) return;
  const previous = (job.pluginData.webhook as WebhookJobData | undefined)?.failures ?? [];
  const at = new Date().toISOString();
  const data: WebhookJobData = {
    failures: [
      ...previous,
      ...failed.map((f) => ({ ...f, seq: event.seq, type: event.type, at })),
    ].slice(-KEPT_FAILURES),
  };
  await ctx.farm.setJobData(job.id, data);
}

export const webhookPlugin: EventPlugin = {
  name: 'webhook',
  description:
    'POSTs farm events (by default version.*, job.finished and job.failed) as JSON to configured URLs, with a timeout and retries: the bridge to ShotGrid, ftrack, Kitsu or chat.',
  defaultState: 'disabled',
  config,
  handlers: { onEvent },
};
