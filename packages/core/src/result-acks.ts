/**
 * Folded acknowledgements (docs/protocol.md, `build`): a result's `result-ack` rides on the next
 * `build` the service sends the agent that reported it, which the agent treats as that
 * `result-ack` — one gateway post where there were two. Pure: the service's build-result flow
 * owes the ack (flow/result-acks.ts) and sends it alone when no build carried it.
 */
import { MAX_FOLDED_ACKS, type ServiceMessage } from "@nimbus/protocol";

/**
 * `task` carrying `owed` (results of the agent it goes to, already recorded) when it is a
 * `build`, with whatever it acknowledged already; `folded`: the ids it now carries of `owed`.
 * Other tasks, and a build that cannot carry more, go unchanged: those acks go alone.
 */
export function foldAcks(task: ServiceMessage, owed: readonly string[]): { message: ServiceMessage; folded: string[] } {
  if (task.type !== "build" || owed.length === 0) return { message: task, folded: [] };
  const acks = [...new Set([...(task.acks ?? []), ...owed])];
  if (acks.length > MAX_FOLDED_ACKS) return { message: task, folded: [] };
  return { message: { ...task, acks }, folded: [...new Set(owed)] };
}
