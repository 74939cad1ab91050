import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'

import {HybridError} from '../errors.js'

/** Hashing and verifying what was downloaded: an integrity failure stops acquisition on the spot. */

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/**
 * Content whose sha256 is not the expected one. Never a reason to try another source: a wrong pin or a
 * tampered download must be seen, not papered over.
 */
export class IntegrityError extends HybridError {
  constructor(message: string) {
    super('K3S_CHECKSUM_MISMATCH', message)
    this.name = 'IntegrityError'
  }
}

/** A sha256 pin as the inventory gives it: 64 hex digits, any case, an optional `sha256:` prefix. */
export function normalizeSha256(value: string): string | undefined {
  const hex = value
    .trim()
    .toLowerCase()
    .replace(/^sha256:/, '')
  return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined
}
