import {constants} from 'node:os'

import type {Logger} from '../log/logger.js'
import {writeStderr} from '../log/terminal.js'

/**
 * SIGINT (and SIGTERM) for long commands (docs/architecture.md, "Secrets and signals"). The first one aborts the returned signal: the
 * plan starts no new work, lets the host steps in flight finish, and cleans up. A second one exits at
 * once with 128 + the signal's number (130 for SIGINT).
 */

export interface InterruptOptions {
  /** Where the two messages go (default: plain lines on stderr). */
  logger?: Logger
  /** Default SIGINT and SIGTERM. */
  signals?: readonly NodeJS.Signals[]
  /** Last words on the second signal before exiting (e.g. kill a child process group hard). */
  onForceExit?: (signal: NodeJS.Signals) => void
}

export interface Interrupts {
  /** Aborted on the first signal; its reason is an AbortError naming the signal. */
  readonly signal: AbortSignal
  /** Remove the handlers (the signals' default behaviour comes back). */
  dispose(): void
}

export function handleInterrupts(options: InterruptOptions = {}): Interrupts {
  const controller = new AbortController()
  const signals = options.signals ?? ['SIGINT', 'SIGTERM']
  const say = (message: string) => (options.logger ? options.logger.warn(message) : writeStderr(`hybrid: ${message}\n`))

  const onSignal = (signal: NodeJS.Signals): void => {
    if (!controller.signal.aborted) {
      say(
        `${signal}: finishing the steps in flight, then cleaning up (${signal === 'SIGINT' ? 'press Ctrl-C' : `send ${signal}`} again to exit now)`,
      )
      const reason = new Error(`interrupted by ${signal}`)
      reason.name = 'AbortError'
      controller.abort(reason)
      return
    }
    say(`${signal} again: exiting now without cleaning up`)
    try {
      options.onForceExit?.(signal)
    } finally {
      process.exit(128 + (constants.signals[signal] ?? 2))
    }
  }

  for (const s of signals) process.on(s, onSignal)
  return {
    signal: controller.signal,
    dispose() {
      for (const s of signals) process.off(s, onSignal)
    },
  }
}
