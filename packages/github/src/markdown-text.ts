/**
 * Text from a repository (attribute names, error messages, build logs) shown in GitHub
 * Markdown: it must read as the same characters, never as markup, a mention or a table break.
 */

/** ANSI escape sequences (colours, cursor moves) that build logs are full of. */
const ANSI = /\u001b(?:\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001b]*(?:\u0007|\u001b\\)|[@-Z\\-_])/g;
/** Control characters other than tab. */
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/g;
/** CommonMark lets a backslash escape any ASCII punctuation; escaping all of it leaves nothing to interpret. */
const PUNCTUATION = /[!-/:-@[-`{-~]/g;

/** One line of plain text, safe in a table cell or a paragraph. */
export function markdownText(text: string): string {
  return text
    .replace(ANSI, "")
    .replace(/\r\n?|\n/g, " ")
    .replace(CONTROL, "")
    .replace(PUNCTUATION, (c) => `\\${c}`);
}

/** At most `max` characters, with an ellipsis when cut (cut before escaping, so escapes stay whole). */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, Math.max(0, max - 1))}…`;
}

/**
 * A block of text in a fenced code block. The fence is longer than any backtick run inside,
 * so nothing in the text can close it.
 */
export function codeBlock(text: string): string {
  const clean = text.replace(ANSI, "").replace(/\r\n?/g, "\n").replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, "");
  const longestRun = Math.max(2, ...[...clean.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = "`".repeat(longestRun + 1);
  return `${fence}\n${clean}\n${fence}`;
}

/** An attribute path as Nix writes it, quoting names that are not plain identifiers. */
export function attributePathText(path: readonly string[]): string {
  return path.map((name) => (/^[A-Za-z_][A-Za-z0-9_'-]*$/.test(name) ? name : JSON.stringify(name))).join(".");
}

/** `[text](url)` with the text escaped and the characters that would end the link percent-encoded. */
export function markdownLink(text: string, url: string): string {
  const target = url.replace(/[()<>\s\\]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
  return `[${markdownText(text)}](${target})`;
}
