import type { DerivationStatus } from "@nimbus/protocol";
import { isFailure, isSuccess } from "./statuses.ts";

export type Readiness =
  | { kind: "ready" }
  | { kind: "waiting"; pending: string[] }
  | { kind: "dependency-failed"; dependency: string };

/**
 * What a derivation's inputs say about it: a failed input dooms it, all inputs with outputs
 * make it ready, else it waits for the rest. Unknown inputs (not registered yet) are pending.
 */
export function readinessOf(inputs: readonly string[], statusOf: (drv: string) => DerivationStatus | undefined): Readiness {
  const pending: string[] = [];
  for (const input of inputs) {
    const status = statusOf(input);
    if (status && isFailure(status)) return { kind: "dependency-failed", dependency: input };
    if (!status || !isSuccess(status)) pending.push(input);
  }
  return pending.length === 0 ? { kind: "ready" } : { kind: "waiting", pending };
}
