import type {HostKeyPolicyName} from '../inventory/schema.js'
import {RemoteError} from './errors.js'
import {
  appendKnownHost,
  fingerprint,
  keyTypeOf,
  knownHostsName,
  lookUpKey,
  parseKnownHosts,
  readKnownHosts,
} from './known-hosts.js'

/**
 * The three host-key policies (docs: inventory `ssh.hostKeyPolicy`):
 *  - strict: the key must be in knownHosts; unknown or changed is refused.
 *  - accept-new: an unknown key is recorded in knownHosts; a changed one is refused.
 *  - pinned: the key must be the worker's `hostKey` from the inventory; knownHosts is not read or written.
 * A refusal is one sentence with the key's SHA256 fingerprint and the setting that would accept it.
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
  /** `hostKey` of the inventory ("ssh-ed25519 AAAA… [comment]"), for pinned. */
  readonly pinned: string | null
}

/** Accept `key` under the check's policy, recording it under accept-new; else throw a RemoteError. */
export async function verifyHostKey(check: HostKeyCheck, key: Buffer): Promise<HostKeyStatus> {
  const where = `${check.host}: the host key of ${check.address}:${check.port}`
  const print = fingerprint(key)
  if (check.policy === 'pinned') {
    const pinned = pinnedKey(check.pinned)
    if (!pinned)
      throw new RemoteError(
        'SSH_HOST_KEY_UNKNOWN',
        `${check.host}: hostKeyPolicy is pinned but the worker has no hostKey; the key of ${check.address}:${check.port} is ${keyTypeOf(key)} ${print}: set hostKey to "${keyTypeOf(key)} ${key.toString('base64')}" after checking that fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)`,
        check.host,
      )
    if (pinned.equals(key)) return 'pinned'
    throw new RemoteError(
      'SSH_HOST_KEY_CHANGED',
      `${where} is ${print}, not the pinned hostKey ${fingerprint(pinned)}: WARNING: someone may be intercepting the connection (man-in-the-middle), or the host was reinstalled; if you know it was, set the worker's hostKey to "${keyTypeOf(key)} ${key.toString('base64')}"`,
      check.host,
    )
  }
  const name = knownHostsName(check.address, check.port)
  const verdict = lookUpKey(parseKnownHosts(await readKnownHosts(check.knownHosts)), name, key)
  switch (verdict.kind) {
    case 'known':
      return 'known'
    case 'revoked':
      throw new RemoteError(
        'SSH_HOST_KEY_CHANGED',
        `${where}, ${print}, is marked @revoked in ${check.knownHosts} line ${verdict.line}; the host must get a new key`,
        check.host,
      )
    case 'changed': {
      const old = verdict.lines.map((l) => `${fingerprint(l.key)} (line ${l.line})`).join(', ')
      throw new RemoteError(
        'SSH_HOST_KEY_CHANGED',
        `${where} is now ${print}, but ${check.knownHosts} has ${old} for it: WARNING: someone may be intercepting the connection (man-in-the-middle), or the host was reinstalled; if you know it was, remove the old key with ssh-keygen -R '${name}' -f ${check.knownHosts}`,
        check.host,
      )
    }
    case 'unknown':
      if (check.policy === 'accept-new') {
        await appendKnownHost(check.knownHosts, name, key)
        return 'recorded'
      }
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
