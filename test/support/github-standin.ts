/**
 * A stand-in for the GitHub REST API, for tests (the real one is not reachable from here).
 * A node:http server that answers the endpoints Nimbus uses as GitHub documents them, checks
 * what GitHub checks (the App's JWT, installation tokens' repositories and permissions, the
 * documented body limits), records every request, and can be told to fail the next requests
 * the ways GitHub does (secondary and primary rate limits, server errors).
 *
 * Point a client at it with NIMBUS_GITHUB_API_URL (or the config's apiBaseUrl) = `standin.url`.
 */
import { createPublicKey, generateKeyPairSync, randomBytes, verify, type KeyObject } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Level = "read" | "write";
export type StandinPermissions = Record<string, Level>;

export interface StandinInstallation {
  id: number;
  account: string;
  /** `owner/name` of each repository the installation covers. */
  repositories: string[];
  /** What the App was granted; tokens may ask for less, never more. */
  permissions: StandinPermissions;
}

export interface StandinOptions {
  appId: number;
  /** The App's public key (PEM or KeyObject): the JWT must be signed by its private half. */
  appPublicKey: string | KeyObject;
  installations?: StandinInstallation[];
  /** Personal tokens accepted with full access to every repository (token mode). */
  personalTokens?: string[];
  /** `owner/name` → login → permission, for the collaborator-permission endpoint. */
  collaborators?: Record<string, Record<string, "admin" | "write" | "read" | "none">>;
  /** The clock installation tokens expire by (the JWT is judged by the real clock, as auth-app makes it). */
  now?: () => Date;
}

export type RequestAuth =
  | { kind: "none" }
  | { kind: "invalid"; reason: string }
  | { kind: "app-jwt"; appId: number }
  | { kind: "installation-token"; installationId: number; repositories: string[]; permissions: StandinPermissions }
  | { kind: "personal-token" };

export interface RecordedRequest {
  method: string;
  /** Path without the query, e.g. `/repos/o/r/check-runs/1`. */
  path: string;
  query: Record<string, string>;
  body: unknown;
  auth: RequestAuth;
  status: number;
}

export interface IssuedToken {
  token: string;
  installationId: number;
  repositories: string[];
  permissions: StandinPermissions;
  expiresAt: Date;
}

export interface StandinCheckRun {
  id: number;
  repository: string;
  head_sha: string;
  name: string;
  external_id: string;
  details_url?: string;
  status: string;
  conclusion: string | null;
  started_at: string | null;
  completed_at: string | null;
  output: { title: string | null; summary: string | null; text: string | null };
  actions: unknown[];
  /** Every body sent for this run, in order (create first). */
  history: Array<Record<string, unknown>>;
}

export interface StandinStatus {
  id: number;
  repository: string;
  sha: string;
  state: string;
  description: string | null;
  target_url: string | null;
  context: string;
}

/** How a canned failure answers. */
export type InjectedFailure =
  | "secondary-rate-limit"
  | "secondary-rate-limit-retry-after"
  | "secondary-rate-limit-429"
  | "primary-rate-limit"
  | "server-error"
  | { status: number; body: unknown; headers?: Record<string, string> };

interface PendingFailure {
  remaining: number;
  failure: InjectedFailure;
  method?: string;
  path?: RegExp;
}

const DOCS = "https://docs.github.com/rest";
/** GitHub's wording for a secondary rate limit (the request id varies). */
export const SECONDARY_RATE_LIMIT_MESSAGE =
  "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 0000:0000:0000:0000:0000.";

class HttpAnswer {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}

const fail = (status: number, message: string, extra: Record<string, unknown> = {}) =>
  new HttpAnswer(status, { message, documentation_url: DOCS, ...extra });
const notFound = () => fail(404, "Not Found");

/** A key pair like a GitHub App's (GitHub hands out PKCS#1 PEM). */
export function testAppKeys(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return { privateKey, publicKey };
}

