/**
 * Condition expressions written without grouping parentheses. DynamoDB's precedence (NOT, then
 * AND, then OR) makes them unnecessary, and dynalite, the local DynamoDB, parses a group by
 * backtracking: each level of nesting multiplied its parse time by two to four — a job row's
 * copy condition, three groups deep, took ~6 ms of dynalite's one thread on every build.
 */

/** Terms that must all hold: `a AND b`. A term holding OR would need a group: write it with `anyOf`. */
export function allOf(...terms: readonly string[]): string {
  const grouped = terms.find((term) => /\bOR\b/.test(term));
  if (grouped !== undefined) throw new Error(`condition term "${grouped}" holds OR: inside AND it needs a group, so write the condition with anyOf`);
  return terms.join(" AND ");
}

/** Alternatives, each terms that must all hold: `anyOf([a, b], [c])` is `a AND b OR c`. */
export const anyOf = (...alternatives: readonly (readonly string[])[]): string => alternatives.map((terms) => allOf(...terms)).join(" OR ");
