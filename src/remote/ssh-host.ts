import type {Client, ClientChannel, SFTPWrapper} from 'ssh2'

import {ChannelSlots} from './channel-slots.js'
import {CommandHost} from './command-host.js'
import {RemoteError} from './errors.js'
import {type HeldCommand, holdCommand} from './held-command.js'
import type {FileStat, Host, RunOptions, UploadOptions, UploadResult, WriteOptions} from './host.js'
import type {HostKeyStatus} from './host-key-policy.js'
import {DEFAULT_REMOTE_LIMITS, type RemoteLimits} from './limits.js'
import {commandLine} from './quote.js'
import {sftpUpload} from './sftp-upload.js'
import {type RawResult, readFileVia, statVia, writeFileVia} from './shell-files.js'
import type {SudoMode} from './sudo.js'

/**
 * A worker over one SSH connection, which every step shares: commands run in channels of that
 * connection (a few at once, below sshd's MaxSessions of 10), files go through the same quoted shell
 * programs or one SFTP session.
 */

/** Channels open at once on one connection (OpenSSH's MaxSessions defaults to 10). */
const MAX_CHANNELS = 8

export interface SshHostOptions {
  readonly name: string
  readonly user: string
  readonly sudo: SudoMode
  readonly hostKey: HostKeyStatus
  readonly env?: NodeJS.ProcessEnv
  /** Deadlines and the output cap (default DEFAULT_REMOTE_LIMITS). */
  readonly limits?: RemoteLimits
}

export class SshHost extends CommandHost implements Host {
  /** How the host key was accepted when the connection was made. */
  readonly hostKey: HostKeyStatus
  private sftpSession?: Promise<SFTPWrapper>
  private readonly slots = new ChannelSlots(MAX_CHANNELS)
  private lost?: string
  /** Settles with the reason when the connection is gone (SFTP requests in flight are never answered then). */
  private readonly closed: Promise<string>

  constructor(
    private readonly client: Client,
    private readonly options: SshHostOptions,
  ) {
    super(options.name, {mode: options.sudo, user: options.user, env: options.env})
    this.hostKey = options.hostKey
    this.closed = new Promise((resolve) => {
      client.on('close', () => {
        this.lost ??= 'the connection closed'
        resolve(this.lost)
      })
    })
    client.on('error', (error: Error) => {
      this.lost = error.message
    })
  }

  readFile(path: string, options: {sudo?: boolean} = {}): Promise<Buffer | undefined> {
    return this.files(() => readFileVia(this.raw, path, options.sudo))
  }

  writeFile(path: string, data: string | Uint8Array, options: WriteOptions): Promise<void> {
    return this.files(() => writeFileVia(this.raw, path, data, options))
  }

  stat(path: string, options: {sudo?: boolean} = {}): Promise<FileStat | undefined> {
    return this.files(() => statVia(this.raw, path, options.sudo))
  }

  upload(localPath: string, path: string, options: UploadOptions): Promise<UploadResult> {
    const seconds = this.limits.uploadTimeoutSeconds
    let timer: NodeJS.Timeout | undefined
    // A transfer past its deadline ends like one on a lost connection; its SFTP session, which may still
    // hold requests sshd never answers, is ended too, so the next upload starts on a fresh one.
    const late = new Promise<string>((resolve) => {
      timer = setTimeout(() => {
        void this.sftpSession?.then(
          (sftp) => sftp.end(),
          () => undefined,
        )
        this.sftpSession = undefined
        resolve(`it did not finish within ${seconds}s (ssh.uploadTimeoutSeconds)`)
      }, seconds * 1000)
    })
    return this.files(() =>
      sftpUpload(
        {
          host: this.name,
          run: this.raw,
          sftp: () => this.sftp(),
          closed: Promise.race([this.closed.then((reason) => `the SSH connection was lost (${reason})`), late]),
          ability: async () => (await this.privilege()).ability,
        },
        localPath,
        path,
        options,
      ),
    ).finally(() => clearTimeout(timer))
  }

  /** Start `argv` as the login user, `stdin` written and the input held open until stop() (held-command.ts). */
  hold(argv: readonly string[], stdin: string): Promise<HeldCommand> {
    if (this.lost) return Promise.reject(this.connectionLost(argv[0]))
    return holdCommand(this.client, this.name, commandLine(argv), argv[0], stdin, this.limits.commandTimeoutSeconds)
  }

  /** The connection is gone (closed, or failed): nothing more runs through it. */
  get isLost(): boolean {
    return this.lost !== undefined
  }

  close(): Promise<void> {
    this.lost ??= 'the host was closed'
    this.client.end()
    return Promise.resolve()
  }

  private get limits(): RemoteLimits {
    return this.options.limits ?? DEFAULT_REMOTE_LIMITS
  }

