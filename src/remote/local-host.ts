import {randomBytes} from 'node:crypto'
import {chmod, copyFile, lstat, mkdir, readFile, rename, rm} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

import {execa} from 'execa'

import {writeFileAtomic} from '../util/fs-atomic.js'
import {RemoteError} from './errors.js'
import type {FileStat, Host, RunOptions, UploadOptions, UploadResult, WriteOptions} from './host.js'
import {fileSha256} from './sftp-upload.js'
import {CommandHost} from './command-host.js'
import {DEFAULT_REMOTE_LIMITS} from './limits.js'
import {placeVia, type RawResult, readFileVia, statVia, writeFileVia} from './shell-files.js'
import type {SudoMode} from './sudo.js'

/**
 * The sandbox's own machine as a Host: node:fs and child processes directly. When a step asks for
 * root and this process is not root, the same quoted shell programs as over SSH run under sudo.
 */
export class LocalHost extends CommandHost implements Host {
  constructor(private readonly options: {name?: string; sudo?: SudoMode; env?: NodeJS.ProcessEnv} = {}) {
    super(options.name ?? 'local', {
      mode: options.sudo ?? 'auto',
      user: process.env.USER ?? 'this user',
      env: options.env,
    })
  }

  async readFile(path: string, options: {sudo?: boolean} = {}): Promise<Buffer | undefined> {
    if (await this.needsSudo(options.sudo)) return this.files(() => readFileVia(this.raw, path, true))
    try {
      return await readFile(path)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new RemoteError(
        'REMOTE_COMMAND_FAILED',
        `${this.name}: cannot read ${path}: ${(error as Error).message}`,
        this.name,
      )
    }
  }

  async writeFile(path: string, data: string | Uint8Array, options: WriteOptions): Promise<void> {
    if (await this.needsSudo(options.sudo)) return this.files(() => writeFileVia(this.raw, path, data, options))
    await writeFileAtomic(path, data, options.mode)
    if (options.owner) await this.check(['chown', options.owner, path])
  }

  async upload(localPath: string, path: string, options: UploadOptions): Promise<UploadResult> {
    const sha256 = await fileSha256(localPath)
    const size = (await lstat(localPath)).size
    const existing = await this.stat(path)
    if (existing?.type === 'file' && (await fileSha256(path).catch(() => undefined)) === sha256) {
      options.onProgress?.(size, size)
      return {skipped: true, bytes: size, sha256}
    }
    if (await this.needsSudo(options.sudo)) {
      await this.files(() => placeVia(this.raw, localPath, path, {...options, sameDir: false, sha256}))
    } else {
      // The same shape as over SSH: a temp name beside the target, mode and owner, then rename.
      const temp = join(
        dirname(path),
        `.${basename(path)}.${sha256.slice(0, 12)}.${randomBytes(4).toString('hex')}.hybrid-upload`,
      )
      await mkdir(dirname(path), {recursive: true})
      try {
        await copyFile(localPath, temp)
        await chmod(temp, options.mode)
        if (options.owner) await this.check(['chown', options.owner, temp])
        await rename(temp, path)
      } catch (error) {
        await rm(temp, {force: true})
        throw error
      }
    }
    options.onProgress?.(size, size)
    return {skipped: false, bytes: size, sha256}
  }

  async stat(path: string, options: {sudo?: boolean} = {}): Promise<FileStat | undefined> {
    if (await this.needsSudo(options.sudo)) return this.files(() => statVia(this.raw, path, true))
    try {
      const s = await lstat(path)
      const type = s.isFile() ? 'file' : s.isDirectory() ? 'directory' : s.isSymbolicLink() ? 'symlink' : 'other'
      return {type, size: s.size, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid}
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw error
    }
  }

  async close(): Promise<void> {}

  protected async spawn(
    argv: readonly string[],
    input: Uint8Array | undefined,
    options: Pick<RunOptions, 'timeoutSeconds' | 'lifeline'>,
  ): Promise<RawResult> {
    const seconds = options.timeoutSeconds ?? DEFAULT_REMOTE_LIMITS.commandTimeoutSeconds
    const cap = DEFAULT_REMOTE_LIMITS.outputLimitBytes
    const lifeline = options.lifeline === true
    const subprocess = execa(argv[0], argv.slice(1), {
      input: lifeline ? undefined : input,
      stdin: lifeline ? 'pipe' : input === undefined ? 'ignore' : undefined,
      reject: false,
      encoding: 'buffer',
      stripFinalNewline: false,
      env: this.options.env,
      timeout: seconds * 1000,
      maxBuffer: cap,
    })
    if (lifeline) {
      // Held open until the program exits; if this process dies first, the pipe's end tells the program.
      if (input !== undefined) subprocess.stdin?.write(input)
      subprocess.on('exit', () => subprocess.stdin?.end())
    }
    const result = await subprocess
    if (result.timedOut)
      throw new RemoteError(
        'REMOTE_COMMAND_TIMEOUT',
        `${this.name}: ${argv[0]} did not finish within ${seconds}s, so it was stopped`,
        this.name,
      )
    if (result.isMaxBuffer)
      throw new RemoteError(
        'REMOTE_OUTPUT_LIMIT',
        `${this.name}: ${argv[0]} printed more than ${cap} bytes, so it was stopped`,
        this.name,
      )
    if (result.failed && result.exitCode === undefined && !result.signal)
      throw new RemoteError(
        'REMOTE_COMMAND_FAILED',
        `${this.name}: cannot run ${argv[0]}: ${result.shortMessage}`,
        this.name,
      )
    return {
      exitCode: result.exitCode ?? null,
      signal: result.signal ?? undefined,
      stdout: Buffer.from(result.stdout),
      stderr: Buffer.from(result.stderr).toString(),
    }
  }
}
