import {createHash, createHmac, randomBytes} from 'node:crypto'
import {readFile, stat} from 'node:fs/promises'

import {writeFileAtomic} from '../util/fs-atomic.js'

/**
 * OpenSSH's known_hosts format, read and written the way ssh(1) does, so the file stays one that
 * `ssh`, `ssh-keygen -F` and `ssh-keygen -R` understand:
 *   [marker] hostpatterns keytype base64key [comment]
 * hostpatterns is a comma list of names (`*`/`?` wildcards, `!` negation), `[host]:port` for a port
 * other than 22, or one hashed name `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
 */

export interface KnownHostLine {
  /** 1-based line number in the file. */
  readonly line: number
  readonly marker?: '@revoked' | '@cert-authority'
  readonly hosts: string
  readonly keyType: string
  /** The key blob, as it appears base64 in the file. */
  readonly key: Buffer
}

/** The name a host is recorded under: `host` for port 22, else `[host]:port` (as ssh does). */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

/** Every well-formed line (blank lines, comments and lines ssh would skip are left out). */
export function parseKnownHosts(text: string): KnownHostLine[] {
  const out: KnownHostLine[] = []
  text.split('\n').forEach((raw, index) => {
    const fields = raw.trim().split(/\s+/)
    if (fields[0] === '' || fields[0].startsWith('#')) return
    let marker: KnownHostLine['marker']
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') marker = fields.shift() as KnownHostLine['marker']
    const [hosts, keyType, base64] = fields
    if (!hosts || !keyType || !base64 || !/^[A-Za-z0-9+/]+=*$/.test(base64)) return
    out.push({line: index + 1, marker, hosts, keyType, key: Buffer.from(base64, 'base64')})
  })
  return out
}

/** Does a line's host field name `name` (already in `[host]:port` form where needed)? */
export function hostsFieldMatches(hosts: string, name: string): boolean {
  if (hosts.startsWith('|1|')) {
    const [, , salt, hash] = hosts.split('|')
    if (!salt || !hash) return false
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64')
    return mac === hash
  }
  let matched = false
  for (const pattern of hosts.split(',')) {
    const negated = pattern.startsWith('!')
    if (!globMatch(negated ? pattern.slice(1) : pattern, name.toLowerCase())) continue
    if (negated) return false
    matched = true
  }
  return matched
}

function globMatch(pattern: string, name: string): boolean {
  const re = pattern
    .toLowerCase()
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')
  return new RegExp(`^${re}$`).test(name)
}

/** The key type named inside an SSH public key blob (its first string). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown'
  const length = blob.readUInt32BE(0)
  return blob.subarray(4, 4 + length).toString('latin1')
}

/** As ssh prints it: "SHA256:" and the unpadded base64 of the blob's digest. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`
}

/** What known_hosts says about `key` for `name`. */
export type KnownHostsVerdict =
  | {readonly kind: 'known'; readonly line: number}
  | {readonly kind: 'revoked'; readonly line: number}
  /** Keys of the same type are recorded for the name, and none is this one. */
  | {readonly kind: 'changed'; readonly lines: readonly KnownHostLine[]}
  | {readonly kind: 'unknown'}

/**
 * Look `key` up for `name` as ssh does: a revoked key is refused wherever it appears; a recorded key of
 * the same type that differs means the key changed. (A recorded key of another type only is "unknown"
 * for this type: ssh then asks too.)
 */
export function lookUpKey(lines: readonly KnownHostLine[], name: string, key: Buffer): KnownHostsVerdict {
  const revoked = lines.find((l) => l.marker === '@revoked' && l.key.equals(key))
  if (revoked) return {kind: 'revoked', line: revoked.line}
  const forName = lines.filter((l) => l.marker === undefined && hostsFieldMatches(l.hosts, name))
  const same = forName.find((l) => l.key.equals(key))
  if (same) return {kind: 'known', line: same.line}
  const type = keyTypeOf(key)
  const sameType = forName.filter((l) => l.keyType === type)
  return sameType.length > 0 ? {kind: 'changed', lines: sameType} : {kind: 'unknown'}
}

/** Key types recorded for `name`, so the handshake can ask for those first (as ssh orders them). */
export function recordedKeyTypes(lines: readonly KnownHostLine[], name: string): string[] {
  return [...new Set(lines.filter((l) => !l.marker && hostsFieldMatches(l.hosts, name)).map((l) => l.keyType))]
}

/** One known_hosts line for `name` and `key`; hashed like `HashKnownHosts yes`, or plain. */
export function formatKnownHostsLine(name: string, key: Buffer, hashed: boolean): string {
  let hosts = name
  if (hashed) {
    const salt = randomBytes(20)
    hosts = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
  }
  return `${hosts} ${keyTypeOf(key)} ${key.toString('base64')}`
}

/** The file's text, or '' when it does not exist yet. */
export async function readKnownHosts(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return ''
    throw error
  }
}

/**
 * Append a line for `name` and `key`, rewriting the file whole (temp, then rename) with its mode
 * kept (0600 when new). New lines are hashed when the file already holds hashed names (the user runs
 * with HashKnownHosts), plain otherwise. Appends are serialised within this process, and the file is
 * re-read inside the lock, so parallel workers never lose each other's lines.
 */
export function appendKnownHost(file: string, name: string, key: Buffer): Promise<void> {
  const run = async () => {
    const text = await readKnownHosts(file)
    const lines = parseKnownHosts(text)
    if (lines.some((l) => !l.marker && l.key.equals(key) && hostsFieldMatches(l.hosts, name))) return
    const hashed = lines.some((l) => l.hosts.startsWith('|1|'))
    let mode = 0o600
    try {
      mode = (await stat(file)).mode & 0o777
    } catch {
      // a new file
    }
    const head = text === '' || text.endsWith('\n') ? text : `${text}\n`
    await writeFileAtomic(file, `${head}${formatKnownHostsLine(name, key, hashed)}\n`, mode)
  }
  const next = (appendLocks.get(file) ?? Promise.resolve()).then(run, run)
  appendLocks.set(
    file,
    next.catch(() => undefined),
  )
  return next
}

const appendLocks = new Map<string, Promise<unknown>>()
