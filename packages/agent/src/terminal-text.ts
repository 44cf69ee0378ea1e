/**
 * Text that came from repositories or agents (build logs, evaluation errors, host names), made
 * safe to print on a terminal: a log line must not move the cursor, retitle the window, write
 * the clipboard or hide what follows. Colours (SGR) are dropped; every other control character
 * is shown escaped, `\x1b` style.
 */

/** SGR sequences (colours, bold…): they carry no text. */
const SGR = /\u001b\[[0-9;:]*m/g;
/** C0 controls, DEL, C1 controls, and the bidirectional overrides that reorder what is shown. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function escape(char: string): string {
  const code = char.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** One line: every control character escaped but tab (newlines too). */
export function printable(text: string): string {
  return text.replace(SGR, "").replace(CONTROL, (char) => (char === "\t" ? char : escape(char)));
}

/** Several lines: as `printable`, keeping the newlines (and tabs). */
export function printableLines(text: string): string {
  return text.replace(SGR, "").replace(CONTROL, (char) => (char === "\n" || char === "\t" ? char : escape(char)));
}