export class GithubStandin {
  readonly requests: RecordedRequest[] = [];
  readonly tokens: IssuedToken[] = [];
  readonly checkRuns = new Map<number, StandinCheckRun>();
  readonly statuses: StandinStatus[] = [];
  readonly installations: StandinInstallation[];
  readonly #options: StandinOptions;
  readonly #publicKey: KeyObject;
  readonly #failures: PendingFailure[] = [];
  #server?: Server;
  #nextId = 1000;
  url = "";

  private constructor(options: StandinOptions) {
    this.#options = options;
    this.installations = options.installations ?? [];
    this.#publicKey = typeof options.appPublicKey === "string" ? createPublicKey(options.appPublicKey) : options.appPublicKey;
  }

  static async start(options: StandinOptions): Promise<GithubStandin> {
    const standin = new GithubStandin(options);
    const server = createServer((req, res) => void standin.#handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    standin.#server = server;
    standin.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return standin;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The next `count` requests (matching `method` and `path`, if given) fail as `failure`. */
  failNext(count: number, failure: InjectedFailure, match: { method?: string; path?: RegExp } = {}): void {
    this.#failures.push({ remaining: count, failure, ...match });
  }

  /** Forgets every request, token, check run, status and pending failure; ids start again at 1000. */
  reset(): void {
    this.requests.length = 0;
    this.tokens.length = 0;
    this.checkRuns.clear();
    this.statuses.length = 0;
    this.#failures.length = 0;
    this.#nextId = 1000;
  }

  /** Requests other than the App's own (JWT) ones: what the reporting made. */
  apiRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.auth.kind !== "app-jwt");
  }

  #now(): Date {
    return this.#options.now?.() ?? new Date();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://standin");
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    let body: unknown;
    let answer: HttpAnswer;
    const auth = this.#authenticate(req.headers.authorization);
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    const injected = this.#injected(req.method ?? "GET", url.pathname);
    if (injected) {
      answer = injected;
    } else if (body === text && text !== "") {
      answer = fail(400, "Problems parsing JSON");
    } else {
      try {
        answer = this.#route(req.method ?? "GET", url.pathname, url.searchParams, body, auth);
      } catch (error) {
        answer = error instanceof HttpAnswer ? error : fail(500, `stand-in error: ${(error as Error).message}`);
      }
    }
    this.requests.push({
      method: req.method ?? "GET",
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body,
      auth,
      status: answer.status,
    });
    const reset = Math.floor(this.#now().getTime() / 1000) + 3600;
    res.writeHead(answer.status, {
      "content-type": "application/json; charset=utf-8",
      "x-ratelimit-limit": "5000",
      "x-ratelimit-remaining": "4999",
      "x-ratelimit-reset": String(reset),
      "x-github-request-id": "0000:0000:0000:0000:0000",
      ...answer.headers,
    });
    res.end(answer.status === 204 ? undefined : JSON.stringify(answer.body));
  }

