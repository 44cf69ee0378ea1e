/**
 * A private git repository over HTTPS, as GitHub serves one: git's "dumb" HTTP protocol (the
 * bare repository's files) behind basic auth, with a self-signed certificate made by openssl.
 * Every request is recorded with the credentials it carried, so a test can say which token
 * fetched it.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, stat } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, normalize } from "node:path";

export interface GitRequest {
  path: string;
  /** `user:password` of the basic auth it carried, if any. */
  credentials?: string;
  status: number;
}

export interface PrivateGitServer {
  /** `https://127.0.0.1:PORT/<repository>.git` */
  cloneUrl: string;
  /** The certificate git must trust (GIT_SSL_CAINFO). */
  caFile: string;
  requests: GitRequest[];
  close(): Promise<void>;
}

function requireTool(tool: string, why: string): void {
  try {
    execFileSync(tool, ["version"], { stdio: "ignore" });
  } catch {
    throw new Error(`${tool} is needed ${why}: install it (Debian: apt-get install -y ${tool})`);
  }
}

/**
 * Serves the repository at `source` (a work tree) as `/<repository>.git`, answering 401 unless
 * `authorized(user, password)` says yes.
 */
export async function startPrivateGitServer(source: string, repository: string, authorized: (user: string, password: string) => boolean): Promise<PrivateGitServer> {
  requireTool("openssl", "to make the test's TLS certificate");
  const dir = await mkdtemp(join(tmpdir(), "nimbus-private-git-"));
  const bare = join(dir, "repo.git");
  execFileSync("git", ["clone", "--quiet", "--bare", source, bare]);
  // The dumb protocol reads info/refs and objects/info/packs, which this writes.
  execFileSync("git", ["-C", bare, "update-server-info"]);
  const key = join(dir, "key.pem");
  const cert = join(dir, "cert.pem");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
  ], { stdio: "ignore" });

  const requests: GitRequest[] = [];
  const prefix = `/${repository}.git/`;
  const server: Server = createServer({ key: await readFile(key), cert: await readFile(cert) }, async (req, res) => {
    const path = new URL(req.url ?? "/", "https://git").pathname;
    const header = req.headers.authorization ?? "";
    const credentials = header.startsWith("Basic ") ? Buffer.from(header.slice(6), "base64").toString("utf8") : undefined;
    const answer = (status: number, body?: Buffer) => {
      requests.push({ path, ...(credentials !== undefined ? { credentials } : {}), status });
      res.writeHead(status, status === 401 ? { "www-authenticate": 'Basic realm="GitHub"' } : {});
      res.end(body);
    };
    const [user = "", ...rest] = (credentials ?? "").split(":");
    if (credentials === undefined || !authorized(user, rest.join(":"))) return answer(401);
    const relative = normalize(path.slice(prefix.length));
    if (!path.startsWith(prefix) || relative.startsWith("..")) return answer(404);
    const file = join(bare, relative);
    try {
      if (!(await stat(file)).isFile()) return answer(404);
      answer(200, await readFile(file));
    } catch {
      answer(404);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    cloneUrl: `https://127.0.0.1:${port}/${repository}.git`,
    caFile: cert,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
