export { ApiClient } from "./api-client.ts";
export { resolveTarget, localAdminToken } from "./target.ts";
