/**
 * Remote commands travel as one string that the login shell on the worker parses, so every argument
 * is quoted for a POSIX shell here, from an argument array, and nothing a user wrote (labels, paths,
 * values) is ever pasted into a command line unquoted.
 */

/** Characters that no POSIX shell treats specially, in any position. */
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/

/**
 * `arg` as one shell word: as it is when every character is safe, else in single quotes (inside which
 * only `'` itself needs care: close, an escaped quote, reopen). Newlines, `$()`, backquotes and
 * globs are literal inside single quotes.
 */
export function quoteArg(arg: string): string {
  if (arg.includes('\0'))
    throw new Error('an argument of a remote command contains a NUL byte, which no command line can carry')
  if (arg === '') return "''"
  if (SAFE.test(arg)) return arg
  return `'${arg.replace(/'/g, `'\\''`)}'`
}

/** A command line that runs exactly `argv` (argv[0] the program), each argument quoted. */
export function commandLine(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('a remote command needs at least the program name')
  return argv.map(quoteArg).join(' ')
}
