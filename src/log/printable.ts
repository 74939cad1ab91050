/**
 * Text from elsewhere (a worker's command output, its facts, a proxy's or an API's answer) made safe for
 * a terminal and a log (docs/architecture.md, "Trust and failure model"): every C0 control character but
 * line feed and tab, DEL, and every C1 control character is written as `\xNN`, so no escape sequence
 * (a window title, a screen clear, a cursor move) reaches the terminal as one.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}
