/**
 * Errors a user can act on. Commands print `message` as one sentence (never a stack trace) and exit
 * with `exitCode`: 1 failed, 2 bad usage or bad inventory, 3 partly done (DESIGN.md §1).
 */
export class HybridError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 | 3 = 1,
    readonly details: string[] = [],
  ) {
    super(message)
    this.name = 'HybridError'
  }
}

/** Bad flags, bad arguments, a bad file given on the command line: exit 2. */
export class UsageError extends HybridError {
  constructor(message: string, details: string[] = []) {
    super(message, 2, details)
    this.name = 'UsageError'
  }
}

/** A message for any thrown value, for the one-sentence error line. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message
  return String(error)
}
