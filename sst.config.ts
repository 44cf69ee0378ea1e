/// <reference path="./.sst/platform/config.d.ts" />
import type { QueueSpec, TableSpec } from "./packages/service/src/platform/resource-specs.ts";

/**
 * Every AWS resource Nimbus uses, built from the one declaration in
 * packages/service/src/platform/resource-specs.ts (the local runtime reads the same file), so
 * AWS and `nimbus dev` cannot drift apart. Deploy with `npx sst deploy --stage <name>` (docs/deploy.md).
 */
export default $config({
  app(input) {
    return {
      name: "nimbus",
      // Production keeps its DynamoDB tables (its data) even if the stage or a table is removed.
      removal: input?.stage === "production" ? "retain" : "remove",
      // `sst remove --stage production` refuses to run: one typo must not delete the service.
      protect: input?.stage === "production",
      home: "aws",
    };
  },
  async run() {
    // SST's convention: project code loads in run(); app() is evaluated alone, before providers exist.
    const { tables, queues, secrets, githubSecrets, handlerSecrets, agentSocket, httpApi, schedules, buildQueuePrefix, deployEnvironmentNames, cacheBucket } =
      await import("./packages/service/src/platform/resource-specs.ts");
    const { SECURITY_HEADERS } = await import("./packages/dashboard/node/page-headers.ts");
    // Set in the shell that deploys: where reports link to, another GitHub API (docs/github.md),
    // the timing knobs (docs/reliability.md), the built-in cache's retention (docs/cache.md).
    const deployEnvironment = Object.fromEntries(deployEnvironmentNames.flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : [])));

    // Applies to every function, including any a later route or schedule adds.
    $transform(sst.aws.Function, (args) => {
      args.runtime ??= "nodejs22.x"; // the oldest non-deprecated Node runtime; tests bundle for node22
      args.architecture ??= "arm64"; // cheaper per GB-second than x86_64, same Node code
      args.memory ??= "512 MB"; // more memory = more CPU; handlers are I/O bound, 512 keeps cold starts short
      args.environment = { ...deployEnvironment, ...args.environment };
      // Build queues are created on first use, one per (system, features): grant exactly those
      // names — added to what the function has (a queue subscriber's receive and delete). The
      // sweeper weighs a queue's depth (GetQueueAttributes) before sending anything again.
      const buildQueues = {
        actions: [
          "sqs:CreateQueue",
          "sqs:GetQueueUrl",
          "sqs:GetQueueAttributes",
          "sqs:SendMessage",
          "sqs:ReceiveMessage",
          "sqs:DeleteMessage",
          "sqs:ChangeMessageVisibility",
        ],
        resources: [`arn:aws:sqs:*:*:${buildQueuePrefix($app.name, $app.stage)}*`],
      };
      args.permissions = $util.output(args.permissions ?? []).apply((granted) => [...granted, buildQueues]);
    });

    const tableResources = Object.entries<TableSpec>(tables).map(
      ([name, spec]) =>
        new sst.aws.Dynamo(name, {
          fields: spec.fields,
          primaryIndex: spec.primaryIndex,
          globalIndexes: spec.globalIndexes,
          ttl: spec.ttl,
        }),
    );

    const queueResources = Object.entries<QueueSpec>(queues).map(([name, spec]) => ({
      spec,
      queue: new sst.aws.Queue(name, { fifo: spec.fifo, visibilityTimeout: `${spec.visibilityTimeoutSeconds} seconds` }),
    }));

    // The GitHub ones the user may leave unset (token mode, or no reporting): `none` means unset,
    // so `sst deploy` need not stop for them; the webhook secret and admin token must be set.
    const secretResources = Object.fromEntries(
      secrets.map((name) => [name, new sst.Secret(name, (githubSecrets as readonly string[]).includes(name) && name !== "GithubWebhookSecret" ? "none" : undefined)]),
    );

    // The built-in cache's NAR files (docs/cache.md). Private: readers get presigned URLs from
    // the handlers, which the link grants read and write access to it.
    const bucket = new sst.aws.Bucket(cacheBucket.name);

    // Created before any route so each handler can link to the API it posts to: the link both
    // sets Resource.AgentSocket.{url,managementEndpoint} and grants execute-api:ManageConnections.
    const socket = new sst.aws.ApiGatewayWebSocket(agentSocket.name);
    const api = new sst.aws.ApiGatewayV2(httpApi.name);

    // Every handler sees every table, queue and API (handlers are thin, and the local runtime does
    // the same), but only the secrets it reads (docs/security.md).
    const shared = [...tableResources, ...queueResources.map((q) => q.queue), socket, api, bucket];
    const link = (handler: string) => [...shared, ...handlerSecrets(handler).map((name) => secretResources[name]!)];

    // API Gateway's integration timeout is 29 s; stop earlier so the handler, not the gateway, answers.
    const apiTimeout = "25 seconds" as const;

    // $connect checks the join token itself (answers 401), so no authorizer is attached.
    for (const [route, handler] of Object.entries(agentSocket.routes)) {
      socket.route(route, { handler, link: link(handler), timeout: apiTimeout });
    }

    for (const { route, handler } of httpApi.routes) {
      api.route(route, { handler, link: link(handler), timeout: apiTimeout });
    }

    // Queues with a consumer: an event source mapping delivers their messages, and the handler
    // answers with the ones that failed (partial batch responses), so only those come back.
    for (const { spec, queue } of queueResources) {
      if (!spec.consumer) continue;
      queue.subscribe(
        // Well under the queue's visibility timeout, as Lambda requires of an SQS event source.
        { handler: spec.consumer.handler, link: link(spec.consumer.handler), timeout: "30 seconds" },
        { batch: { size: spec.consumer.batchSize, partialResponses: true } },
      );
    }

    for (const [name, { handler, rate }] of Object.entries(schedules)) {
      new sst.aws.CronV2(name, {
        schedule: rate,
        // Under the 1-minute period, so one sweep finishes before the next starts.
        function: { handler, link: link(handler), timeout: "50 seconds" },
      });
    }

    // One origin for the dashboard and the API, which its SameSite=Strict session cookie needs
    // (docs/deploy.md): CloudFront sends /api and /webhooks to the HTTP API (uncached, with the
    // X-Forwarded-Host it adds, which the API's Origin check reads) and everything else to the site.
    const router = new sst.aws.Router("Web");
    router.route("/api", api.url);
    router.route("/webhooks", api.url);
    const headers = Object.entries(SECURITY_HEADERS)
      .map(([name, value]) => `event.response.headers[${JSON.stringify(name)}] = { value: ${JSON.stringify(value)} };`)
      .join("\n");
    new sst.aws.StaticSite("Dashboard", {
      path: "packages/dashboard",
      build: { command: "npm run build", output: "dist" },
      // No errorPage: a path with no file gets index.html, and the app routes in the browser.
      router: { instance: router },
      edge: { viewerResponse: { injection: headers } },
    });

    return {
      // The dashboard, and from now on the URL for agents' `apiBaseUrl` and the CLI's `--api`.
      dashboardUrl: router.url,
      // The API Gateway URL itself (agents and the CLI may use it too; the dashboard's cookie needs dashboardUrl).
      httpApiUrl: api.url,
      // What GET /api/service-info hands to agents.
      agentSocketUrl: socket.url,
      // Where the built-in cache's NAR files are.
      cacheBucket: bucket.name,
    };
  },
});
