export {
  canBuild,
  capabilitiesOf,
  systemSupported,
  allRequiredFeaturesSupported,
  mandatoryFeaturesMet,
  type BuilderCapabilities,
  type BuildRequirements,
} from "./matching.ts";
export { queueKeyOf, parseQueueKey, buildQueueName } from "./queue-key.ts";
export {
  SETTLED,
  UNSETTLED,
  FAILURES,
  PROPAGATING,
  RESTARTABLE,
  ACTIVE_JOB_STATUSES,
  isSettled,
  isSuccess,
  isFailure,
  isActiveJob,
  shouldRestart,
  canMove,
  movesInto,
  cancelStep,
  type CancelStep,
} from "./statuses.ts";
export { readinessOf, type Readiness } from "./readiness.ts";
export { nextRun, resolveSchedule, scheduleStep } from "./schedule.ts";
export { rowVerdict, mustFailProblem, type VerdictRow, type RowVerdict } from "./attribute-verdict.ts";
export { jobOutcome, jobCheck, isFinalOutcome, type JobProgress, type JobCheck, type EvaluationState } from "./job-outcome.ts";
export {
  dependentMoves,
  isReadyToQueue,
  mayBeReady,
  advanceWaiting,
  inputStatusFor,
  staleDependencyFailure,
  registrationStep,
  partRegistration,
  intrinsicConflict,
  type IntrinsicFields,
  type DependentMove,
  type WaitingState,
  type WaitingStep,
  type RegistrationStep,
} from "./settle.ts";
export {
  afterPage,
  fanOutKeys,
  fanOutPageSize,
  settleContinues,
  DEFAULT_FAN_OUT_PAGE,
  MAX_FAN_OUT_PAGE,
  type FanOutTarget,
  type PageNext,
  type SettledState,
} from "./fan-out.ts";
export {
  edgePage,
  groupDependents,
  groupKey,
  parseEdgePosition,
  EDGE_GROUP_BYTES,
  EDGE_GROUP_DEPENDENTS,
  type EdgePosition,
  type EdgeRowRead,
} from "./edge-groups.ts";
export { isNewerThan, rowsBehind, settleTold, shownStatus, type StatusCopy, type ToldCopy } from "./mirrors.ts";
export { retryDelayMs, retryDecision, type RetryPolicy, type RetryDecision } from "./retry.ts";
export {
  reconcileSession,
  reconcileHeartbeat,
  unlistedTaskAction,
  isAbandonedSlot,
  isOrphanedLease,
  disconnectCheck,
  NO_LONGER_HELD,
  RESERVATION_TIMEOUT_MS,
  type Reconciliation,
  type HeldTask,
  type TaskStanding,
  type SessionPresence,
} from "./session-reconcile.ts";
export {
  reachOf,
  reaches,
  unmetNeeds,
  canObtain,
  buildNeeds,
  minimalNeeds,
  canTake,
  placeBuild,
  takersOf,
  waitingReason,
  type Reach,
  type ReachInfo,
  type Candidate,
  type BuildNeeds,
} from "./obtaining.ts";
export {
  MAX_RECEIVE,
  MAX_WOKEN,
  MAX_SKIPPED,
  nextQueue,
  canTakeWork,
  freeSlots,
  planDispatch,
  startDispatch,
  receiveCount,
  mayStart,
  afterStart,
  planWake,
  type SessionLoad,
  type QueueSource,
  type StartOutcome,
  type DispatchState,
  type NewWork,
} from "./dispatch-plan.ts";
export { statusHistory, buildAttempts, type RecordedMove } from "./history.ts";
export {
  planResends,
  quietJobAction,
  evaluationHandBack,
  MAX_RESENDS_PER_SWEEP,
  SWEEP_STEPS,
  SWEEP_SHARES,
  sweepDeadlines,
  settledLookFrom,
  SETTLE_SHOWS_WITHIN_MS,
  type SweepStep,
  type StaleWork,
  type QuietJob,
  type QuietJobAction,
  type EvaluationHandBack,
} from "./sweep-plan.ts";
export {
  MAX_BATCHES_AHEAD,
  NO_BATCHES_SEEN,
  compactBatches,
  isBatchSeen,
  batchesSeenCount,
  noteBatch,
  type BatchesSeen,
  type BatchNote,
} from "./evaluation-batches.ts";
export {
  CAPABILITY_SHARDS,
  capabilityClassOf,
  capabilityKey,
  capabilityKeysOf,
  classesServing,
  classesToWake,
  shardOf,
  type CapabilityClass,
} from "./capability-class.ts";
export { ASK_AGAIN_MARGIN_MS, askAgainAfter, believedFull, hasFreeSlot } from "./full-classes.ts";
export { shuffled } from "./shuffle.ts";
export {
  HAND_OVERS_PER_RESULT,
  LOOK_AGAIN_AFTER_MS,
  handOverSlots,
  mayHandOver,
  mayHoldWork,
  type HandOverSession,
  type HandOverState,
  type QueueLook,
} from "./hand-over.ts";
export { foldAcks } from "./result-acks.ts";
export { outputClaims, publishedReport } from "./output-publication.ts";
export {
  builtInputOf,
  keptOnItem,
  inputsAtHand,
  taskInputs,
  buildStartOf,
  BUILT_INPUT_BYTES,
  BUILD_START_BYTES,
  INPUTS_BUDGET_BYTES,
  type BuiltInput,
  type InputsOnHand,
  type BuildStart,
} from "./build-start.ts";
