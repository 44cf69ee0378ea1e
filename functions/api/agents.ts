import type { AgentList } from "@nimbus/protocol";
import { apiHandler, json, listAgents } from "@nimbus/service";

/** `GET /api/agents`: connected agents with what they can build, how busy they are and what they run. */
export const handler = apiHandler(async () => {
  const body: AgentList = { agents: await listAgents() };
  return json(200, body);
});