  #injected(method: string, path: string): HttpAnswer | undefined {
    const pending = this.#failures.find((f) => f.remaining > 0 && (!f.method || f.method === method) && (!f.path || f.path.test(path)));
    if (!pending) return undefined;
    pending.remaining--;
    const failure = pending.failure;
    const secondary = { message: SECONDARY_RATE_LIMIT_MESSAGE, documentation_url: `${DOCS}/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits` };
    switch (failure) {
      case "secondary-rate-limit":
        return new HttpAnswer(403, secondary);
      case "secondary-rate-limit-retry-after":
        return new HttpAnswer(403, secondary, { "retry-after": "60" });
      case "secondary-rate-limit-429":
        return new HttpAnswer(429, secondary);
      case "primary-rate-limit": {
        const reset = Math.floor(this.#now().getTime() / 1000) + 1800;
        return new HttpAnswer(
          403,
          { message: "API rate limit exceeded for installation ID 1.", documentation_url: `${DOCS}/using-the-rest-api/rate-limits-for-the-rest-api` },
          { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset), "x-ratelimit-used": "5000" },
        );
      }
      case "server-error":
        return new HttpAnswer(502, { message: "Server Error" });
      default:
        return new HttpAnswer(failure.status, failure.body, failure.headers);
    }
  }

  #authenticate(header: string | undefined): RequestAuth {
    if (!header) return { kind: "none" };
    const match = /^(bearer|token)\s+(\S+)$/i.exec(header.trim());
    if (!match) return { kind: "invalid", reason: "malformed Authorization header" };
    const credential = match[2]!;
    if (credential.split(".").length === 3) return this.#verifyJwt(credential);
    if (this.#options.personalTokens?.includes(credential)) return { kind: "personal-token" };
    const issued = this.tokens.find((t) => t.token === credential);
    if (!issued) return { kind: "invalid", reason: "unknown token" };
    if (issued.expiresAt.getTime() <= this.#now().getTime()) return { kind: "invalid", reason: "token expired" };
    return { kind: "installation-token", installationId: issued.installationId, repositories: issued.repositories, permissions: issued.permissions };
  }

  /** The checks GitHub makes of an App JWT: RS256, signed by the App's key, `iss` the App id, `exp` at most 10 minutes ahead. */
  #verifyJwt(jwt: string): RequestAuth {
    const [headerPart = "", payloadPart = "", signaturePart = ""] = jwt.split(".");
    const decode = (part: string) => JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>;
    let header: Record<string, unknown>;
    let payload: Record<string, unknown>;
    try {
      header = decode(headerPart);
      payload = decode(payloadPart);
    } catch {
      return { kind: "invalid", reason: "A JSON web token could not be decoded" };
    }
    if (header.alg !== "RS256") return { kind: "invalid", reason: `JWT alg must be RS256, not ${String(header.alg)}` };
    const signed = verify("RSA-SHA256", Buffer.from(`${headerPart}.${payloadPart}`), this.#publicKey, Buffer.from(signaturePart, "base64url"));
    if (!signed) return { kind: "invalid", reason: "A JSON web token could not be decoded" };
    const nowSeconds = Math.floor(Date.now() / 1000);
    const { iss, iat, exp } = payload;
    if (Number(iss) !== this.#options.appId) return { kind: "invalid", reason: `JWT iss ${String(iss)} is not app ${this.#options.appId}` };
    if (typeof iat !== "number" || iat > nowSeconds + 60) return { kind: "invalid", reason: "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued" };
    if (typeof exp !== "number" || exp <= nowSeconds) return { kind: "invalid", reason: "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires" };
    if (exp > nowSeconds + 600 + 60) return { kind: "invalid", reason: "'Expiration time' claim ('exp') is too far in the future" };
    return { kind: "app-jwt", appId: this.#options.appId };
  }

  #route(method: string, path: string, query: URLSearchParams, body: unknown, auth: RequestAuth): HttpAnswer {
    if (auth.kind === "invalid") return fail(401, auth.reason === "unknown token" || auth.reason === "token expired" ? "Bad credentials" : auth.reason);
    let m: RegExpExecArray | null;
    if (method === "GET" && (m = /^\/repos\/([^/]+)\/([^/]+)\/installation$/.exec(path))) {
      this.#requireJwt(auth);
      return this.#repositoryInstallation(`${m[1]}/${m[2]}`);
    }
    if (method === "POST" && (m = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path))) {
      this.#requireJwt(auth);
      return this.#accessToken(Number(m[1]), body);
    }
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/(.+)$/.exec(path))) {
      const repository = `${m[1]}/${m[2]}`;
      const rest = m[3]!;
      if (method === "POST" && rest === "check-runs") return this.#createCheckRun(repository, body, auth);
      let r: RegExpExecArray | null;
      if (method === "PATCH" && (r = /^check-runs\/(\d+)$/.exec(rest))) return this.#updateCheckRun(repository, Number(r[1]), body, auth);
      if (method === "GET" && (r = /^commits\/([^/]+)\/check-runs$/.exec(rest))) return this.#listCheckRuns(repository, r[1]!, query, auth);
      if (method === "POST" && (r = /^statuses\/([0-9a-f]{40})$/.exec(rest))) return this.#createStatus(repository, r[1]!, body, auth);
      if (method === "GET" && (r = /^collaborators\/([^/]+)\/permission$/.exec(rest))) return this.#permission(repository, decodeURIComponent(r[1]!), auth);
    }
    return notFound();
  }

  #requireJwt(auth: RequestAuth): void {
    if (auth.kind !== "app-jwt") throw fail(401, "A JSON web token could not be decoded");
  }

  /** The token may act on this repository with at least `level` of `permission`. */
  #requireToken(auth: RequestAuth, repository: string, permission: string, level: Level, appOnly = false): void {
    if (auth.kind === "personal-token") {
      if (appOnly) throw fail(403, "You must authenticate via a GitHub App.");
      return;
    }
    if (auth.kind !== "installation-token") throw fail(401, "Requires authentication");
    const installation = this.installations.find((i) => i.id === auth.installationId);
    if (!installation?.repositories.includes(repository) || !auth.repositories.includes(repository)) throw notFound();
    const granted = auth.permissions[permission];
    if (!granted || (level === "write" && granted !== "write")) throw fail(403, "Resource not accessible by integration");
  }

  #repositoryInstallation(repository: string): HttpAnswer {
    const installation = this.installations.find((i) => i.repositories.includes(repository));
    if (!installation) return notFound();
    return new HttpAnswer(200, {
      id: installation.id,
      account: { login: installation.account },
      app_id: this.#options.appId,
      repository_selection: "selected",
      permissions: installation.permissions,
      events: ["push", "pull_request", "check_run", "installation"],
      target_type: "Organization",
    });
  }

  #accessToken(installationId: number, body: unknown): HttpAnswer {
    const installation = this.installations.find((i) => i.id === installationId);
    if (!installation) return notFound();
    const request = (body ?? {}) as { repositories?: string[]; permissions?: StandinPermissions };
    const names = request.repositories ?? installation.repositories.map((r) => r.split("/")[1]!);
    const repositories = names.map((name) => installation.repositories.find((r) => r.split("/")[1] === name));
    if (repositories.some((r) => r === undefined)) {
      return fail(422, "There is at least one repository that does not exist or is not accessible to the parent installation.");
    }
    const requested = request.permissions ?? installation.permissions;
    for (const [name, level] of Object.entries(requested)) {
      const granted = installation.permissions[name];
      if (!granted || (level === "write" && granted !== "write")) {
        return fail(422, "The permissions requested are not granted to this installation.");
      }
    }
    // GitHub adds metadata:read to every installation token.
    const permissions: StandinPermissions = { metadata: "read", ...requested };
    const expiresAt = new Date(Math.floor(this.#now().getTime() / 1000) * 1000 + 3600_000);
    const token = `ghs_${randomBytes(18).toString("base64url")}`;
    this.tokens.push({ token, installationId, repositories: repositories as string[], permissions, expiresAt });
    return new HttpAnswer(201, {
      token,
      expires_at: expiresAt.toISOString().replace(/\.\d{3}Z$/, "Z"),
      permissions,
      repository_selection: "selected",
      repositories: (repositories as string[]).map((full_name, i) => ({ id: i + 1, name: full_name.split("/")[1], full_name })),
    });
  }

  /** The documented limits of a check run's body; GitHub answers 422 for any of them. */
  #validateCheckRun(body: Record<string, unknown>, creating: boolean): void {
    const invalid = (what: string) => {
      throw fail(422, `Invalid request.\n\n${what}`);
    };
    if (creating && (typeof body.name !== "string" || body.name === "")) invalid('"name" wasn\'t supplied.');
    if (creating && (typeof body.head_sha !== "string" || !/^[0-9a-f]{40}$/.test(body.head_sha))) invalid('"head_sha" wasn\'t supplied.');
    if (body.status !== undefined && !["queued", "in_progress", "completed", "waiting", "requested", "pending"].includes(String(body.status))) invalid("status is not included in the list");
    const conclusions = ["action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"];
    if (body.conclusion !== undefined && !conclusions.includes(String(body.conclusion))) invalid("conclusion is not included in the list");
    if (body.status === "completed" && body.conclusion === undefined) invalid('"conclusion" is required when "status" is "completed".');
    if (body.conclusion === "action_required" && body.details_url === undefined) invalid('"details_url" is required when "conclusion" is "action_required".');
    const output = body.output as Record<string, unknown> | undefined;
    if (output !== undefined) {
      if (typeof output.title !== "string" || typeof output.summary !== "string") invalid("output needs a title and a summary.");
      if (String(output.summary).length > 65535) invalid("Only 65535 characters are allowed for the output summary.");
      if (typeof output.text === "string" && output.text.length > 65535) invalid("Only 65535 characters are allowed for the output text.");
      if (Array.isArray(output.annotations) && output.annotations.length > 50) invalid("Only 50 annotations are allowed per request.");
    }
    const actions = body.actions as Array<Record<string, unknown>> | undefined;
    if (actions !== undefined) {
      if (actions.length > 3) invalid("Only 3 actions are allowed.");
      for (const a of actions) {
        if (String(a.label).length > 20 || String(a.description).length > 40 || String(a.identifier).length > 20) invalid("action label, description or identifier is too long");
      }
    }
  }

  #checkRunView(run: StandinCheckRun) {
    return {
      id: run.id,
      head_sha: run.head_sha,
      node_id: `CR_${run.id}`,
      external_id: run.external_id,
      url: `${this.url}/repos/${run.repository}/check-runs/${run.id}`,
      html_url: `https://github.com/${run.repository}/runs/${run.id}`,
      details_url: run.details_url ?? null,
      status: run.status,
      conclusion: run.conclusion,
      started_at: run.started_at,
      completed_at: run.completed_at,
      output: { ...run.output, annotations_count: 0, annotations_url: `${this.url}/repos/${run.repository}/check-runs/${run.id}/annotations` },
      name: run.name,
      check_suite: { id: 1 },
      app: { id: this.#options.appId },
      pull_requests: [],
    };
  }

  #createCheckRun(repository: string, body: unknown, auth: RequestAuth): HttpAnswer {
    this.#requireToken(auth, repository, "checks", "write", true);
    const fields = (body ?? {}) as Record<string, unknown>;
    this.#validateCheckRun(fields, true);
    const sameName = [...this.checkRuns.values()].filter((r) => r.repository === repository && r.head_sha === fields.head_sha && r.name === fields.name);
    if (sameName.length >= 1000) return fail(422, "Invalid request.\n\nA check suite can have at most 1000 check runs with the same name.");
    const output = fields.output as StandinCheckRun["output"] | undefined;
    const run: StandinCheckRun = {
      id: this.#nextId++,
      repository,
      head_sha: String(fields.head_sha),
      name: String(fields.name),
      external_id: String(fields.external_id ?? ""),
      ...(fields.details_url !== undefined ? { details_url: String(fields.details_url) } : {}),
      status: fields.conclusion !== undefined ? "completed" : String(fields.status ?? "queued"),
      conclusion: (fields.conclusion as string | undefined) ?? null,
      started_at: (fields.started_at as string | undefined) ?? null,
      completed_at: (fields.completed_at as string | undefined) ?? (fields.conclusion !== undefined ? this.#now().toISOString() : null),
      output: { title: output?.title ?? null, summary: output?.summary ?? null, text: output?.text ?? null },
      actions: (fields.actions as unknown[] | undefined) ?? [],
      history: [fields],
    };
    this.checkRuns.set(run.id, run);
    return new HttpAnswer(201, this.#checkRunView(run));
  }

  #updateCheckRun(repository: string, id: number, body: unknown, auth: RequestAuth): HttpAnswer {
    this.#requireToken(auth, repository, "checks", "write", true);
    const run = this.checkRuns.get(id);
    if (!run || run.repository !== repository) return notFound();
    const fields = (body ?? {}) as Record<string, unknown>;
    this.#validateCheckRun(fields, false);
    if (fields.name !== undefined) run.name = String(fields.name);
    if (fields.external_id !== undefined) run.external_id = String(fields.external_id);
    if (fields.details_url !== undefined) run.details_url = String(fields.details_url);
    if (fields.status !== undefined) run.status = String(fields.status);
    if (fields.started_at !== undefined) run.started_at = String(fields.started_at);
    if (fields.conclusion !== undefined) {
      run.conclusion = String(fields.conclusion);
      run.status = "completed";
      run.completed_at = (fields.completed_at as string | undefined) ?? this.#now().toISOString();
    }
    const output = fields.output as StandinCheckRun["output"] | undefined;
    if (output) run.output = { title: output.title ?? null, summary: output.summary ?? null, text: output.text ?? null };
    if (fields.actions !== undefined) run.actions = fields.actions as unknown[];
    run.history.push(fields);
    return new HttpAnswer(200, this.#checkRunView(run));
  }

  #listCheckRuns(repository: string, ref: string, query: URLSearchParams, auth: RequestAuth): HttpAnswer {
    this.#requireToken(auth, repository, "checks", "read", true);
    let runs = [...this.checkRuns.values()].filter((r) => r.repository === repository && r.head_sha === ref);
    const name = query.get("check_name");
    if (name) runs = runs.filter((r) => r.name === name);
    if (query.get("filter") !== "all") {
      // "latest": the most recent run of each name.
      const latest = new Map<string, StandinCheckRun>();
      for (const run of runs) latest.set(run.name, run);
      runs = [...latest.values()];
    }
    const perPage = Math.min(100, Number(query.get("per_page") ?? 30));
    return new HttpAnswer(200, { total_count: runs.length, check_runs: runs.slice(0, perPage).map((r) => this.#checkRunView(r)) });
  }

  #createStatus(repository: string, sha: string, body: unknown, auth: RequestAuth): HttpAnswer {
    this.#requireToken(auth, repository, "statuses", "write");
    const fields = (body ?? {}) as Record<string, unknown>;
    if (!["error", "failure", "pending", "success"].includes(String(fields.state))) return fail(422, "Validation Failed", { errors: [{ resource: "Status", field: "state", code: "custom" }] });
    if (typeof fields.description === "string" && fields.description.length > 140) {
      return fail(422, "Validation Failed", { errors: [{ resource: "Status", code: "custom", field: "description", message: "description is too long (maximum is 140 characters)" }] });
    }
    const context = String(fields.context ?? "default");
    if (this.statuses.filter((s) => s.repository === repository && s.sha === sha && s.context === context).length >= 1000) {
      return fail(422, "Validation Failed", { errors: [{ resource: "Status", code: "custom", message: "This SHA and context has reached the maximum number of statuses." }] });
    }
    const status: StandinStatus = {
      id: this.#nextId++,
      repository,
      sha,
      state: String(fields.state),
      description: (fields.description as string | undefined) ?? null,
      target_url: (fields.target_url as string | undefined) ?? null,
      context,
    };
    this.statuses.push(status);
    return new HttpAnswer(201, { ...status, url: `${this.url}/repos/${repository}/statuses/${sha}`, created_at: this.#now().toISOString() });
  }

  #permission(repository: string, login: string, auth: RequestAuth): HttpAnswer {
    this.#requireToken(auth, repository, "metadata", "read");
    const permission = this.#options.collaborators?.[repository]?.[login];
    if (permission === undefined) return fail(404, `${login} is not a user`);
    const role = { admin: "admin", write: "write", read: "read", none: "none" }[permission];
    return new HttpAnswer(200, { permission, role_name: role, user: { login } });
  }
}