  protected async spawn(
    argv: readonly string[],
    stdin: Uint8Array | undefined,
    options: Pick<RunOptions, 'timeoutSeconds' | 'lifeline'>,
  ): Promise<RawResult> {
    const line = commandLine(argv)
    // The deadline covers the wait for a channel too: a host whose every channel hangs fails in time.
    const deadline = Date.now() + (options.timeoutSeconds ?? this.limits.commandTimeoutSeconds) * 1000
    for (;;) {
      await this.slots.acquire()
      try {
        return await this.channel(line, stdin, argv[0], deadline, options.lifeline === true)
      } catch (error) {
        // sshd frees a session slot a moment after the client sees the channel close, and an admin may
        // set MaxSessions lower than ours: when a channel is refused while others are open, wait for one
        // of them to end and try again.
        if (!(error instanceof ChannelRefused)) throw error
        if (this.slots.inUse <= 1) throw error.error
      } finally {
        this.slots.release()
      }
      await this.slots.nextRelease()
    }
  }

  private channel(
    line: string,
    stdin: Uint8Array | undefined,
    program: string,
    deadline: number,
    lifeline: boolean,
  ): Promise<RawResult> {
    return new Promise((resolve, reject) => {
      if (this.lost) {
        reject(this.connectionLost(program))
        return
      }
      let stream: ClientChannel | undefined
      let over = false
      // Past the deadline or the output cap the command is stopped (a KILL signal, for a sshd that takes
      // it, then the channel closed) and the caller gets its sentence at once, whatever sshd does next.
      const stop = (error: RemoteError) => {
        if (over) return
        over = true
        clearTimeout(timer)
        reject(error)
        if (stream) end(stream)
      }
      const seconds = Math.max(0, Math.round((deadline - Date.now()) / 1000))
      const timer = setTimeout(
        () =>
          stop(
            new RemoteError(
              'REMOTE_COMMAND_TIMEOUT',
              `${this.name}: ${program} did not finish within ${seconds}s (ssh.commandTimeoutSeconds), so it was stopped; is the worker's login or disk hanging?`,
              this.name,
            ),
          ),
        Math.max(0, deadline - Date.now()),
      )
      const cap = this.limits.outputLimitBytes
      let printed = 0
      const count = (chunk: Buffer, into: Buffer[]) => {
        if (over) return
        printed += chunk.length
        if (printed > cap)
          stop(
            new RemoteError(
              'REMOTE_OUTPUT_LIMIT',
              `${this.name}: ${program} printed more than ${cap} bytes (ssh.outputLimitBytes), so it was stopped`,
              this.name,
            ),
          )
        else into.push(chunk)
      }
      this.client.exec(line, (error, channel) => {
        if (over) {
          if (!error) end(channel)
          return
        }
        stream = channel
        if (error) {
          clearTimeout(timer)
          reject(
            this.lost
              ? this.connectionLost(program)
              : new ChannelRefused(
                  new RemoteError(
                    'REMOTE_COMMAND_FAILED',
                    `${this.name}: sshd refused to run ${program}: ${error.message}`,
                    this.name,
                  ),
                ),
          )
          return
        }
        const out: Buffer[] = []
        const err: Buffer[] = []
        let exitCode: number | null = null
        let signal: string | undefined
        let exited = false
        channel.on('data', (chunk: Buffer) => count(chunk, out))
        channel.stderr.on('data', (chunk: Buffer) => count(chunk, err))
        channel.on('exit', (code: number | null, signalName?: string) => {
          exited = true
          if (lifeline) channel.end()
          exitCode = code
          signal = signalName ?? undefined
        })
        channel.on('close', () => {
          clearTimeout(timer)
          if (over) return
          over = true
          if (!exited && this.lost) {
            reject(this.connectionLost(program))
            return
          }
          resolve({exitCode, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString()})
        })
        if (stdin !== undefined) channel.write(stdin)
        if (!lifeline) channel.end()
      })
    })
  }

  private connectionLost(program: string): RemoteError {
    return new RemoteError(
      'SSH_CONNECTION_LOST',
      `${this.name}: the SSH connection was lost (${this.lost}) while running ${program}`,
      this.name,
    )
  }

  private sftp(): Promise<SFTPWrapper> {
    this.sftpSession ??= new Promise<SFTPWrapper>((resolve, reject) => {
      this.client.sftp((error, sftp) => {
        if (error) {
          this.sftpSession = undefined
          reject(
            new RemoteError(
              'REMOTE_COMMAND_FAILED',
              `${this.name}: sshd would not start SFTP: ${error.message}`,
              this.name,
            ),
          )
        } else resolve(sftp)
      })
    })
    return this.sftpSession
  }
}

/** Stop a command: KILL for a sshd that takes signals (OpenSSH ≥ 7.9), then close the channel either way. */
function end(channel: ClientChannel): void {
  try {
    channel.signal('KILL')
  } catch {
    // the channel is already closing
  }
  channel.close()
}

/** sshd would not open a channel (MaxSessions reached); carries the error to report if no retry helps. */
class ChannelRefused extends Error {
  constructor(readonly error: RemoteError) {
    super(error.message)
  }
}
