export { ApiClient } from "./api-client.ts";
export { resolveTarget, localAdminToken } from "./target.ts";
export { postGithubWebhook, pushPayload, sendSignedPush, type PushDescription } from "./github-push.ts";
