import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {basename, dirname, posix} from 'node:path'

import type {SFTPWrapper} from 'ssh2'

import {RemoteError} from './errors.js'
import type {UploadOptions, UploadResult} from './host.js'
import {placeVia, type RawRun, removeVia, sha256Via} from './shell-files.js'
import type {SudoAbility} from './sudo.js'

/**
 * Upload a file by SFTP so that the real name only ever holds a whole, checked file: the bytes go to a
 * temp name (beside the target, or in a staging directory of the login user when the target needs
 * root), the host computes its sha256 (sha256sum) and compares, and only then is it renamed into
 * place. The temp name is fixed per target and digest, so a run killed mid-upload leaves only that temp
 * file, and the next run writes it again whole and completes the upload. A target that already has the
 * digest is left alone.
 */

/**
 * Transfer tuning, measured with scripts/bench/upload.sh against scp: OpenSSH's sftp-server takes
 * writes up to 255 KiB, and enough writes in flight hide the round trip.
 */
export const UPLOAD_CHUNK_SIZE = 255 * 1024
export const UPLOAD_CONCURRENCY = 16

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
  const tag = sha256.slice(0, 12)
  // A non-root user cannot write beside a root-owned target, so the bytes are staged in its home
  // (SFTP and the shell both start there) and copied into place as root.
  const temp = sudo
    ? `.cache/hybrid/uploads/${basename(path)}.${tag}.part`
    : posix.join(dirname(path), `.${basename(path)}.${tag}.hybrid-upload`)
  if (sudo) await target.run(['mkdir', '-p', '-m', '700', '--', posix.dirname(temp)])
  const sftp = await target.sftp()
  const lost = target.closed.then((reason) => {
    throw new Error(reason)
  })
  await Promise.race([put(sftp, localPath, temp, size, options.onProgress), lost]).catch((error: Error) => {
    throw new RemoteError(
      'UPLOAD_FAILED',
      `${target.host}: uploading ${basename(localPath)} to ${path} broke off: ${error.message}`,
      target.host,
    )
  })
  const arrived = await sha256Via(target.run, temp)
  if (arrived !== sha256) {
    await removeVia(target.run, temp)
    throw new RemoteError(
      'UPLOAD_FAILED',
      `${target.host}: ${path} arrived with sha256 ${arrived ?? 'unknown'} instead of ${sha256}; nothing was put in place, run again`,
      target.host,
    )
  }
  await placeVia(target.run, temp, path, {...options, sameDir: !sudo})
  if (sudo) await removeVia(target.run, temp)
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
