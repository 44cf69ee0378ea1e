import { NIMBUS_VERSION, PROTOCOL_VERSION, type ServiceInfo } from "@nimbus/protocol";
import { agentSocketUrl, apiHandler, json } from "@nimbus/service";

/** `GET /api/service-info` (no auth): agents find the WebSocket here, as Hercules agents do. */
export const handler = apiHandler(
  async () => {
    const info: ServiceInfo = {
      serviceVersion: NIMBUS_VERSION,
      protocolVersion: PROTOCOL_VERSION,
      agentSocketUrl: agentSocketUrl(),
    };
    return json(200, info);
  },
  { public: true },
);
