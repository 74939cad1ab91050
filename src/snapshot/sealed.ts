import {createCipheriv, createDecipheriv, createHash, randomBytes, scrypt} from 'node:crypto'

import {HybridError} from '../errors.js'

/**
 * A snapshot as it leaves the sandbox (docs/architecture.md, "Snapshots and restore"): a header in the clear
 * (magic, the manifest, the key derivation's salt, the nonce), then the archive encrypted with AES-256-GCM
 * under a key derived from the cluster token with scrypt, then GCM's tag. The header is the cipher's
 * additional data, so a changed manifest fails authentication like a changed byte of the archive.
 *
 *   "HYBRID-SNAPSHOT-1\n" | u32 header length | header JSON | ciphertext | 16-byte tag
 */

const MAGIC = Buffer.from('HYBRID-SNAPSHOT-1\n')
const TAG_BYTES = 16
/** A header bigger than this is no header of ours (and `list` reads only this much of each file). */
export const HEADER_LIMIT = 8192
/** scrypt's cost: ~50 ms and 16 MiB here, once per snapshot. */
const SCRYPT = {N: 16384, r: 8, p: 1} as const

/** What a snapshot says about itself (authenticated with it). */
export interface SnapshotManifest {
  readonly format: 1
  /** `<time>-<random>`: sortable by time, unique per snapshot. */
  readonly id: string
  readonly cluster: string
  /** The k3s version that wrote the datastore. */
  readonly k3sVersion: string
  /** ISO time the snapshot was taken. */
  readonly createdAt: string
  /** sha256 (hex) and size of the archive inside, before encryption. */
  readonly sha256: string
  readonly bytes: number
}

interface Header {
  readonly manifest: SnapshotManifest
  readonly kdf: {
    readonly name: 'scrypt'
    readonly salt: string
    readonly N: number
    readonly r: number
    readonly p: number
  }
  readonly cipher: 'aes-256-gcm'
  readonly nonce: string
}

/** A snapshot refused on restore or on listing: one sentence, exit 1. */
export function refused(sentence: string): HybridError {
  return new HybridError('SNAPSHOT_REFUSED', sentence)
}

function deriveKey(token: string, salt: Buffer, kdf: Pick<Header['kdf'], 'N' | 'r' | 'p'>): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(token, salt, 32, {N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 64 * 1024 * 1024}, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  )
}

/** Encrypt `archive` under a key derived from `token`; the manifest travels in the authenticated header. */
export async function seal(
  archive: Buffer,
  token: string,
  about: Omit<SnapshotManifest, 'format' | 'sha256' | 'bytes'>,
): Promise<{bytes: Buffer; manifest: SnapshotManifest}> {
  const manifest: SnapshotManifest = {
    format: 1,
    ...about,
    sha256: createHash('sha256').update(archive).digest('hex'),
    bytes: archive.byteLength,
  }
  const salt = randomBytes(16)
  const nonce = randomBytes(12)
  const header: Header = {
    manifest,
    kdf: {name: 'scrypt', salt: salt.toString('base64'), ...SCRYPT},
    cipher: 'aes-256-gcm',
    nonce: nonce.toString('base64'),
  }
  const headerBytes = Buffer.from(JSON.stringify(header))
  const length = Buffer.alloc(4)
  length.writeUInt32BE(headerBytes.byteLength)
  const aad = Buffer.concat([MAGIC, length, headerBytes])
  const cipher = createCipheriv('aes-256-gcm', await deriveKey(token, salt, SCRYPT), nonce)
  cipher.setAAD(aad)
  const body = Buffer.concat([cipher.update(archive), cipher.final()])
  return {bytes: Buffer.concat([aad, body, cipher.getAuthTag()]), manifest}
}

/** The header of a snapshot (its first bytes are enough), unauthenticated: for listing only. */
export function peekManifest(bytes: Buffer, where: string): SnapshotManifest {
  return readHeader(bytes, where).header.manifest
}

function readHeader(bytes: Buffer, where: string): {header: Header; aadBytes: number} {
  const notOurs = () => refused(`${where} is not a hybrid snapshot (its header is missing or damaged)`)
  if (bytes.byteLength < MAGIC.byteLength + 4 || !bytes.subarray(0, MAGIC.byteLength).equals(MAGIC)) throw notOurs()
  const length = bytes.readUInt32BE(MAGIC.byteLength)
  const start = MAGIC.byteLength + 4
  if (length > HEADER_LIMIT || bytes.byteLength < start + length) throw notOurs()
  let header: Header
  try {
    header = JSON.parse(bytes.subarray(start, start + length).toString('utf8')) as Header
  } catch {
    throw notOurs()
  }
  const m = header?.manifest
  if (
    header.cipher !== 'aes-256-gcm' ||
    header.kdf?.name !== 'scrypt' ||
    m?.format !== 1 ||
    typeof m.id !== 'string' ||
    typeof m.cluster !== 'string' ||
    typeof m.sha256 !== 'string'
  )
    throw notOurs()
  return {header, aadBytes: start + length}
}

/**
 * Check and decrypt a whole snapshot of `cluster`: another cluster's, a damaged one and one sealed under
 * another token are each refused with one sentence naming `where` (nothing has been written yet then).
 */
export async function unseal(
  bytes: Buffer,
  token: string,
  cluster: string,
  where: string,
): Promise<{manifest: SnapshotManifest; archive: Buffer}> {
  const {header, aadBytes} = readHeader(bytes, where)
  const {manifest} = header
  if (manifest.cluster !== cluster)
    throw refused(
      `${where} is a snapshot of cluster ${manifest.cluster}, not of ${cluster}; it is left alone and nothing was restored`,
    )
  if (bytes.byteLength < aadBytes + TAG_BYTES)
    throw refused(`${where} is cut short (${bytes.byteLength} bytes); nothing was restored`)
  const kdf = header.kdf
  if (![kdf.N, kdf.r, kdf.p].every((n) => Number.isInteger(n) && n > 0) || kdf.N > 1 << 20 || kdf.r > 32 || kdf.p > 16)
    throw refused(`${where} asks for key derivation settings hybrid does not use; nothing was restored`)
  const key = await deriveKey(token, Buffer.from(kdf.salt, 'base64'), kdf)
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(header.nonce, 'base64'))
  decipher.setAAD(bytes.subarray(0, aadBytes))
  decipher.setAuthTag(bytes.subarray(bytes.byteLength - TAG_BYTES))
  let archive: Buffer
  try {
    archive = Buffer.concat([decipher.update(bytes.subarray(aadBytes, bytes.byteLength - TAG_BYTES)), decipher.final()])
  } catch {
    throw refused(
      `${where} cannot be decrypted with this cluster's token (spec.token): another token, or damaged bytes; nothing was restored`,
    )
  }
  const sha256 = createHash('sha256').update(archive).digest('hex')
  if (sha256 !== manifest.sha256 || archive.byteLength !== manifest.bytes)
    throw refused(`${where} has an archive whose sha256 is not the manifest's; nothing was restored`)
  return {manifest, archive}
}
