import {Command, Errors, Flags, type Interfaces} from '@oclif/core'

import type {ActionEnv} from '../actions/context.js'
import {HybridError, messageOf} from '../errors.js'
import {createLogger, type LogFormat, type Logger} from '../log/logger.js'
import {printable} from '../log/printable.js'
import {redactString, redactValue} from '../log/redact.js'
import {handleInterrupts, type Interrupts, type Progress} from '../plan/index.js'
import {SUDO_PASSWORD_ENV} from '../remote/sudo.js'
import {createProgress, progressMode} from '../ui/index.js'
import {takeSecretEnv} from '../util/secret-env.js'

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

  override async init(): Promise<void> {
    // Read once and taken out of the environment, so that no child of hybrid inherits the sudo password.
    takeSecretEnv(SUDO_PASSWORD_ENV)
    await super.init()
  }

  /** --log-format as given, else json under --json, else pretty. */
  protected get logFormat(): LogFormat {
    const argv = this.argv
    const formatFlag =
      argv.find((a) => a.startsWith('--log-format='))?.split('=')[1] ?? argv[argv.indexOf('--log-format') + 1]
    if (formatFlag === 'json' || formatFlag === 'pretty') return formatFlag
    return argv.includes('--json') ? 'json' : 'pretty'
  }

  /** Pino, configured from the shared flags; created on first use. */
  protected get logger(): Logger {
    if (!this.loggerInstance) {
      const argv = this.argv
      const format = this.logFormat
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

  /**
   * Progress for a long command: JSON events under --json; rows redrawn on a terminal; plain lines where
   * stderr is not a terminal, TERM is dumb, or --log-format json asks for machine-readable logs.
   */
  protected createProgress(): Progress {
    const mode = progressMode({
      json: this.jsonEnabled(),
      logFormat: this.logFormat,
      stderrIsTTY: process.stderr.isTTY === true,
      term: process.env.TERM,
    })
    return createProgress({mode, logger: this.logger})
  }

  /**
   * What an action needs from the command: logger, progress, and the signal the first Ctrl-C aborts (a
   * second one exits at once, after `onForceExit`). Dispose the returned interrupts when done.
   */
  protected actionEnv(
    options: {onForceExit?: () => void; waitSeconds?: number} = {},
  ): ActionEnv & {interrupts: Interrupts} {
    const interrupts = handleInterrupts({logger: this.logger, onForceExit: options.onForceExit})
    // The run lock names the run by its subcommand and arguments (flags and file names: no secret is an argument).
    const command = [(this.id ?? 'hybrid').replace(/:/g, ' '), ...this.argv].join(' ').slice(0, 200)
    const run = {command, waitSeconds: options.waitSeconds ?? 0}
    return {logger: this.logger, progress: this.createProgress(), signal: interrupts.signal, interrupts, run}
  }

  /** What a command prints on stdout (tables, summaries) carries text from workers: control characters escaped. */
  override log(message = '', ...args: unknown[]): void {
    super.log(printable(message), ...args)
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
        // The error's own JSON document (an inventory error adds its problems with positions), redacted;
        // the sentence still goes to stderr for the person watching.
        this.logJson(redactValue(error.jsonDocument()))
        process.stderr.write(`hybrid: ${message}\n`)
      } else {
        process.stderr.write(`hybrid: ${message}\n`)
        for (const line of details) process.stderr.write(`  ${line}\n`)
      }
      this.exit(error.exitCode)
    }
    // oclif's own parse errors (unknown flag, missing argument) are bad usage: exit 2, one sentence.
    if (error instanceof Errors.CLIError && !(error instanceof Errors.ExitError)) {
      const oclifExit = error.oclif?.exit
      const exitCode = typeof oclifExit === 'number' && oclifExit !== 1 ? oclifExit : 2
      const message = redactString(usageSentence(messageOf(error)))
      if (this.jsonEnabled()) this.logJson({error: {code: 'USAGE', message, exitCode, details: []}})
      else process.stderr.write(`hybrid: ${message} (see --help)\n`)
      this.exit(exitCode)
    }
    if (error instanceof Errors.ExitError) throw error
    // Anything else is a defect in hybrid: still one sentence; the stack goes to the debug log only.
    this.logger.debug({err: error}, 'unexpected error')
    if (this.jsonEnabled()) {
      const message = `unexpected error: ${redactString(messageOf(error))}`
      this.logJson({error: {code: 'INTERNAL', message, exitCode: 1, details: []}})
      return this.exit(1)
    }
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
