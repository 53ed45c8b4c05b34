/** HTTP for the Deadline Web Service tests: Basic credentials and a text-first request. */

/** `Authorization: Basic` with a Drover token as the password (the user name is not checked). */
export function basic(name: string, secret: string): string {
  return `Basic ${Buffer.from(`${name}:${secret}`).toString('base64')}`;
}

export interface TextAnswer {
  status: number;
  text: string;
  json<T>(): T;
}

/** Sends `body` as JSON when given; the answer as text (Deadline answers text or JSON). */
export async function call(
  method: string,
  url: string,
  body: unknown,
  auth: string,
): Promise<TextAnswer> {
  const r = await fetch(url, {
    method,
    headers: {
      authorization: auth,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, text, json: <T>() => JSON.parse(text) as T };
}
