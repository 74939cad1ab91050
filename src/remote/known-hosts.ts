import {createHash, createHmac, randomBytes} from 'node:crypto'
import {mkdir, open, readFile, realpath} from 'node:fs/promises'
import {dirname} from 'node:path'

import lockfile from 'proper-lockfile'

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

/**
 * The name a host is recorded under: `host` for port 22, else `[host]:port`, lowercased (as ssh does
 * before it hashes or matches a name, so `Worker1` and `worker1` are one host).
 */
export function knownHostsName(host: string, port: number): string {
  const lower = host.toLowerCase()
  return port === 22 ? lower : `[${lower}]:${port}`
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
  /** Keys are recorded for the name, and none is this one (of its type, or of any type: see lookUpKey). */
  | {readonly kind: 'changed'; readonly lines: readonly KnownHostLine[]}
  | {readonly kind: 'unknown'}

/**
 * Look `key` up for `name`: a revoked key is refused wherever it appears; a recorded key of the same type
 * that differs means the key changed, and so does a key of a type not recorded for a host that has keys
 * of other types (the handshake asks for the recorded types first, so a host that offers another one no
 * longer has them). OpenSSH's accept-new records such a key; hybrid refuses it, since recording it would
 * let anyone who can answer for the address replace the host's identity.
 */
export function lookUpKey(lines: readonly KnownHostLine[], name: string, key: Buffer): KnownHostsVerdict {
  const revoked = lines.find((l) => l.marker === '@revoked' && l.key.equals(key))
  if (revoked) return {kind: 'revoked', line: revoked.line}
  const forName = lines.filter((l) => l.marker === undefined && hostsFieldMatches(l.hosts, name))
  const same = forName.find((l) => l.key.equals(key))
  if (same) return {kind: 'known', line: same.line}
  const type = keyTypeOf(key)
  const sameType = forName.filter((l) => l.keyType === type)
  if (sameType.length > 0) return {kind: 'changed', lines: sameType}
  return forName.length > 0 ? {kind: 'changed', lines: forName} : {kind: 'unknown'}
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

/** What recording a new key found: recorded, or (another process was first) what the file now says. */
export type RecordVerdict = {readonly kind: 'recorded'} | Exclude<KnownHostsVerdict, {kind: 'unknown'}>

/**
 * Record `key` for `name` unless the file meanwhile says otherwise. Under a lock beside the file (its
 * target when it is a symlink; proper-lockfile, stale after 10 s) the file is read again and judged:
 * another hybrid may have recorded this key, or another key, since the caller read it. A key still
 * unknown is appended with O_APPEND through the path (a symlink stays one), never by rewriting the
 * file, which OpenSSH and other programs write too. The line is hashed when the file already holds
 * hashed names (HashKnownHosts), plain otherwise; a new file is 0600.
 */
export function recordKnownHost(file: string, name: string, key: Buffer): Promise<RecordVerdict> {
  // One at a time within this process (the file lock's retries are for other processes).
  const run = () => recordUnderLock(file, name, key)
  const next = (inProcess.get(file) ?? Promise.resolve()).then(run, run)
  inProcess.set(
    file,
    next.catch(() => undefined),
  )
  return next
}

const inProcess = new Map<string, Promise<unknown>>()

async function recordUnderLock(file: string, name: string, key: Buffer): Promise<RecordVerdict> {
  await mkdir(dirname(file), {recursive: true, mode: 0o700})
  const target = await realpath(file).catch(() => file)
  const release = await lockfile.lock(target, {
    realpath: false,
    lockfilePath: `${target}.hybrid-lock`,
    stale: 10_000,
    retries: {retries: 100, minTimeout: 20, maxTimeout: 200},
  })
  try {
    const text = await readKnownHosts(file)
    const lines = parseKnownHosts(text)
    const verdict = lookUpKey(lines, name, key)
    if (verdict.kind !== 'unknown') return verdict
    const hashed = lines.some((l) => l.hosts.startsWith('|1|'))
    const head = text === '' || text.endsWith('\n') ? '' : '\n'
    const handle = await open(file, 'a', 0o600)
    try {
      await handle.appendFile(`${head}${formatKnownHostsLine(name, key, hashed)}\n`)
      await handle.sync()
    } finally {
      await handle.close()
    }
    return {kind: 'recorded'}
  } finally {
    await release()
  }
}
