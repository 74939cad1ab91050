import {closeSync, fchmodSync, fstatSync, openSync, renameSync, writeSync} from 'node:fs'

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
    for (let n = KEEP - 1; n >= 1; n--) renameIfThere(`${this.path}.${n}`, `${this.path}.${n + 1}`)
    renameSync(this.path, `${this.path}.1`)
    this.fd = openSync(this.path, 'a', 0o600)
    fchmodSync(this.fd, 0o600)
    this.size = 0
  }
}

function renameIfThere(from: string, to: string): void {
  try {
    renameSync(from, to)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
}
