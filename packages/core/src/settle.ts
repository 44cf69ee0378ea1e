/**
 * How the derivation graph moves when something settles or arrives (docs/architecture.md,
 * "result → settled"). Each function takes what was read and returns what to write; the
 * service's settle flow carries the writes out with conditional updates.
 */
import type { DerivationStatus } from "@nimbus/protocol";
import { readinessOf } from "./readiness.ts";
import { isSuccess, shouldRestart } from "./statuses.ts";

/** What a settled derivation does to one dependent. */
export type DependentMove =
  /** Its input has outputs: take it off the dependent's pending set, then queue the dependent if nothing is left. */
  | { type: "clear-input"; dependent: string; input: string }
  /** Its input failed: it will never build. */
  | { type: "fail-dependent"; dependent: string; dependency: string };

export function dependentMoves(settled: { drvPath: string; status: DerivationStatus }, dependents: readonly string[]): DependentMove[] {
  return dependents.map((dependent) =>
    isSuccess(settled.status)
      ? { type: "clear-input", dependent, input: settled.drvPath }
      : { type: "fail-dependent", dependent, dependency: settled.drvPath },
  );
}

/** What readiness needs to know of a derivation item: its status and the parts of its event still to come. */
export interface WaitingState {
  status: DerivationStatus;
  pendingParts?: ReadonlySet<string>;
}

/** Whether looking for pending inputs is worth a read: it waits, and every part of its event is in. */
export const mayBeReady = (drv: WaitingState): boolean => drv.status === "waiting" && !drv.pendingParts?.size;

/** A waiting derivation goes on its queue once nothing is pending: no input without outputs, no part still to come. */
export const isReadyToQueue = (drv: WaitingState, hasPendingInputs: boolean): boolean => mayBeReady(drv) && !hasPendingInputs;

/** What a waiting derivation's inputs say: fail it, or clear the inputs that already have outputs. */
export type WaitingStep = { type: "fail"; dependency: string } | { type: "clear"; inputs: string[] };

export function advanceWaiting(inputs: readonly string[], statusOf: (drv: string) => DerivationStatus | undefined): WaitingStep {
  const readiness = readinessOf(inputs, statusOf);
  if (readiness.kind === "dependency-failed") return { type: "fail", dependency: readiness.dependency };
  return { type: "clear", inputs: inputs.filter((input) => isSuccess(statusOf(input) ?? "waiting")) };
}

/**
 * What registering a derivation an evaluation found does to the one already stored:
 * `restart` a cancellation (or a failure, when a rebuild was asked for); `merge-part` a further
 * part of a split event into the waiting item; `keep` anything else as it is.
 */
export type RegistrationStep = "restart" | "merge-part" | "keep";

export function registrationStep(input: {
  /** This registration created the item (it did not exist). */
  created: boolean;
  status: DerivationStatus | undefined;
  rebuildFailures: boolean;
  /** The event is one part of a derivation split over several events. */
  part: boolean;
}): RegistrationStep {
  if (input.status && shouldRestart(input.status, input.rebuildFailures)) return "restart";
  if (!input.created && input.status === "waiting" && input.part) return "merge-part";
  return "keep";
}
