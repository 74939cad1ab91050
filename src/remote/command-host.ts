import {RemoteError} from './errors.js'
import {gatherFacts, type HostFacts} from './facts.js'
import type {FactsOptions, RunOptions, RunResult} from './host.js'
import {type RawResult, ShellFileError} from './shell-files.js'
import {asRoot, resolveSudo, type SudoMode, type SudoResolution} from './sudo.js'

/**
 * What LocalHost and SshHost share: commands with sudo applied the worker's way, `check`, the sudo
 * probe and the facts, each done once. A subclass only says how a command is started.
 */
export abstract class CommandHost {
  private sudoResolution?: Promise<SudoResolution>
  private readonly factsCache = new Map<string, Promise<HostFacts>>()

  constructor(
    readonly name: string,
    private readonly sudo: {readonly mode: SudoMode; readonly user: string; readonly env?: NodeJS.ProcessEnv},
  ) {}

  /**
   * Start `argv` as it is (sudo already applied), `stdin` written first (and held open under `lifeline`);
   * stop it and fail with a sentence when it outlives `timeoutSeconds` (else the host's limit) or prints
   * more than the host's output limit.
   */
  protected abstract spawn(
    argv: readonly string[],
    stdin: Uint8Array | undefined,
    options: Pick<RunOptions, 'timeoutSeconds' | 'lifeline'>,
  ): Promise<RawResult>

  async run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const result = await this.raw(argv, options)
    return {...result, stdout: result.stdout.toString()}
  }

  async check(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const result = await this.run(argv, options)
    if (result.exitCode === 0) return result
    const why = result.stderr.trim().split('\n').pop() || `exit ${result.exitCode ?? result.signal}`
    throw new RemoteError('REMOTE_COMMAND_FAILED', `${this.name}: ${argv[0]} failed: ${why}`, this.name)
  }

  /** How the login user becomes root; probed once. */
  privilege(): Promise<SudoResolution> {
    this.sudoResolution ??= resolveSudo(
      this.sudo.mode,
      this.sudo.user,
      (argv, options) => this.run(argv, {...options, sudo: false}),
      this.sudo.env,
    )
    return this.sudoResolution
  }

  facts(options: FactsOptions): Promise<HostFacts> {
    const key = `${options.advertiseAddress ?? ''}:${options.apiPort ?? ''}`
    let facts = this.factsCache.get(key)
    if (!facts) {
      facts = this.privilege().then((sudo) => gatherFacts(this, sudo, options))
      this.factsCache.set(key, facts)
    }
    return facts
  }

  /** The runner the shell programs use: raw stdout, sudo applied (the password line first on stdin). */
  protected readonly raw = async (argv: readonly string[], options: RunOptions = {}): Promise<RawResult> => {
    if (!options.sudo)
      return this.spawn(argv, options.stdin === undefined ? undefined : Buffer.from(options.stdin), options)
    const sudo = await this.privilege()
    if (sudo.ability === 'none') throw new RemoteError('SUDO_UNAVAILABLE', `${this.name}: ${sudo.reason}`, this.name)
    const root = asRoot(argv, sudo.ability, this.sudo.env)
    const stdin =
      root.stdinPrefix === undefined && options.stdin === undefined
        ? undefined
        : Buffer.concat([Buffer.from(root.stdinPrefix ?? ''), Buffer.from(options.stdin ?? '')])
    return this.spawn(root.argv, stdin, options)
  }

  /** Does a sudo step need sudo here (not when logged in as root)? */
  protected async needsSudo(sudo: boolean | undefined): Promise<boolean> {
    return sudo === true && (await this.privilege()).ability !== 'root'
  }

  /** Run a file operation; a shell program's failure becomes a RemoteError naming this host. */
  protected async files<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation()
    } catch (error) {
      if (error instanceof ShellFileError)
        throw new RemoteError('REMOTE_COMMAND_FAILED', `${this.name}: ${error.message}`, this.name)
      throw error
    }
  }
}
