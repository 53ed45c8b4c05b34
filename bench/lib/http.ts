import http from 'node:http';

/**
 * A small keep-alive JSON client over `node:http` (no retries, no redirects): the simulated
 * workers' transport. One agent per client; each in-flight request holds its own socket (the
 * swarm gives every simulated worker its own client, as each real worker holds its own
 * connection).
 */
export class JsonClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  private readonly host: string;
  private readonly port: number;

  constructor(
    baseUrl: string,
    private readonly token: string,
  ) {
    const u = new URL(baseUrl);
    this.host = u.hostname;
    this.port = Number(u.port);
  }

  request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.host,
          port: this.port,
          method,
          path,
          agent: this.agent,
          headers: {
            authorization: `Bearer ${this.token}`,
            ...(payload === undefined
              ? {}
              : {
                  'content-type': 'application/json',
                  'content-length': Buffer.byteLength(payload),
                }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              resolve({ status: res.statusCode ?? 0, body: (text ? JSON.parse(text) : {}) as T });
            } catch (err) {
              reject(err instanceof Error ? err : new Error(String(err)));
            }
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Like `request`, but a status other than 2xx is an error naming the reply. */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.request<T>(method, path, body);
    if (r.status < 200 || r.status >= 300) {
      throw new Error(
        `${method} ${path}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`,
      );
    }
    return r.body;
  }

  close(): void {
    this.agent.destroy();
  }
}
