import type {HostKeyPolicyName} from '../inventory/schema.js'
import {RemoteError} from './errors.js'
import {
  fingerprint,
  keyTypeOf,
  knownHostsName,
  type KnownHostsVerdict,
  lookUpKey,
  parseKnownHosts,
  readKnownHosts,
  recordKnownHost,
  type RecordVerdict,
} from './known-hosts.js'

/**
 * The three host-key policies (docs: inventory `ssh.hostKeyPolicy`):
 *  - strict: the key must be in knownHosts; unknown or changed is refused.
 *  - accept-new: an unknown key is recorded in knownHosts; a changed one is refused, and so is a key of a
 *    new type for a host known by keys of other types.
 *  - pinned: the key must be the worker's `hostKey` from the inventory; knownHosts is not read or written.
 * A worker's `hostKey` is a pin under every policy: strict and accept-new refuse any other key before
 * they consult knownHosts. A refusal is one sentence with the key's SHA256 fingerprint and the setting
 * that would accept it.
 */

/** How a host's key was accepted (the worker table's HOST KEY column). */
export type HostKeyStatus = 'known' | 'recorded' | 'pinned'

export interface HostKeyCheck {
  /** Worker name, for messages. */
  readonly host: string
  readonly address: string
  readonly port: number
  readonly policy: HostKeyPolicyName
  readonly knownHosts: string
  /** `hostKey` of the inventory ("ssh-ed25519 AAAA… [comment]"): the pin, under every policy. */
  readonly pinned: string | null
}

/** Accept `key` under the check's policy, recording it under accept-new; else throw a RemoteError. */
export async function verifyHostKey(check: HostKeyCheck, key: Buffer): Promise<HostKeyStatus> {
  const where = `${check.host}: the host key of ${check.address}:${check.port}`
  const print = fingerprint(key)
  const pinned = pinnedKey(check.pinned)
  if (pinned && !pinned.equals(key))
    throw new RemoteError(
      'SSH_HOST_KEY_CHANGED',
      `${where} is ${print}, not the pinned hostKey ${fingerprint(pinned)}: WARNING: someone may be intercepting the connection (man-in-the-middle), or the host was reinstalled; if you know it was, set the worker's hostKey to "${keyTypeOf(key)} ${key.toString('base64')}"`,
      check.host,
    )
  if (check.policy === 'pinned') {
    if (pinned) return 'pinned'
    throw new RemoteError(
      'SSH_HOST_KEY_UNKNOWN',
      `${check.host}: hostKeyPolicy is pinned but the worker has no hostKey; the key of ${check.address}:${check.port} is ${keyTypeOf(key)} ${print}: set hostKey to "${keyTypeOf(key)} ${key.toString('base64')}" after checking that fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)`,
      check.host,
    )
  }
  const name = knownHostsName(check.address, check.port)
  let verdict: KnownHostsVerdict | RecordVerdict = lookUpKey(
    parseKnownHosts(await readKnownHosts(check.knownHosts)),
    name,
    key,
  )
  // Under accept-new the file is judged again under its lock, as it is when the key is recorded.
  if (verdict.kind === 'unknown' && check.policy === 'accept-new')
    verdict = await recordKnownHost(check.knownHosts, name, key)
  switch (verdict.kind) {
    case 'known':
      return 'known'
    case 'recorded':
      return 'recorded'
    case 'revoked':
      throw new RemoteError(
        'SSH_HOST_KEY_CHANGED',
        `${where}, ${print}, is marked @revoked in ${check.knownHosts} line ${verdict.line}; the host must get a new key`,
        check.host,
      )
    case 'changed': {
      const old = verdict.lines.map((l) => `${l.keyType} ${fingerprint(l.key)} (line ${l.line})`).join(', ')
      throw new RemoteError(
        'SSH_HOST_KEY_CHANGED',
        `${where} is now ${keyTypeOf(key)} ${print}, but ${check.knownHosts} has ${old} for it: WARNING: someone may be intercepting the connection (man-in-the-middle), or the host was reinstalled; if you know it was, remove the old key with ssh-keygen -R '${name}' -f ${check.knownHosts}`,
        check.host,
      )
    }
    case 'unknown':
      throw new RemoteError(
        'SSH_HOST_KEY_UNKNOWN',
        `${where}, ${keyTypeOf(key)} ${print}, is not in ${check.knownHosts}; check that fingerprint on the host, then add it (ssh-keyscan -p ${check.port} ${check.address} >> ${check.knownHosts}), or set ssh.hostKeyPolicy: accept-new to record it on first contact, or pin it with hostKey: "${keyTypeOf(key)} ${key.toString('base64')}"`,
        check.host,
      )
  }
}

/** The blob of an inventory hostKey ("type base64 [comment]"), or undefined. */
export function pinnedKey(hostKey: string | null): Buffer | undefined {
  const base64 = hostKey?.trim().split(/\s+/)[1]
  return base64 ? Buffer.from(base64, 'base64') : undefined
}
