/**
 * How the derivation graph moves when something settles or arrives (docs/architecture.md,
 * "result → settled"). Each function takes what was read and returns what to write; the
 * service's settle flow carries the writes out with conditional updates.
 */
import type { DerivationStatus } from "@nimbus/protocol";
import { readinessOf } from "./readiness.ts";
import { isFailure, isSuccess, shouldRestart } from "./statuses.ts";

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
 * The status a job's registration goes by for an input of the derivation it registers. A
 * failure this job will start over itself counts as pending: when the job rebuilds failures,
 * its evaluation lists the failed input too (inputs come before dependents), and that
 * registration — in another batch handled at the same time, or beside this one in a batch —
 * restarts it; the dependent must not fail on the failure being replaced, or it would stay
 * dependency-failed while its input builds again. Once the job registered the input
 * (`registeredBy`, set by its restart), a failure is the job's own, and final for it.
 */
export function inputStatusFor(
  input: { status: DerivationStatus; registeredBy?: string } | undefined,
  registration: { jobId: string; rebuildFailures: boolean },
): DerivationStatus | undefined {
  if (!input) return undefined;
  const startingOver = registration.rebuildFailures && isFailure(input.status) && input.registeredBy !== registration.jobId;
  return startingOver ? "waiting" : input.status;
}

/**
 * Whether a dependency-failed derivation failed on a dependency that is no longer a failure:
 * started over since (waiting, queued, building) or built. Its failure is stale — it waits for
 * the dependency again (the sweeper's look at a running job's rows, flow/job-repair.ts). A
 * dependency not found, or failed still, keeps it as it is.
 */
export function staleDependencyFailure(
  drv: { status: DerivationStatus; failure?: { dependency?: string } },
  dependencyStatus: DerivationStatus | undefined,
): boolean {
  if (drv.status !== "dependency-failed" || !drv.failure?.dependency || !dependencyStatus) return false;
  return !isFailure(dependencyStatus);
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

/**
 * What an evaluation may do with a part of a split derivation that is already registered
 * and waiting (docs/reliability.md, "What an evaluator may assert"). Only the job that registered
 * it adds parts (`merge`): another evaluation may split the same inputs differently (it lists
 * only what its agent must build). Once every part is in, later parts change nothing
 * (`ignore`). While the registering job still evaluates, its own parts will complete it: the
 * other evaluation's batch is not acknowledged, and comes again (`later`). Once that
 * evaluation is over with parts still missing, this one takes the derivation over and starts
 * its parts from its own (`adopt`).
 */
export function partRegistration(input: {
  registeredBy: string | undefined;
  jobId: string;
  partsMissing: boolean;
  registrarEvaluating: boolean;
}): "merge" | "ignore" | "later" | "adopt" {
  // An item registered before registrations were named is extended as before.
  if (input.registeredBy === input.jobId || input.registeredBy === undefined) return "merge";
  if (!input.partsMissing) return "ignore";
  return input.registrarEvaluating ? "later" : "adopt";
}

/** A derivation's fields its .drv path fixes: every honest evaluation reports the same ones. */
export interface IntrinsicFields {
  system: string;
  requiredFeatures: readonly string[];
  outputs: Readonly<Record<string, string>>;
}

/**
 * How a registration's intrinsic fields differ from those stored (undefined when they agree).
 * The .drv path is a hash of the derivation's content, so two evaluations can only disagree if
 * one of them lied; the stored registration is kept and the disagreement reported. Once a build
 * succeeded, its outputs are what the builder reported (a content-addressed derivation's are
 * only known then): they are no longer compared.
 */
export function intrinsicConflict(stored: IntrinsicFields & { status: DerivationStatus }, claimed: IntrinsicFields): string | undefined {
  const differences: string[] = [];
  if (stored.system !== claimed.system) differences.push(`system ${claimed.system} (registered: ${stored.system})`);
  const features = (f: readonly string[]) => [...new Set(f)].sort().join(",");
  if (features(stored.requiredFeatures) !== features(claimed.requiredFeatures)) {
    differences.push(`required features [${features(claimed.requiredFeatures)}] (registered: [${features(stored.requiredFeatures)}])`);
  }
  const outputs = (o: Readonly<Record<string, string>>) => JSON.stringify(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
  if (!isSuccess(stored.status) && outputs(stored.outputs) !== outputs(claimed.outputs)) differences.push(`outputs ${outputs(claimed.outputs)} (registered: ${outputs(stored.outputs)})`);
  return differences.length ? differences.join("; ") : undefined;
}
