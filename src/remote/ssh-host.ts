import type {Client, SFTPWrapper} from 'ssh2'

import {CommandHost} from './command-host.js'
import {RemoteError} from './errors.js'
import type {FileStat, Host, UploadOptions, UploadResult, WriteOptions} from './host.js'
import type {HostKeyStatus} from './host-key-policy.js'
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
}

export class SshHost extends CommandHost implements Host {
  /** How the host key was accepted when the connection was made. */
  readonly hostKey: HostKeyStatus
  private sftpSession?: Promise<SFTPWrapper>
  private channels = 0
  private readonly waiting: Array<() => void> = []
  /** Retries waiting for any channel to end. */
  private readonly released: Array<() => void> = []
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
    return this.files(() =>
      sftpUpload(
        {
          host: this.name,
          run: this.raw,
          sftp: () => this.sftp(),
          closed: this.closed,
          ability: async () => (await this.privilege()).ability,
        },
        localPath,
        path,
        options,
      ),
    )
  }

  close(): Promise<void> {
    this.lost ??= 'the host was closed'
    this.client.end()
    return Promise.resolve()
  }

  protected async spawn(argv: readonly string[], stdin: Uint8Array | undefined): Promise<RawResult> {
    const line = commandLine(argv)
    for (;;) {
      await this.acquire()
      try {
        return await this.channel(line, stdin, argv[0])
      } catch (error) {
        // sshd frees a session slot a moment after the client sees the channel close, and an admin may
        // set MaxSessions lower than ours: when a channel is refused while others are open, wait for one
        // of them to end and try again.
        if (!(error instanceof ChannelRefused)) throw error
        if (this.channels <= 1) throw error.error
      } finally {
        this.release()
      }
      await new Promise<void>((resolve) => this.released.push(resolve))
    }
  }

  private channel(line: string, stdin: Uint8Array | undefined, program: string): Promise<RawResult> {
    return new Promise((resolve, reject) => {
      if (this.lost) {
        reject(this.connectionLost(program))
        return
      }
      this.client.exec(line, (error, stream) => {
        if (error) {
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
        stream.on('data', (chunk: Buffer) => out.push(chunk))
        stream.stderr.on('data', (chunk: Buffer) => err.push(chunk))
        stream.on('exit', (code: number | null, signalName?: string) => {
          exited = true
          exitCode = code
          signal = signalName ?? undefined
        })
        stream.on('close', () => {
          if (!exited && this.lost) {
            reject(this.connectionLost(program))
            return
          }
          resolve({exitCode, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString()})
        })
        if (stdin !== undefined) stream.write(stdin)
        stream.end()
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

  private acquire(): Promise<void> {
    if (this.channels < MAX_CHANNELS) {
      this.channels++
      return Promise.resolve()
    }
    return new Promise((resolve) => this.waiting.push(resolve))
  }

  private release(): void {
    const next = this.waiting.shift()
    if (next) next()
    else this.channels--
    for (const wake of this.released.splice(0)) wake()
  }
}

/** sshd would not open a channel (MaxSessions reached); carries the error to report if no retry helps. */
class ChannelRefused extends Error {
  constructor(readonly error: RemoteError) {
    super(error.message)
  }
}
