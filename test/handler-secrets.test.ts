/**
 * Each function is linked only to the secrets it reads (docs/deploy.md): the JSON API's to the
 * admin token, those that talk to GitHub to the GitHub secrets, the rest to none.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  agentSocket,
  githubHandlers,
  githubSecrets,
  handlerSecrets,
  httpApi,
  queues,
  schedules,
  secrets,
  type QueueSpec,
} from "../packages/service/src/platform/resource-specs.ts";

const declared = [
  ...Object.values(agentSocket.routes),
  ...httpApi.routes.map((r) => r.handler),
  ...Object.values(schedules).map((s) => s.handler),
  ...Object.values<QueueSpec>(queues).flatMap((q) => (q.consumer ? [q.consumer.handler] : [])),
];

test("the webhook gets the GitHub secrets and not the admin token; the agents' socket only what reporting needs", () => {
  assert.deepEqual(handlerSecrets("functions/webhooks/github.handler").sort(), [...githubSecrets].sort());
  assert.deepEqual(handlerSecrets("functions/socket/default.handler").sort(), [...githubSecrets, "CachePublicKey"].sort());
  assert.deepEqual(handlerSecrets("functions/socket/connect.handler"), []);
  assert.deepEqual(handlerSecrets("functions/socket/disconnect.handler"), []);
  assert.deepEqual(handlerSecrets("functions/api/service-info.handler"), []);
  assert.deepEqual(handlerSecrets("functions/api/tokens-create.handler"), ["ApiAdminToken"]);
  assert.deepEqual(handlerSecrets("functions/api/jobs-rerun.handler").sort(), ["ApiAdminToken", ...githubSecrets].sort());
  assert.deepEqual(handlerSecrets("functions/sweeper.handler").sort(), [...githubSecrets].sort());
  // Ending a lost agent's session may fail a build for good, and its job: GitHub hears of it.
  assert.deepEqual(handlerSecrets("functions/queues/disconnect-checks.handler").sort(), [...githubSecrets].sort());
});

test("only the handler that serves narinfos holds the built-in cache's signing key; cache routes hold no admin token", () => {
  assert.deepEqual(handlerSecrets("functions/cache/narinfo.handler"), ["CacheSigningKey"]);
  for (const handler of ["functions/cache/nar.handler", "functions/cache/missing.handler", "functions/cache/nix-cache-info.handler"]) {
    assert.deepEqual(handlerSecrets(handler), [], handler);
  }
  assert.deepEqual(handlerSecrets("functions/api/cache-info.handler").sort(), ["ApiAdminToken", "CachePublicKey"]);
  const signers = declared.filter((handler) => handlerSecrets(handler).includes("CacheSigningKey"));
  assert.deepEqual(signers, ["functions/cache/narinfo.handler"]);
});

test("every handler that talks to GitHub is a declared one, and every secret a handler gets is declared", () => {
  for (const handler of githubHandlers) assert.ok(declared.includes(handler), `${handler} is not a route, schedule or queue consumer`);
  for (const handler of declared) for (const secret of handlerSecrets(handler)) assert.ok((secrets as readonly string[]).includes(secret), `${handler}: ${secret}`);
});
