/**
 * A bearer-key JSON call to a running coordinator, for the e2e suites: the status, the raw text
 * (for assertion messages) and the parsed body (to hand to a zod schema).
 */
export async function callCoordinator(
  baseUrl: string,
  method: string,
  path: string,
  key: string,
  body?: unknown,
): Promise<{ status: number; text: string; json: unknown }> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  const json: unknown = JSON.parse(text);
  return { status: response.status, text, json };
}
