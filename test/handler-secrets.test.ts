/**
 * Each function is linked only to the secrets it reads (docs/deploy.md): the JSON API's to the
 * admin token, those that talk to GitHub to the GitHub secrets, the rest to none.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { agentSocket, githubHandlers, githubSecrets, handlerSecrets, httpApi, schedules, secrets } from "../packages/service/src/platform/resource-specs.ts";

const declared = [...Object.values(agentSocket.routes), ...httpApi.routes.map((r) => r.handler), ...Object.values(schedules).map((s) => s.handler)];

test("the webhook gets the GitHub secrets and not the admin token; the agents' socket only what reporting needs", () => {
  assert.deepEqual(handlerSecrets("functions/webhooks/github.handler").sort(), [...githubSecrets].sort());
  assert.deepEqual(handlerSecrets("functions/socket/default.handler").sort(), [...githubSecrets].sort());
  assert.deepEqual(handlerSecrets("functions/socket/connect.handler"), []);
  assert.deepEqual(handlerSecrets("functions/socket/disconnect.handler"), []);
  assert.deepEqual(handlerSecrets("functions/api/service-info.handler"), []);
  assert.deepEqual(handlerSecrets("functions/api/tokens-create.handler"), ["ApiAdminToken"]);
  assert.deepEqual(handlerSecrets("functions/api/jobs-rerun.handler").sort(), ["ApiAdminToken", ...githubSecrets].sort());
  assert.deepEqual(handlerSecrets("functions/sweeper.handler").sort(), [...githubSecrets].sort());
});

test("every handler that talks to GitHub is a declared one, and every secret a handler gets is declared", () => {
  for (const handler of githubHandlers) assert.ok(declared.includes(handler), `${handler} is not a route or schedule`);
  for (const handler of declared) for (const secret of handlerSecrets(handler)) assert.ok((secrets as readonly string[]).includes(secret), `${handler}: ${secret}`);
});
