/** SQS locally: fauxqs, in memory (queues are recreated by whoever needs them). */
import { buildApp } from "fauxqs";

export interface SqsServer {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

export async function startSqs(options: { host: string; port: number }): Promise<SqsServer> {
  // buildApp rather than startFauxqs: startFauxqs always binds 0.0.0.0, which would put an
  // unauthenticated queue service on the network. Queue URLs follow the request's Host header.
  const app = buildApp({ logger: false, defaultRegion: "us-east-1" });
  const address = await app.listen({ port: options.port, host: options.host });
  const port = Number(new URL(address).port);
  return {
    endpoint: `http://${options.host}:${port}`,
    port,
    stop: () => app.close(),
  };
}
