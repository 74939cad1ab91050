import {createHash, randomBytes} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {basename, dirname, posix} from 'node:path'

import type {SFTPWrapper} from 'ssh2'

import {RemoteError} from './errors.js'
import type {UploadOptions, UploadResult} from './host.js'
import {DigestMismatch, placeVia, type RawRun, removeVia, sha256Via, sweepStaleVia} from './shell-files.js'
import type {SudoAbility} from './sudo.js'

/**
 * Upload a file by SFTP so that the real name only ever holds a whole, checked file: the bytes go to a
 * temp name (beside the target, or in a staging directory of the login user when the target needs
 * root), are copied beside the target as root when needed, and in the same remote command that renames
 * the copy into place its sha256 is checked first (so neither a broken transfer nor a change to the
 * login user's staging file between the check and the move can put other bytes in place). Temp names
 * are unique per upload, so two runs never write into one; a temp file of a run killed mid-upload is
 * removed by a later upload of the same target once nobody has written to it for two minutes. A
 * target that already has the digest is left alone.
 */

/**
 * Transfer tuning, measured with scripts/bench/upload.sh against scp: OpenSSH's sftp-server takes
 * writes up to 255 KiB, and enough writes in flight hide the round trip.
 */
export const UPLOAD_CHUNK_SIZE = 255 * 1024
export const UPLOAD_CONCURRENCY = 16

/** A temp file nobody has written to for this long belongs to a run that is gone. */
export const STALE_UPLOAD_MINUTES = 2

export interface UploadTarget {
  /** Host name, for messages. */
  readonly host: string
  readonly run: RawRun
  readonly sftp: () => Promise<SFTPWrapper>
  readonly ability: () => Promise<SudoAbility>
  /**
   * Settles with a reason when the transfer must end: the connection was lost (ssh2's fastPut waits
   * forever for answers to requests sent into a dead connection) or the upload's deadline passed.
   */
  readonly closed: Promise<string>
}

export async function sftpUpload(
  target: UploadTarget,
  localPath: string,
  path: string,
  options: UploadOptions,
): Promise<UploadResult> {
  // The local digest and the one there are computed at the same time.
  const [{size}, sha256, there, ability] = await Promise.all([
    stat(localPath),
    options.sha256 ?? fileSha256(localPath),
    options.sha256There === undefined ? sha256Via(target.run, path, options.sudo) : (options.sha256There ?? undefined),
    target.ability(),
  ])
  const sudo = options.sudo === true && ability !== 'root'
  if (there === sha256) {
    // Already there; only mode and owner may need putting right.
    await placeAttributes(target.run, path, options)
    options.onProgress?.(size, size)
    return {skipped: true, bytes: size, sha256}
  }
  const tag = `${sha256.slice(0, 12)}.${randomBytes(4).toString('hex')}`
  // A non-root user cannot write beside a root-owned target, so the bytes are staged in its home
  // (SFTP and the shell both start there) and copied into place as root.
  const [dir, name] = sudo
    ? ['.cache/hybrid/uploads', `${basename(path)}.*.part`]
    : [dirname(path), `.${basename(path)}.*.hybrid-upload`]
  const temp = posix.join(dir, name.replace('*', tag))
  if (sudo) await target.run(['mkdir', '-p', '-m', '700', '--', dir])
  await sweepStaleVia(target.run, dir, name, STALE_UPLOAD_MINUTES)
  const sftp = await target.sftp()
  const lost = target.closed.then((reason) => {
    throw new Error(reason)
  })
  const sent = options.contents
    ? options.contents().then((data) => putBytes(sftp, data, temp, options.onProgress))
    : put(sftp, localPath, temp, size, options.onProgress)
  await Promise.race([sent, lost]).catch((error: Error) => {
    throw new RemoteError(
      'UPLOAD_FAILED',
      `${target.host}: uploading ${basename(localPath)} to ${path} broke off: ${error.message}`,
      target.host,
    )
  })
  try {
    await placeVia(target.run, temp, path, {...options, sameDir: !sudo, sha256})
  } catch (error) {
    if (!(error instanceof DigestMismatch)) throw error
    throw new RemoteError(
      'UPLOAD_FAILED',
      `${target.host}: ${path} arrived with sha256 ${error.actual ?? 'unknown'} instead of ${sha256}; nothing was put in place, run again`,
      target.host,
    )
  } finally {
    if (sudo) await removeVia(target.run, temp)
  }
  return {skipped: false, bytes: size, sha256}
}

function put(
  sftp: SFTPWrapper,
  localPath: string,
  remotePath: string,
  size: number,
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    sftp.fastPut(
      localPath,
      remotePath,
      {
        concurrency: UPLOAD_CONCURRENCY,
        chunkSize: UPLOAD_CHUNK_SIZE,
        mode: 0o600,
        step: (done) => onProgress?.(done, size),
      },
      (error) => (error ? reject(error) : resolve()),
    )
  })
}

/**
 * The bytes of a file already in memory, written as fastPut writes a file (UPLOAD_CONCURRENCY writes of
 * UPLOAD_CHUNK_SIZE in flight), straight from the one buffer: no read from disk per host.
 */
function putBytes(
  sftp: SFTPWrapper,
  data: Buffer,
  remotePath: string,
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    sftp.open(remotePath, 'w', {mode: 0o600}, (openError, handle) => {
      if (openError) return reject(openError)
      let next = 0
      let done = 0
      let inFlight = 0
      let failed: Error | undefined
      const finish = (error?: Error) =>
        sftp.close(handle, (closeError?: Error | null) => {
          const failure = error ?? closeError
          if (failure) reject(failure)
          else resolve()
        })
      const pump = () => {
        while (!failed && inFlight < UPLOAD_CONCURRENCY && next < data.length) {
          const [offset, length] = [next, Math.min(UPLOAD_CHUNK_SIZE, data.length - next)]
          next += length
          inFlight++
          sftp.write(handle, data, offset, length, offset, (error) => {
            inFlight--
            if (error && !failed) failed = error
            if (failed) return inFlight === 0 ? finish(failed) : undefined
            done += length
            onProgress?.(done, data.length)
            if (done === data.length) return finish()
            pump()
          })
        }
      }
      if (data.length === 0) return finish()
      pump()
    })
  })
}

async function placeAttributes(run: RawRun, path: string, options: UploadOptions): Promise<void> {
  const program = 'set -e; chmod "$2" "$1"; [ -z "$3" ] || chown "$3" "$1"'
  await run(['sh', '-c', program, 'sh', path, (options.mode & 0o7777).toString(8), options.owner ?? ''], {
    sudo: options.sudo,
  })
}

export function fileSha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')))
  })
}
