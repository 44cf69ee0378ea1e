import { apiHandler, receiveGithubWebhook } from "@nimbus/service";

/**
 * `POST /webhooks/github`: a signed push or pull_request starts a job (once per delivery);
 * other events are acknowledged and ignored. Authenticated by signature, not bearer token.
 */
export const handler = apiHandler((event) => receiveGithubWebhook(event), { public: true });
