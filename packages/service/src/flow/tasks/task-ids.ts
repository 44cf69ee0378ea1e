/** Task ids that name what they are about, so a report finds its target without a lookup. */

/**
 * An evaluation's task id names its job and its attempt (`eval-<job>` first, `eval-<job>.<n>`
 * after n hand-backs), so what an earlier holder still sends never counts for a later attempt.
 */
export const evaluationTaskId = (jobId: string, retries = 0) => `eval-${jobId}${retries ? `.${retries}` : ""}`;
