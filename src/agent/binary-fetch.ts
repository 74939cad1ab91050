import {randomBytes} from 'node:crypto'
import {basename, dirname, posix} from 'node:path'

import {RemoteError} from '../remote/errors.js'
import type {Host, RunOptions} from '../remote/host.js'
import {STALE_UPLOAD_MINUTES} from '../remote/sftp-upload.js'
import {DigestMismatch, placeVia, type RawRun, removeVia, sweepStaleVia} from '../remote/shell-files.js'
import {WORKER_PATHS} from './worker-paths.js'

/**
 * The k3s binary fetched by the worker itself (from a peer, or from the release) rather than sent by
 * hybrid: the bytes go to a temp name beside /usr/local/bin/k3s, named as an upload's are (so a dead
 * run's temp file is swept by the next fetch or upload of that target), then the existing
 * digest-before-rename path (placeVia) checks the sha256 hybrid knows and moves it into place, as root.
 * A copy with another digest is removed and the old file stays.
 */
export interface WorkerFetch {
  /** The program that writes the bytes to its last argument (the temp path), as root. */
  readonly argv: readonly string[]
  /** What it reads on standard input (a one-time token: never on a command line). */
  readonly stdin?: string
  readonly timeoutSeconds: number
}

/** Where the bytes came from, for messages ("from peer w1", "from https://…"). */
export async function fetchK3sOnWorker(host: Host, fetch: WorkerFetch, sha256: string, from: string): Promise<void> {
  const target = WORKER_PATHS.binary
  const dir = dirname(target)
  const pattern = `.${basename(target)}.*.hybrid-upload`
  const temp = posix.join(dir, pattern.replace('*', `${sha256.slice(0, 12)}.${randomBytes(4).toString('hex')}`))
  const raw = rawOf(host)
  await sweepStaleVia(raw, dir, pattern, STALE_UPLOAD_MINUTES, true)
  let placed = false
  try {
    const options: RunOptions = {sudo: true, timeoutSeconds: fetch.timeoutSeconds}
    const got = await host.run(
      [...fetch.argv, temp],
      fetch.stdin === undefined ? options : {...options, stdin: fetch.stdin},
    )
    if (got.exitCode !== 0) {
      const why = got.stderr.trim().split('\n').pop() || `exit ${got.exitCode ?? got.signal}`
      throw new RemoteError('UPLOAD_FAILED', `${host.name}: fetching k3s ${from} failed: ${why}`, host.name)
    }
    await placeVia(raw, temp, target, {mode: 0o755, owner: '0:0', sudo: true, sameDir: true, sha256})
    placed = true
  } catch (error) {
    if (!(error instanceof DigestMismatch)) throw error
    throw new RemoteError(
      'UPLOAD_FAILED',
      `${host.name}: the k3s fetched ${from} has sha256 ${error.actual ?? 'unknown'}, not ${sha256}; it was removed and ${target} left as it was`,
      host.name,
    )
  } finally {
    if (!placed) await removeVia(raw, temp, true).catch(() => undefined)
  }
}

/** Is `program` on the worker's PATH (as root, who runs the fetch)? */
export async function hasProgram(host: Host, program: string): Promise<boolean> {
  return (await host.run(['sh', '-c', 'command -v "$1" >/dev/null', 'sh', program], {sudo: true})).exitCode === 0
}

function rawOf(host: Host): RawRun {
  return async (argv, options) => {
    const result = await host.run(argv, options)
    return {...result, stdout: Buffer.from(result.stdout)}
  }
}
