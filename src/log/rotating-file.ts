import {
  chmodSync,
  closeSync,
  copyFileSync,
  fchmodSync,
  fstatSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  truncateSync,
  writeSync,
} from 'node:fs'

import type {Logger} from 'pino'

/** A log passing this many bytes is rotated (10 MiB). */
const DEFAULT_ROTATE_BYTES = 10 * 1024 * 1024
/** How many rotated files are kept: `<log>.1` (newest) … `<log>.3`. */
const KEEP = 3

/**
 * The size at which logs rotate. `HYBRID_LOG_ROTATE_BYTES` exists for tests only (to rotate after a few
 * bytes, not 10 MiB); it is read here and nowhere else.
 */
export function rotateBytes(): number {
  const fromEnv = Number(process.env.HYBRID_LOG_ROTATE_BYTES)
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : DEFAULT_ROTATE_BYTES
}

/**
 * An append-only log file, 0600, bounded by size: once it has passed the limit, it becomes `<log>.1`
 * (`.1`→`.2`→`.3`, the oldest dropped) and writing goes on in a fresh file. Writes are synchronous and
 * whole: a rotation happens only between two writes, so a line written in one call is never cut in two
 * files, and no line is lost (the rename keeps every byte written before it).
 */
export class RotatingFile {
  private fd: number
  private size: number
  private readonly limit = rotateBytes()

  constructor(private readonly path: string) {
    this.fd = openSync(path, 'a', 0o600)
    fchmodSync(this.fd, 0o600)
    this.size = fstatSync(this.fd).size
    if (this.size > this.limit) this.rotate()
  }

  /** Append text (callers pass whole lines), then rotate if the file has passed the limit. */
  write(text: string): void {
    const bytes = Buffer.from(text)
    let done = 0
    while (done < bytes.length) done += writeSync(this.fd, bytes, done)
    this.size += bytes.length
    if (this.size > this.limit) this.rotate()
  }

  close(): void {
    closeSync(this.fd)
  }

  private rotate(): void {
    closeSync(this.fd)
    shiftRotated(this.path)
    renameSync(this.path, `${this.path}.1`)
    this.fd = openSync(this.path, 'a', 0o600)
    fchmodSync(this.fd, 0o600)
    this.size = 0
  }
}

/** `.2`→`.3`, `.1`→`.2`: room for a new `.1`, the oldest dropped. */
function shiftRotated(path: string): void {
  for (let n = KEEP - 1; n >= 1; n--) renameIfThere(`${path}.${n}`, `${path}.${n + 1}`)
}

/**
 * Rotate a log that another process writes through a descriptor of its own (k3s's output, which must
 * outlive its supervisor, so it is not piped through one): past the limit, its bytes are copied to
 * `<log>.1` (through a temp file and a rename) and the file is truncated in place, as logrotate's
 * `copytruncate` does. The writer opened it with O_APPEND, so it goes on at the new start. What it writes
 * during the copy is copied too; only a write landing between the last read and the truncation (a few
 * microseconds) can be lost. Returns whether it rotated.
 */
export function rotateByCopy(path: string, limit = rotateBytes()): boolean {
  let size: number
  try {
    size = statSync(path).size
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw error
  }
  if (size <= limit) return false
  const temp = `${path}.1.tmp`
  copyFileSync(path, temp)
  chmodSync(temp, 0o600)
  const source = openSync(path, 'r')
  const target = openSync(temp, 'a')
  try {
    // Catch up with what was written during the copy, until a read finds nothing more.
    const buffer = Buffer.alloc(64 * 1024)
    let offset = fstatSync(target).size
    for (let n = readSync(source, buffer, 0, buffer.length, offset); n > 0;) {
      writeSync(target, buffer, 0, n)
      offset += n
      n = readSync(source, buffer, 0, buffer.length, offset)
    }
    truncateSync(path, 0)
  } finally {
    closeSync(source)
    closeSync(target)
  }
  shiftRotated(path)
  renameSync(temp, `${path}.1`)
  return true
}

/** Check `path` every `ms` and rotate it by copy past the limit, saying so in `logger`; unref'd. */
export function keepRotated(path: string, ms: number, logger: Logger): NodeJS.Timeout {
  return setInterval(() => {
    try {
      if (rotateByCopy(path)) logger.info(`rotated ${path} to ${path}.1`)
    } catch (error) {
      logger.warn({err: error}, `could not rotate ${path}`)
    }
  }, ms).unref()
}

function renameIfThere(from: string, to: string): void {
  try {
    renameSync(from, to)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
}
