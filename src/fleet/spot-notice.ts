import { z } from 'zod';
import { text } from '../core/text.js';

/**
 * The worker side of an EC2 spot interruption: EC2 gives a spot instance two minutes'
 * notice in its instance metadata (`/latest/meta-data/spot/instance-action`: 404 until then,
 * then `{"action": "terminate", "time": "…"}`). The watcher polls it every 2 s (AWS advises
 * 1–5 s; Deadline Cloud's agent polls every second) with an IMDSv2 session token, and calls
 * `onNotice` once, which the worker turns into "the machine is going away": stop claiming,
 * hand running tasks back as interrupted.
 *
 * A metadata service that cannot be reached (yet) is retried on the next tick, never fatal:
 * a worker keeps rendering. The ec2 provider's user data turns it on
 * (`DROVER_MACHINE_NOTICE=ec2`); `AWS_EC2_METADATA_SERVICE_ENDPOINT` overrides where it looks,
 * as it does for the AWS SDKs.
 */

export const DEFAULT_IMDS_ENDPOINT = 'http://169.254.169.254';

export interface SpotNotice {
  /** `terminate`, `stop` or `hibernate`. */
  action: string;
  /** When EC2 will act (ISO 8601, UTC). */
  time: string;
}

export interface SpotNoticeOptions {
  /** The metadata service (default `http://169.254.169.254`). */
  endpoint?: string;
  /** Poll interval (2 s). */
  intervalMs?: number;
  /** Per-request timeout (1 s). */
  requestTimeoutMs?: number;
  /** Called once, when the notice appears. */
  onNotice(notice: SpotNotice): void;
  /** A failure to reach the metadata service (reported once until it answers again). */
  onError?(error: Error): void;
}

const noticeSchema = z.object({
  action: text().max(40),
  time: text().max(64),
});

/** The IMDSv2 session lasts 6 h; a new one is asked for an hour before it ends. */
const TOKEN_TTL_S = 21_600;
const MAX_BODY = 4096;

export interface SpotNoticeWatcher {
  /** Stops polling (no effect after the notice). */
  stop(): void;
  /** Resolves when the watcher has stopped (notice seen or `stop` called). */
  readonly done: Promise<SpotNotice | undefined>;
}

/** Starts polling the instance metadata for a spot interruption notice. */
export function watchSpotNotice(o: SpotNoticeOptions): SpotNoticeWatcher {
  const base = (o.endpoint ?? DEFAULT_IMDS_ENDPOINT).replace(/\/+$/, '');
  const intervalMs = o.intervalMs ?? 2_000;
  const timeoutMs = o.requestTimeoutMs ?? 1_000;
  const stopped = new AbortController();
  let session: { token: string; renewAt: number } | undefined;
  let failing = false;

  const request = async (path: string, init: RequestInit): Promise<Response> => {
    const res = await fetch(`${base}${path}`, {
      ...init,
      signal: AbortSignal.any([stopped.signal, AbortSignal.timeout(timeoutMs)]),
      redirect: 'error',
    });
    return res;
  };
  const body = async (res: Response): Promise<string> => {
    const t = await res.text();
    if (t.length > MAX_BODY) throw new Error('instance metadata reply too large');
    return t;
  };
  const token = async (): Promise<string> => {
    if (session && Date.now() < session.renewAt) return session.token;
    const res = await request('/latest/api/token', {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': String(TOKEN_TTL_S) },
    });
    if (!res.ok) throw new Error(`instance metadata token: HTTP ${res.status}`);
    const t = (await body(res)).trim();
    session = { token: t, renewAt: Date.now() + (TOKEN_TTL_S - 3600) * 1000 };
    return t;
  };
  /** The notice, or undefined while there is none. */
  const poll = async (): Promise<SpotNotice | undefined> => {
    const res = await request('/latest/meta-data/spot/instance-action', {
      headers: { 'X-aws-ec2-metadata-token': await token() },
    });
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (res.status === 401) {
      // The session ended (or the service restarted): a new one next time.
      session = undefined;
      await res.body?.cancel();
      throw new Error('instance metadata: session token refused');
    }
    if (!res.ok) throw new Error(`instance metadata: HTTP ${res.status}`);
    const raw = await body(res);
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      throw new Error('instance metadata: spot/instance-action is not JSON');
    }
    const parsed = noticeSchema.safeParse(json);
    if (!parsed.success) throw new Error('instance metadata: spot/instance-action has no action');
    return parsed.data;
  };

  const done = (async (): Promise<SpotNotice | undefined> => {
    while (!stopped.signal.aborted) {
      try {
        const notice = await poll();
        failing = false;
        if (notice) {
          o.onNotice(notice);
          return notice;
        }
      } catch (error) {
        if (!stopped.signal.aborted && !failing) {
          failing = true;
          o.onError?.(error instanceof Error ? error : new Error(String(error)));
        }
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, intervalMs);
        stopped.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            resolve();
          },
          { once: true },
        );
      });
    }
    return undefined;
  })();
  return { stop: () => stopped.abort(), done };
}

/**
 * The watcher a worker process should run, from its environment: on when
 * `DROVER_MACHINE_NOTICE=ec2` (the ec2 provider's user data sets it), at
 * `AWS_EC2_METADATA_SERVICE_ENDPOINT` if given. Undefined elsewhere (no polling of an address
 * that does not exist off EC2).
 */
export function spotNoticeFromEnv(
  env: NodeJS.ProcessEnv,
): Pick<SpotNoticeOptions, 'endpoint'> | undefined {
  if (env.DROVER_MACHINE_NOTICE !== 'ec2') return undefined;
  const endpoint = env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
  return endpoint ? { endpoint } : {};
}
