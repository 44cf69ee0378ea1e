/** Task ids that name what they are about, so a report finds its target without a lookup. */

/** An evaluation's task id names its job. */
export const evaluationTaskId = (jobId: string) => `eval-${jobId}`;
