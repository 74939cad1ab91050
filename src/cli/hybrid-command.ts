import {Command, Errors, Flags, type Interfaces} from '@oclif/core'

import {HybridError, messageOf} from '../errors.js'
import {createLogger, type LogFormat, type Logger} from '../log/logger.js'
import {redactString} from '../log/redact.js'

export type HybridFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof HybridCommand)['baseFlags'] & T['flags']
>

/**
 * The base of every command: the shared flags, the logger, and the one place where errors become a
 * sentence and an exit code. Commands stay thin: parse, run a plan, return what `--json` prints.
 */
export abstract class HybridCommand extends Command {
  static override enableJsonFlag = true
  static override baseFlags = {
    'log-format': Flags.option({
      description: 'format of log lines on stderr (json is the default with --json)',
      options: ['pretty', 'json'] as const,
      helpGroup: 'GLOBAL',
    })(),
    'log-level': Flags.option({
      description: 'least severe log level shown',
      options: ['debug', 'info', 'warn', 'error'] as const,
      default: 'info',
      helpGroup: 'GLOBAL',
    })(),
  }

  private loggerInstance?: Logger

  /** Pino, configured from the shared flags; created on first use. */
  protected get logger(): Logger {
    if (!this.loggerInstance) {
      const argv = this.argv
      const json = argv.includes('--json')
      const formatFlag =
        argv.find((a) => a.startsWith('--log-format='))?.split('=')[1] ?? argv[argv.indexOf('--log-format') + 1]
      const format: LogFormat = formatFlag === 'json' || formatFlag === 'pretty' ? formatFlag : json ? 'json' : 'pretty'
      const levelFlag =
        argv.find((a) => a.startsWith('--log-level='))?.split('=')[1] ?? argv[argv.indexOf('--log-level') + 1]
      this.loggerInstance = createLogger({
        format,
        level: levelFlag && !levelFlag.startsWith('-') ? levelFlag : 'info',
        command: this.id ?? 'hybrid',
        file: this.writesLogFile,
      })
    }
    return this.loggerInstance
  }

  /** Every command keeps the JSON log file under the state directory; one that must not, opts out. */
  protected get writesLogFile(): boolean {
    return true
  }

  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (error instanceof Errors.ExitError) throw error
    if (error instanceof HybridError) {
      const message = redactString(error.message)
      const details = error.details.map((line) => redactString(line))
      if (this.jsonEnabled()) {
        // An inventory error carries its problems with positions: give them to JSON readers as data.
        const problems = 'problems' in error ? (error as {problems: unknown}).problems : undefined
        this.logJson({error: {message, details, exitCode: error.exitCode, ...(problems ? {problems} : {})}})
      } else {
        process.stderr.write(`hybrid: ${message}\n`)
        for (const line of details) process.stderr.write(`  ${line}\n`)
      }
      this.exit(error.exitCode)
    }
    // oclif's own parse errors (unknown flag, missing argument) are bad usage: exit 2, one sentence.
    if (error instanceof Errors.CLIError && !(error instanceof Errors.ExitError)) {
      const oclifExit = (error as Errors.CLIError).oclif?.exit
      process.stderr.write(`hybrid: ${redactString(usageSentence(messageOf(error)))} (see --help)\n`)
      this.exit(typeof oclifExit === 'number' && oclifExit !== 1 ? oclifExit : 2)
    }
    if (error instanceof Errors.ExitError) throw error
    // Anything else is a defect in hybrid: still one sentence; the stack goes to the debug log only.
    this.logger.debug({err: error}, 'unexpected error')
    process.stderr.write(
      `hybrid: unexpected error: ${redactString(messageOf(error))} (this is a bug; the log file has the stack)\n`,
    )
    return this.exit(1)
  }
}

/** oclif's parse errors span lines ("Missing 1 required arg:\nfile  the inventory\nSee more help…"): one line. */
function usageSentence(message: string): string {
  return message
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && line !== 'The following error occurred:' && !line.startsWith('See more help'))
    .join(' ')
}
