/** `GET {apiBaseUrl}/api/service-info`: how the agent finds the socket (no auth, as in Hercules). */
import { ServiceInfo } from "@nimbus/protocol";

/** The service could not be asked right now; the agent retries with back-off. */
export class ServiceInfoUnavailable extends Error {
  override readonly name = "ServiceInfoUnavailable";
}

export async function fetchServiceInfo(
  apiBaseUrl: string,
  fetchImpl: typeof fetch = fetch,
  timeoutMs = 10_000,
  /** Aborts the request when the agent stops. */
  signal?: AbortSignal,
): Promise<ServiceInfo> {
  const url = `${apiBaseUrl}/api/service-info`;
  let response: Response;
  try {
    const timeout = AbortSignal.timeout(timeoutMs);
    response = await fetchImpl(url, {
      signal: signal === undefined ? timeout : AbortSignal.any([timeout, signal]),
      headers: { accept: "application/json" },
    });
  } catch (err) {
    throw new ServiceInfoUnavailable(`cannot reach ${url}: ${describeFetchError(err)}`);
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    throw new ServiceInfoUnavailable(`${url} answered HTTP ${response.status} — is "apiBaseUrl" the Nimbus API?`);
  }
  const parsed = ServiceInfo.safeParse(body);
  if (!parsed.success) {
    throw new ServiceInfoUnavailable(`${url} did not answer with service info — is "apiBaseUrl" the Nimbus API?`);
  }
  return parsed.data;
}

/** The socket URL, resolved against the API base (a relative or http(s) URL becomes ws(s)). */
export function agentSocketUrl(info: ServiceInfo, apiBaseUrl: string): string {
  let url: URL;
  try {
    url = new URL(info.agentSocketUrl, `${apiBaseUrl}/`);
  } catch {
    throw new ServiceInfoUnavailable(`service-info gave an invalid agentSocketUrl "${info.agentSocketUrl}"`);
  }
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new ServiceInfoUnavailable(`service-info gave agentSocketUrl "${info.agentSocketUrl}", not a ws:// or wss:// URL`);
  }
  return url.toString();
}

/** fetch() hides the useful part ("ECONNREFUSED") in `cause`. */
function describeFetchError(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === "TimeoutError") return "timed out";
    const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? err.message;
  }
  return String(err);
}
